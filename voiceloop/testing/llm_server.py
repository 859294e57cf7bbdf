"""A real OpenAI-compatible chat server on 127.0.0.1 with scripted faults.

Adapters, benchmarks and the soak script run against real HTTP, real SSE framing and really
broken connections instead of mocks, because the failures that matter (a stream cut mid-reply,
a server that accepts the request and then says nothing) live in the transport and in how the
SDK surfaces them.

A refused connection needs no fault: point the client at a port nobody listens on
(`unused_port()`).

    with LlmServer(token_interval_s=0.01) as server:
        server.fail_next(Fault(status=500))  # the next chat request fails, later ones answer
        client = AsyncOpenAI(base_url=server.base_url, api_key="x")

Standalone: `python -m voiceloop.testing.llm_server --port 8000`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from voiceloop.llm.echo import word_tokens
from voiceloop.testing.threaded import AppServer

HOST = "127.0.0.1"
DEFAULT_MODELS = ("voiceloop-test",)
MALFORMED_EVENT = b"data: {not json\n\n"

Reply = str | Callable[[list[dict[str, Any]]], str]


@dataclass(frozen=True)
class Fault:
    """What goes wrong with one chat request; `Fault()` is a normal answer.

    Applied in this order: stall, then status, then the streamed body. `cut_after_tokens` and
    `malformed_after_tokens` only affect streaming requests; N larger than the reply acts just
    before the final chunk.
    """

    status: int | None = None  # answer 4xx/5xx with an OpenAI-style JSON error body
    stall_s: float = 0.0  # silence before the response starts, as a queued server would
    cut_after_tokens: int | None = None  # drop the connection after N content tokens
    malformed_after_tokens: int | None = None  # send `data: {not json` after N content tokens


@dataclass(frozen=True)
class RecordedRequest:
    """One chat request as received, so tests can assert which history the client sent."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool
    params: dict[str, Any] = field(default_factory=dict)  # temperature, max_tokens, ...

    @classmethod
    def of(cls, body: dict[str, Any]) -> RecordedRequest:
        params = {k: v for k, v in body.items() if k not in ("model", "messages", "stream")}
        return cls(str(body.get("model", "")), body["messages"], bool(body.get("stream")), params)


class InjectedCut(Exception):
    """Raised inside a streaming body to make uvicorn drop the connection mid-response."""


