"""The voice-activity contract: a fixed-size chunk in, a speech probability out.

Endpointing (when an utterance starts and ends) is separate, pure logic in `endpointer.py`,
so any detector can drive it and tests can drive it with no model at all.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VoiceActivityDetector(Protocol):
    name: str
    chunk_samples: int  # 512 for silero at 16 kHz (32 ms)

    def speech_probability(self, chunk: np.ndarray) -> float: ...

    def reset(self) -> None: ...
