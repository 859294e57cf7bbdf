"""Fault injection around real adapters, for tests, benchmarks and the soak.

The wrapped adapter does the real work; the wrapper only makes chosen calls fail (or stall)
the way real services do, so recovery paths can be exercised on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from voiceloop.asr.base import AsrError, SpeechRecognizer, Transcription
from voiceloop.tts.base import SpeechSynthesizer, TtsError


class FaultyVoice:
    """Spoils the synthesis calls named in `schedule` (0-based call number → mode):
    "error" (raise at once, like a refused connection), "stall" (never produce audio, like a
    dead socket), or "cut" (half a chunk, then an error mid-stream)."""

    def __init__(self, inner: SpeechSynthesizer, schedule: dict[int, str]) -> None:
        self.inner = inner
        self.name = f"faulty-{inner.name}"
        self.schedule = schedule
        self.calls = 0

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        call, self.calls = self.calls, self.calls + 1
        mode = self.schedule.get(call)
        if mode is None:
            async for chunk in self.inner.synthesize(text):
                yield chunk
            return
        if mode == "stall":
            await asyncio.sleep(3600)
        if mode == "cut":
            async for chunk in self.inner.synthesize(text):
                yield chunk[: chunk.size // 2]
                break
        raise TtsError(f"injected voice failure on call {call}")

    async def aclose(self) -> None:
        await self.inner.aclose()


class FaultyRecognizer:
    """Spoils the recognition calls named in `schedule` (0-based call number → mode):
    "error" raises, "empty" hears nothing, "other_script" hears another language."""

    OTHER_SCRIPT = "今天天气很好"

    def __init__(self, inner: SpeechRecognizer, schedule: dict[int, str]) -> None:
        self.inner = inner
        self.name = f"faulty-{inner.name}"
        self.schedule = schedule
        self.calls = 0

    def warm_up(self) -> None:
        self.inner.warm_up()

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        call, self.calls = self.calls, self.calls + 1
        mode = self.schedule.get(call)
        if mode == "error":
            raise AsrError(f"injected recogniser failure on call {call}")
        result = self.inner.transcribe(audio, hotwords)
        if mode == "empty":
            return Transcription("", result.audio_s, result.elapsed_s)
        if mode == "other_script":
            return Transcription(self.OTHER_SCRIPT, result.audio_s, result.elapsed_s)
        return result

    def close(self) -> None:
        self.inner.close()
