"""The wake-word contract: one cleaned 10 ms frame in, the words heard in it out.

It runs on every frame, beside VAD, so it must be cheap (≤ 100 µs per frame): the loop spends
most of a kiosk's day asleep with only this listening.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class WakeWordError(ValueError):
    """A wake word no provider model knows; the message lists the ones it does."""


@dataclass(frozen=True)
class WakeDetection:
    word: str  # the model's name, as configured (`okay_nabu`)
    probability: float  # the sliding-window mean that crossed the model's cut-off


@runtime_checkable
class WakeWordDetector(Protocol):
    name: str
    words: tuple[str, ...]  # the words it listens for

    def process(self, frame: np.ndarray, over_playback: bool = False) -> list[WakeDetection]:
        """160 float32 samples at 16 kHz (echo-cancelled); the words that fired on this frame.
        `over_playback`: the speaker played within the echo tail, so the frame is the
        canceller's output with its residual (the word scores lower there)."""
        ...

    def reset(self) -> None: ...
