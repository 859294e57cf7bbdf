"""The text-to-speech contract: one speakable piece in, audio chunks out as they are made.

Chunks are 16 kHz mono float32 so they can go straight to the playback queue; a voice that
renders at another rate resamples inside its adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import numpy as np


class TtsError(RuntimeError):
    """A voice failed; the message says why in one line."""


@runtime_checkable
class SpeechSynthesizer(Protocol):
    name: str

    def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        """Yields 16 kHz float32 chunks; raises TtsError on failure."""
        ...

    async def aclose(self) -> None: ...


class PartialSpeech(TtsError):
    """A voice failed after part of the piece was voiced; `unspoken` is the text not yet said
    (maybe empty). Raised by primaries that know (Edge does, from its word boundaries)."""

    def __init__(self, message: str, unspoken: str) -> None:
        super().__init__(message)
        self.unspoken = unspoken
