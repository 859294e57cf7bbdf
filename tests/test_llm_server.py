"""The local OpenAI-compatible test server, seen through the real openai SDK and raw HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from voiceloop.testing.llm_server import Fault, LlmServer

pytestmark = pytest.mark.timeout(10)

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "is it raining?"}]


@pytest.fixture(scope="module")
def server() -> Iterator[LlmServer]:
    with LlmServer() as server:
        yield server


def client_for(server: LlmServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


def post_chat(server: LlmServer, **body: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": USER, **body})


def raw_stream_lines(server: LlmServer) -> list[str]:
    """The SSE lines of one streamed reply, as far as they get before any failure."""
    lines: list[str] = []
    body = {"model": "m", "messages": USER, "stream": True}
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line:
                lines.append(line)
    return lines


def test_starts_fast_and_stops_cleanly() -> None:
    started = time.monotonic()
    server = LlmServer().start()
    assert time.monotonic() - started < 1
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    assert httpx.get(f"{server.base_url}/models").status_code == 200
    stopping = time.monotonic()
    server.stop()
    assert time.monotonic() - stopping < 1
    assert not any(t.name == "llm-server" for t in threading.enumerate())
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/models")


@pytest.mark.asyncio
async def test_async_context_manager_and_models_list() -> None:
    async with LlmServer(models=["a", "b"]) as server:
        client = client_for(server)
        page = await client.models.list()
        await client.close()
    assert [m.id for m in page.data] == ["a", "b"]


@pytest.mark.asyncio
async def test_stream_through_the_sdk(server: LlmServer) -> None:
    client = client_for(server)
    chunks = await client.chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    received = [chunk async for chunk in chunks]
    await client.close()
    assert received[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content for c in received if c.choices and c.choices[0].delta.content]
    assert "".join(deltas) == "Sure. You asked: is it raining. That is all."
    assert received[-2].choices[0].finish_reason == "stop"
    assert received[-1].usage is not None and received[-1].usage.completion_tokens == len(deltas)


@pytest.mark.asyncio
async def test_plain_completion_through_the_sdk(server: LlmServer) -> None:
    client = client_for(server)
    completion = await client.chat.completions.create(model="m", messages=USER, temperature=0.3)
    await client.close()
    assert completion.choices[0].message.content == "Sure. You asked: is it raining. That is all."
    assert server.last_request.params == {"temperature": 0.3}
    assert not server.last_request.stream


def test_fixed_and_computed_replies_and_max_tokens() -> None:
    with LlmServer("One two three four.") as server:
        assert post_chat(server).json()["choices"][0]["message"]["content"] == "One two three four."
        cut = post_chat(server, max_tokens=2).json()["choices"][0]
        assert (cut["message"]["content"], cut["finish_reason"]) == ("One two", "length")
        server.reply = lambda messages: f"{len(messages)} messages"
        assert post_chat(server).json()["choices"][0]["message"]["content"] == "1 messages"


def test_queued_faults_are_used_once_each(server: LlmServer) -> None:
    server.fail_next(Fault(status=500), Fault(status=429))
    assert post_chat(server).status_code == 500
    limited = post_chat(server)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert post_chat(server).status_code == 200


def test_server_wide_fault_applies_to_every_request() -> None:
    with LlmServer(fault=Fault(status=404)) as server:
        for _ in range(2):
            response = post_chat(server, model="nope")
            assert response.status_code == 404
            assert "`nope`" in response.json()["error"]["message"]


def test_stall_delays_the_response(server: LlmServer) -> None:
    server.fail_next(Fault(stall_s=0.3))
    started = time.monotonic()
    assert post_chat(server).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_cut_really_aborts_the_connection(server: LlmServer) -> None:
    """No [DONE], no clean end of the chunked body: the client sees a protocol error."""
    server.fail_next(Fault(cut_after_tokens=2))
    with pytest.raises(httpx.RemoteProtocolError):
        raw_stream_lines(server)


def test_malformed_chunk_is_sent_as_is(server: LlmServer) -> None:
    server.fail_next(Fault(malformed_after_tokens=1))
    lines = raw_stream_lines(server)
    assert lines[-1] == "data: {not json"
    assert len(lines) == 3  # role chunk, one token, the broken line


def test_streams_end_with_done(server: LlmServer) -> None:
    lines = raw_stream_lines(server)
    assert lines[-1] == "data: [DONE]"


def test_bad_request_body_gets_an_openai_error(server: LlmServer) -> None:
    response = httpx.post(f"{server.base_url}/chat/completions", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
