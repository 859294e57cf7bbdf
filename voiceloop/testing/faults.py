"""Fault injection around real adapters, for tests, benchmarks and the soak.

The wrapped adapter does the real work; the wrapper only makes chosen calls fail (or stall)
the way real services do, so recovery paths can be exercised on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from voiceloop.tts.base import SpeechSynthesizer, TtsError


class FaultyVoice:
    """Fails the synthesis calls whose (0-based) numbers are in `fail_calls`.

    `mode` is "error" (raise at once, like a refused connection), "stall" (never produce
    audio, like a dead socket), or "cut" (first chunk, then an error mid-stream).
    """

    def __init__(self, inner: SpeechSynthesizer, fail_calls: set[int], mode: str = "error") -> None:
        self.inner = inner
        self.name = f"faulty-{inner.name}"
        self.fail_calls = fail_calls
        self.mode = mode
        self.calls = 0

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        call, self.calls = self.calls, self.calls + 1
        if call not in self.fail_calls:
            async for chunk in self.inner.synthesize(text):
                yield chunk
            return
        if self.mode == "stall":
            await asyncio.sleep(3600)
        if self.mode == "cut":
            async for chunk in self.inner.synthesize(text):
                yield chunk[: chunk.size // 2]
                break
        raise TtsError(f"injected voice failure on call {call}")

    async def aclose(self) -> None:
        await self.inner.aclose()
