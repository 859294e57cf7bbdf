"""The confirmation chime: two short rising tones, so the user knows the loop is listening.

Short (~0.2 s) and tonal: it plays through the speaker like any reply, so the echo canceller
has it as reference, and a pure tone is not speech to the VAD.
"""

from __future__ import annotations

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE

CHIME_LEVEL = 0.15  # about -16 dBFS peak: quieter than the assistant's voice


def chime(rate: int = SAMPLE_RATE) -> np.ndarray:
    pieces = []
    for frequency, seconds in ((880.0, 0.09), (1320.0, 0.11)):
        t = np.arange(round(seconds * rate)) / rate
        envelope = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)  # 10 ms fades: no clicks
        pieces.append(CHIME_LEVEL * envelope * np.sin(2 * np.pi * frequency * t))
    return np.concatenate(pieces).astype(np.float32)
