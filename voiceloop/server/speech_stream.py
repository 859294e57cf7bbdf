"""`POST /v1/audio/speech` as a stream: chunked audio, or OpenAI's `speech.audio.delta` events.

The first sentence is synthesised before the response starts, so every failure a request can
cause (an unknown voice, empty input, a busy voice, a voice that fails at once) is still a plain
HTTP error; after that, audio goes out as each sentence is rendered and encoded. A voice that
fails later can no longer change the status: the audio stream ends early (logged), the event
stream ends with an error event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator

import numpy as np
from fastapi.responses import StreamingResponse

from voiceloop.server.errors import ApiError
from voiceloop.server.speech import SpeechService
from voiceloop.server.speech_encoding import MEDIA_TYPES, SpeechEncoder, encoder_for
from voiceloop.server.sse import SSE_HEADERS, error_event, speech_delta, speech_done

log = logging.getLogger("voiceloop.server")


async def speech_response(
    speech: SpeechService, text: str, voice: str | None, fmt: str, stream_format: str
) -> StreamingResponse:
    chunks = speech.stream(text, voice)
    try:
        first = await anext(chunks)
    except BaseException:
        await chunks.aclose()
        raise
    encoder = encoder_for(fmt)
    audio = _encoded(first, chunks, encoder)
    if stream_format == "sse":
        return StreamingResponse(
            _events(audio, len(text)), media_type="text/event-stream", headers=SSE_HEADERS
        )
    return StreamingResponse(_audio(audio), media_type=MEDIA_TYPES[fmt], headers=encoder.headers)


async def _encoded(
    first: np.ndarray, chunks: AsyncGenerator[np.ndarray], encoder: SpeechEncoder
) -> AsyncIterator[bytes]:
    try:
        data = await asyncio.to_thread(encoder.encode, first)
        if data:
            yield data
        async for chunk in chunks:
            if data := await asyncio.to_thread(encoder.encode, chunk):
                yield data
        if data := await asyncio.to_thread(encoder.finish):
            yield data
    finally:
        await chunks.aclose()  # frees the voice slot at once


async def _events(audio: AsyncIterator[bytes], input_chars: int) -> AsyncIterator[bytes]:
    try:
        async for data in audio:
            yield speech_delta(data)
    except ApiError as exc:
        yield error_event(exc)
        return
    yield speech_done(input_chars)


async def _audio(audio: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for data in audio:
            yield data
    except ApiError as exc:
        log.warning("speech stream cut short: %s", exc.message)