class _QuietInjectedCuts(logging.Filter):
    """Keeps uvicorn from logging a traceback for every cut that a test asked for."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        return not isinstance(error, InjectedCut)


logging.getLogger("uvicorn.error").addFilter(_QuietInjectedCuts())


class LlmServer(AppServer):
    """An OpenAI-compatible chat endpoint whose replies, timing and failures are scripted.

    `reply` is a fixed text, a function of the request's messages, or None for
    "Sure. You asked: <last user message>. That is all.". `fault` applies to every chat request
    unless `fail_next` queued one (consumed one per request). Attributes may be changed while
    the server runs.
    """

    server_name = "test LLM server"

    def __init__(
        self,
        reply: Reply | None = None,
        *,
        first_token_delay_s: float = 0.0,
        token_interval_s: float = 0.0,
        fault: Fault | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        port: int = 0,
    ) -> None:
        self.reply = reply
        self.first_token_delay_s = first_token_delay_s
        self.token_interval_s = token_interval_s
        self.fault = fault or Fault()
        self.faults: deque[Fault] = deque()
        self.models = tuple(models)
        self.requests: list[RecordedRequest] = []
        self.port = port
        self.app = Starlette(
            routes=[
                Route("/v1/models", self._list_models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
            ]
        )
        self._ids = itertools.count(1)

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    def fail_next(self, *faults: Fault) -> None:
        """Queues faults for the next chat requests, one each; `Fault()` means a normal answer."""
        self.faults.extend(faults)

    def reply_for(self, messages: list[dict[str, Any]]) -> str:
        if isinstance(self.reply, str):
            return self.reply
        if self.reply is not None:
            return self.reply(messages)
        asked = last_user_text(messages).strip().rstrip(".!?")
        return f"Sure. You asked: {asked}. That is all."

    # -- endpoints -----------------------------------------------------------------------

    async def _list_models(self, request: Request) -> Response:
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "voiceloop"} for m in self.models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def _chat(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return error_response(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return error_response(400, "'messages' is a required property.", param="messages")
        self.requests.append(RecordedRequest.of(body))
        fault = self._next_fault()
        if fault.stall_s and await client_left_during(request, fault.stall_s):
            return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
        if fault.status is not None:
            return fault_response(fault.status, body, request)
        reply = _Reply(body, self.reply_for(body["messages"]), f"chatcmpl-{next(self._ids)}")
        if body.get("stream"):
            return StreamingResponse(self._events(reply, fault), media_type="text/event-stream")
        return JSONResponse(reply.completion())

    def _next_fault(self) -> Fault:
        try:
            return self.faults.popleft()
        except IndexError:
            return self.fault

    async def _events(self, reply: _Reply, fault: Fault) -> AsyncIterator[bytes]:
        yield sse(reply.chunk({"role": "assistant", "content": ""}))
        for sent, token in enumerate(reply.tokens):
            await asyncio.sleep(self.token_interval_s if sent else self.first_token_delay_s)
            if sabotaged(fault, sent):
                yield MALFORMED_EVENT
                return
            yield sse(reply.chunk({"content": token}))
        if sabotaged(fault, len(reply.tokens)):
            yield MALFORMED_EVENT
            return
        yield sse(reply.chunk({}, finish_reason=reply.finish_reason))
        if (reply.body.get("stream_options") or {}).get("include_usage"):
            yield sse(reply.chunk(None))
        yield b"data: [DONE]\n\n"


class _Reply:
    """The answer to one request, shaped as OpenAI chunks or as one completion."""

    def __init__(self, body: dict[str, Any], text: str, reply_id: str) -> None:
        self.body = body
        self.id = reply_id
        self.model = str(body.get("model", ""))
        self.created = int(time.time())
        tokens = word_tokens(text)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        self.tokens = tokens[:limit] if limit else tokens
        self.finish_reason = "length" if len(self.tokens) < len(tokens) else "stop"

    def usage(self) -> dict[str, int]:
        prompt = sum(len(word_tokens(message_text(m))) for m in self.body["messages"])
        completion = len(self.tokens)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def chunk(self, delta: dict[str, str] | None, finish_reason: str | None = None) -> dict[str, Any]:
        """A chat.completion.chunk; `delta=None` makes the trailing usage-only chunk."""
        choices = (
            []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        )
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if delta is None:
            chunk["usage"] = self.usage()
        return chunk

    def completion(self) -> dict[str, Any]:
        message = {"role": "assistant", "content": "".join(self.tokens)}
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}
            ],
            "usage": self.usage(),
        }


def sabotaged(fault: Fault, sent: int) -> bool:
    """True when the stream must turn malformed now; raises to cut it. `sent` = tokens so far."""
    if fault.cut_after_tokens is not None and sent >= fault.cut_after_tokens:
        raise InjectedCut(f"cut after {sent} tokens")
    return fault.malformed_after_tokens is not None and sent >= fault.malformed_after_tokens


def sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def last_user_text(messages: list[dict[str, Any]]) -> str:
    return next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")


def message_text(message: dict[str, Any]) -> str:
    """A message's text, also from the content-parts form OpenAI allows."""
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


async def client_left_during(request: Request, seconds: float) -> bool:
    """Waits `seconds`, returning True early if the client hangs up, so abandoned stalls end."""
    try:
        async with asyncio.timeout(seconds):
            while (await request.receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return False
    return True


def fault_response(status: int, body: dict[str, Any], request: Request) -> Response:
    if status == 401:
        # Echo the key back in full, as OpenAI echoes part of it: a client that repeats the
        # server's message would leak it, and tests can see that.
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        return error_response(401, f"Incorrect API key provided: {key}.", code="invalid_api_key")
    if status == 404:
        model = body.get("model")
        return error_response(404, f"The model `{model}` does not exist.", code="model_not_found")
    if status == 429:
        return error_response(
            429, "Rate limit reached for requests.", kind="requests", code="rate_limit_exceeded"
        )
    if status >= 500:
        message = "The server had an error while processing your request."
        return error_response(status, message, kind="server_error")
    return error_response(status, f"Injected HTTP {status}.")


def error_response(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> JSONResponse:
    error = {"message": message, "type": kind, "param": param, "code": code}
    return JSONResponse({"error": error}, status_code=status)


def unused_port() -> int:
    """A port with no listener right now, for "connection refused" tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local OpenAI-compatible chat server for tests.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--reply", help="fixed reply text (default: echoes the question)")
    parser.add_argument("--first-token-delay", type=float, default=0.0, metavar="S")
    parser.add_argument("--token-interval", type=float, default=0.02, metavar="S")
    args = parser.parse_args(argv)
    server = LlmServer(
        args.reply, first_token_delay_s=args.first_token_delay, token_interval_s=args.token_interval
    )
    print(f"OpenAI-compatible test server at http://{HOST}:{args.port}/v1", flush=True)
    uvicorn.run(server.app, host=HOST, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
