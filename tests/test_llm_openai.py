"""The `openai` and `echo` chat backends, against the real local server: no mocks."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from voiceloop.build import build_adapter
from voiceloop.config import load_settings
from voiceloop.llm.base import ChatMessage, ChatModel, LlmError
from voiceloop.llm.echo import EchoChat
from voiceloop.llm.openai_chat import OpenAIChat
from voiceloop.testing.llm_server import Fault, LlmServer, unused_port

pytestmark = pytest.mark.timeout(10)

MODEL = "qwen-test"
KEY = "sk-very-secret-key-123"
HISTORY = [
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "hello"),
    ChatMessage("assistant", "Hi."),
    ChatMessage("user", "what time is it"),
]


@pytest.fixture(scope="module")
def shared_server() -> Iterator[LlmServer]:
    with LlmServer(token_interval_s=0.002) as server:
        yield server


@pytest.fixture
def server(shared_server: LlmServer) -> LlmServer:
    """The module's server, back to normal behaviour for each test."""
    shared_server.faults.clear()
    shared_server.fault = Fault()
    shared_server.first_token_delay_s = 0.0
    shared_server.token_interval_s = 0.002
    shared_server.requests.clear()
    return shared_server


@asynccontextmanager
async def chat_at(base_url: str, **options: Any) -> AsyncIterator[OpenAIChat]:
    chat = OpenAIChat(base_url=base_url, model=MODEL, api_key=KEY, **options)
    try:
        yield chat
    finally:
        await chat.aclose()


async def collect(chat: ChatModel, received: list[str] | None = None) -> list[str]:
    """All deltas; `received` keeps those that arrived before an error."""
    deltas = received if received is not None else []
    async for delta in chat.stream(HISTORY):
        deltas.append(delta)
    return deltas


async def failure(chat: ChatModel) -> tuple[LlmError, list[str], float]:
    """The LlmError a stream ends with, the deltas before it, and how long it took."""
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(LlmError) as caught:
        await collect(chat, received)
    return caught.value, received, time.monotonic() - started


@pytest.mark.asyncio
async def test_streams_the_reply_in_several_deltas(server: LlmServer) -> None:
    async with chat_at(server.base_url, temperature=0.2, max_tokens=64) as chat:
        deltas = await collect(chat)
    assert "".join(deltas) == "Sure. You asked: what time is it. That is all."
    assert len(deltas) > 1
    assert all(deltas)


@pytest.mark.asyncio
async def test_sends_history_model_and_options(server: LlmServer) -> None:
    async with chat_at(server.base_url, temperature=0.2, max_tokens=64) as chat:
        await collect(chat)
    request = server.last_request
    assert request.messages == [m.as_dict() for m in HISTORY]
    assert request.model == MODEL
    assert request.stream
    assert request.params["temperature"] == 0.2
    assert request.params["max_tokens"] == 64


@pytest.mark.asyncio
async def test_stopping_early_leaves_the_client_usable(server: LlmServer) -> None:
    """Barge-in closes the stream mid-reply; the next turn must still work."""
    server.token_interval_s = 0.05
    async with chat_at(server.base_url) as chat:
        stream = chat.stream(HISTORY)
        assert await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        server.token_interval_s = 0.0
        assert "".join(await collect(chat)).startswith("Sure.")


@pytest.mark.asyncio
async def test_unreachable_server_fails_fast() -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    async with chat_at(url) as chat:
        error, _, took = await failure(chat)
    assert str(error) == f"cannot reach the language model at {url}"
    assert error.__cause__ is not None
    assert took < 2


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, f"model '{MODEL}' not found at "),
        (401, "rejected the API key (check VOICELOOP_LLM__API_KEY)"),
    ],
)
async def test_http_errors_become_speakable_messages(server: LlmServer, status: int, expected: str) -> None:
    server.fail_next(Fault(status=status))
    async with chat_at(server.base_url) as chat:
        error, received, _ = await failure(chat)
        assert expected in str(error)
        assert received == []
        assert len(server.requests) == 1  # a wrong key or model is not retried
        assert "".join(await collect(chat)).startswith("Sure.")  # only the next request failed


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, "the language model failed (HTTP 500)"),
        (503, "the language model failed (HTTP 503)"),
        (429, "rate limited"),
    ],
)
async def test_rate_limits_and_server_errors_are_retried_a_bounded_number_of_times(
    server: LlmServer, status: int, expected: str
) -> None:
    server.fault = Fault(status=status)  # every request fails
    async with chat_at(server.base_url) as chat:
        error, received, _ = await failure(chat)
    assert expected in str(error) and received == []
    assert len(server.requests) == 3  # the first try and two retries


