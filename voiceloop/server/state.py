"""What every route of `voiceloop serve` shares: the settings, the one recogniser behind its
queue, the voices, the live session hub."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request, WebSocket

from voiceloop.asr.base import AsrError, AsrInputError, SpeechRecognizer, Transcription
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
            raise ApiError(503, f"the recogniser is busy: {exc}", "busy", {"Retry-After": "1"}) from None
        except AsrInputError as exc:
            raise ApiError(400, one_line(exc), "asr_rejected") from None
        except AsrError as exc:  # the recogniser (or the server behind it) failed, not the request
            raise ApiError(502, f"the recogniser failed: {one_line(exc)}", "asr_failed") from None
        except Exception as exc:
            first = one_line(exc)
            raise ApiError(500, f"recognition failed: {first}", "asr_failed") from None


def state(request: Request | WebSocket) -> ServerState:
    server: ServerState = request.app.state.voiceloop
    return server
