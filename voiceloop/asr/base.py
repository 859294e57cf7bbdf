"""The speech-to-text contract.

Recognisers are blocking and CPU/GPU heavy, so the contract is synchronous: the runtime calls
`transcribe` in a worker thread and the audio loop never waits on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Transcription:
    text: str
    audio_s: float
    elapsed_s: float
    # (token or word, start_s, end_s); empty where the recogniser gives none.
    timestamps: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def rtf(self) -> float:
        return self.elapsed_s / self.audio_s if self.audio_s > 0 else 0.0


class AsrError(RuntimeError):
    """A recogniser failed in a way the user can act on; the message says how."""


@runtime_checkable
class SpeechRecognizer(Protocol):
    name: str

    def warm_up(self) -> None:
        """Loads models and runs one inference so the first real turn is not slow."""

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        """`audio` is 16 kHz mono float32."""
        ...

    def close(self) -> None: ...
