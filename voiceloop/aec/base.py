"""The echo-canceller contract.

It runs before VAD and ASR on every 10 ms mic frame, with the speaker samples that were
playing when that frame's echo left the loudspeaker (the reference).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class EchoCanceller(Protocol):
    name: str
    # The cleaned frame lags its mic frame by this much (speex's preprocessor: one frame);
    # the runtime shifts timestamps back so the end of speech is not measured late.
    output_delay_samples: int
    # Seconds of playback the filter needs to converge; until then residual echo can sound
    # like speech, so the engine asks for more before it believes a barge-in. 0 = none.
    warmup_s: float

    def process(self, mic_frame: np.ndarray, reference_frame: np.ndarray) -> np.ndarray:
        """Both frames are 160 float32 samples at 16 kHz; returns the cleaned mic frame."""
        ...

    def reset(self) -> None: ...
