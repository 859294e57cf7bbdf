"""Server-sent events in OpenAI's streaming shapes: transcription text deltas and speech audio.

OpenAI's clients read `data: {json}` lines and raise on a data object that holds `"error"`, so
a failure after the stream has begun (the status line already went out as 200) reaches the
client as that error object instead of a silently short stream.

Deltas are append-only: a streaming recogniser's hypothesis that grows yields the new tail; one
that revises what was already sent yields nothing more, and the `done` event carries the final
text, which is what a client keeps.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from typing import Any

from voiceloop.asr.base import Transcription
from voiceloop.server.errors import ApiError, error_body

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def error_event(error: ApiError) -> bytes:
    return event({"type": "error", **error_body(error.status, error.message, error.code)})


class DeltaTracker:
    """What of a growing hypothesis the client has not had yet."""

    def __init__(self) -> None:
        self.sent = ""

    def delta(self, hypothesis: str) -> str:
        if not hypothesis.startswith(self.sent) or len(hypothesis) == len(self.sent):
            return ""
        new, self.sent = hypothesis[len(self.sent) :], hypothesis
        return new


async def transcript_events(
    start: Callable[[Callable[[str], None]], Future[Transcription]],
    to_api_error: Callable[[BaseException], ApiError],
    language_of: Callable[[Transcription], str | None],
) -> AsyncIterator[bytes]:
    """`start(on_partial)` queues the recognition (raising ApiError before the stream begins);
    this yields `transcript.text.delta` events as hypotheses arrive, then `transcript.text.done`."""
    loop = asyncio.get_running_loop()
    hypotheses: asyncio.Queue[str] = asyncio.Queue()

    def on_partial(text: str) -> None:  # a recogniser's worker thread
        loop.call_soon_threadsafe(hypotheses.put_nowait, text)

    future = start(on_partial)
    return _transcript_stream(future, hypotheses, to_api_error, language_of)


async def _transcript_stream(
    future: Future[Transcription],
    hypotheses: asyncio.Queue[str],
    to_api_error: Callable[[BaseException], ApiError],
    language_of: Callable[[Transcription], str | None],
) -> AsyncIterator[bytes]:
    tracker = DeltaTracker()
    finished = asyncio.wrap_future(future)
    try:
        while not finished.done():
            waiter = asyncio.ensure_future(hypotheses.get())
            pending: set[asyncio.Future[Any]] = {waiter, finished}
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                waiter.cancel()
                break
            if new := tracker.delta(waiter.result().strip()):
                yield event({"type": "transcript.text.delta", "delta": new})
        while not hypotheses.empty():  # partials that came in with the result
            if new := tracker.delta(hypotheses.get_nowait().strip()):
                yield event({"type": "transcript.text.delta", "delta": new})
        try:
            out = await finished
        except Exception as exc:
            yield error_event(to_api_error(exc))
            return
        if new := tracker.delta(out.text):
            yield event({"type": "transcript.text.delta", "delta": new})
        done: dict[str, Any] = {"type": "transcript.text.done", "text": out.text}
        if language := language_of(out):
            done["languages"] = [{"code": language}]
        yield event(done)
    finally:
        future.cancel()  # the client went away: a recognition not yet started is dropped


def speech_delta(audio: bytes) -> bytes:
    return event({"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode("ascii")})


def speech_done(input_chars: int) -> bytes:
    """OpenAI counts tokens; here the input's characters stand in for them, and no audio tokens."""
    return event(
        {
            "type": "speech.audio.done",
            "usage": {"input_tokens": input_chars, "output_tokens": 0, "total_tokens": input_chars},
        }
    )