@pytest.mark.asyncio
async def test_a_passing_rate_limit_is_ridden_out_before_the_first_token(server: LlmServer) -> None:
    server.fail_next(Fault(status=429), Fault(status=502))
    async with chat_at(server.base_url) as chat:
        assert "".join(await collect(chat)).startswith("Sure.")
    assert len(server.requests) == 3


@pytest.mark.asyncio
async def test_rejected_key_is_never_in_the_error(server: LlmServer) -> None:
    server.fail_next(Fault(status=401))
    async with chat_at(server.base_url) as chat:
        error, _, _ = await failure(chat)
    assert KEY in str(error.__cause__.body)  # type: ignore[union-attr]  # the server echoed it
    assert KEY not in str(error)
    assert KEY not in repr(error)


@pytest.mark.asyncio
async def test_stall_before_the_response_trips_the_first_token_timeout(server: LlmServer) -> None:
    server.fail_next(Fault(stall_s=5))
    async with chat_at(server.base_url, first_token_timeout_s=0.5) as chat:
        error, _, took = await failure(chat)
    assert str(error) == "the language model did not answer within 0.5 s"
    assert 0.4 < took < 1.5


@pytest.mark.asyncio
async def test_role_only_chunk_does_not_count_as_an_answer(server: LlmServer) -> None:
    server.first_token_delay_s = 5  # headers and the role chunk arrive at once, then nothing
    async with chat_at(server.base_url, first_token_timeout_s=0.4) as chat:
        error, received, took = await failure(chat)
    assert "did not answer within 0.4 s" in str(error)
    assert received == []
    assert took < 1.4


@pytest.mark.asyncio
async def test_slow_reply_trips_the_whole_reply_timeout(server: LlmServer) -> None:
    server.token_interval_s = 0.2
    async with chat_at(server.base_url, timeout_s=0.5) as chat:
        error, received, took = await failure(chat)
    assert str(error) == "the language model did not finish its reply within 0.5 s"
    assert 1 <= len(received) < 8
    assert took < 1.5


@pytest.mark.asyncio
async def test_cut_stream_delivers_what_came_then_fails(server: LlmServer) -> None:
    server.fail_next(Fault(cut_after_tokens=3))
    async with chat_at(server.base_url) as chat:
        error, received, _ = await failure(chat)
    assert received == ["Sure.", " You", " asked:"]
    assert str(error) == "the reply was cut off"


@pytest.mark.asyncio
async def test_malformed_chunk_is_a_cut_off_reply(server: LlmServer) -> None:
    server.fail_next(Fault(malformed_after_tokens=2))
    async with chat_at(server.base_url) as chat:
        error, received, _ = await failure(chat)
    assert received == ["Sure.", " You"]
    assert str(error) == "the reply was cut off"


@pytest.mark.asyncio
async def test_check_reports_reachability(server: LlmServer) -> None:
    async with chat_at(server.base_url) as chat:
        assert await chat.check() is None
    url = f"http://127.0.0.1:{unused_port()}/v1"
    async with chat_at(url) as chat:
        assert await chat.check() == f"cannot reach the language model at {url}"


@pytest.mark.asyncio
async def test_registry_builds_from_settings_without_showing_secrets(server: LlmServer) -> None:
    url = server.base_url.replace("http://", "http://user:pw@")
    settings = load_settings(llm={"base_url": url, "model": MODEL, "api_key": KEY})
    chat = build_adapter(settings, "llm", "openai", first_token_timeout_s=1.0)
    try:
        assert isinstance(chat, ChatModel)
        assert chat.description == f"openai {MODEL} at {server.base_url}"
        assert chat.first_token_timeout_s == 1.0
        assert chat.timeout_s == settings.llm.timeout_s
        assert await chat.check() is None
    finally:
        await chat.aclose()


@pytest.mark.asyncio
async def test_echo_repeats_the_last_user_message() -> None:
    chat = build_adapter(load_settings(), "llm", "echo")
    assert isinstance(chat, EchoChat) and isinstance(chat, ChatModel)
    deltas = await collect(chat)
    assert "".join(deltas) == "You said: what time is it."
    assert len(deltas) > 1
    assert await chat.check() is None
    assert "".join([d async for d in chat.stream([ChatMessage("user", "Stop!")])]) == "You said: Stop!"
