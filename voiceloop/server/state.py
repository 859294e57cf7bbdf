"""What every route of `voiceloop serve` shares: the settings, the one recogniser behind its
queue, the voices, the live session hub."""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

from fastapi import Request, WebSocket

from voiceloop.asr.base import AsrError, AsrInputError, PartialCallback, SpeechRecognizer, Transcription
from voiceloop.config import Settings
from voiceloop.errors import one_line
from voiceloop.server.asr_queue import QueueFull, RecognizerQueue
from voiceloop.server.errors import ApiError
from voiceloop.server.live import LiveHub
from voiceloop.server.speech import SpeechService


class ServerState:
    def __init__(
        self,
        settings: Settings,
        recognizer: SpeechRecognizer,
        speech: SpeechService,
        hub: LiveHub,
        queue: RecognizerQueue,
    ) -> None:
        self.settings = settings
        self.recognizer = recognizer
        self.speech = speech
        self.hub = hub
        self.queue = queue
        self.started = time.monotonic()

    async def transcribe(self, audio: Any, hotwords: list[str] | None) -> Transcription:
        try:
            return await self.queue.transcribe(audio, hotwords)
        except QueueFull as exc:
            raise busy(exc) from None
        except Exception as exc:
            raise recognition_error(exc) from None

    def start_transcription(
        self, audio: Any, hotwords: list[str] | None, on_partial: PartialCallback
    ) -> Future[Transcription]:
        """Queued now (a full queue is a 503 before any byte of a stream goes out); the caller
        awaits the future and maps its failure with `recognition_error`."""
        try:
            return self.queue.submit(audio, hotwords, on_partial=on_partial)
        except QueueFull as exc:
            raise busy(exc) from None


def busy(exc: QueueFull) -> ApiError:
    return ApiError(503, f"the recogniser is busy: {exc}", "busy", {"Retry-After": "1"})


def recognition_error(exc: BaseException) -> ApiError:
    """A recogniser's failure in the API's words: the request's fault (400) or the recogniser's."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, AsrInputError):
        return ApiError(400, one_line(exc), "asr_rejected")
    if isinstance(exc, AsrError):  # the recogniser (or the server behind it) failed, not the request
        return ApiError(502, f"the recogniser failed: {one_line(exc)}", "asr_failed")
    return ApiError(500, f"recognition failed: {one_line(exc)}", "asr_failed")


def state(request: Request | WebSocket) -> ServerState:
    server: ServerState = request.app.state.voiceloop
    return server
