"""Stage wrappers with a fixed latency, for benchmarks that compare against a peer measured
with idealised stages (e.g. Pipecat with STT fixed at 100 ms and TTS at 20 ms).

The real adapter still does the work; the wrapper only pads its latency up to the fixed figure,
so what remains variable is the loop's own overhead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import numpy as np

from voiceloop.asr.base import SpeechRecognizer, Transcription
from voiceloop.tts.base import SpeechSynthesizer


class FixedLatencyRecognizer:
    def __init__(self, inner: SpeechRecognizer, latency_s: float) -> None:
        self.inner = inner
        self.name = f"{inner.name}@{latency_s * 1000:.0f}ms"
        self.latency_s = latency_s

    def warm_up(self) -> None:
        self.inner.warm_up()

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        start = time.perf_counter()
        result = self.inner.transcribe(audio, hotwords)
        time.sleep(max(0.0, self.latency_s - (time.perf_counter() - start)))
        return replace(result, elapsed_s=time.perf_counter() - start)

    def close(self) -> None:
        self.inner.close()


class FixedLatencyVoice:
    def __init__(self, inner: SpeechSynthesizer, first_audio_s: float) -> None:
        self.inner = inner
        self.name = f"{inner.name}@{first_audio_s * 1000:.0f}ms"
        self.first_audio_s = first_audio_s

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.first_audio_s
        first = True
        async for chunk in self.inner.synthesize(text):
            if first:
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                first = False
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()
