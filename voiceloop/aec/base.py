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


def recognition_frame(canceller: EchoCanceller, cleaned: np.ndarray) -> np.ndarray:
    """What the recogniser should hear of the frame `process` just returned as `cleaned`.

    A canceller may cut its output harder than a recogniser wants, so that VAD and barge-in
    do not take residual echo for speech (speex's per-band suppressor); such a canceller keeps
    the same frame before that cut, aligned with `cleaned`, as `recognition_frame`. Any other
    canceller's output is heard as it is."""
    kept = getattr(canceller, "recognition_frame", None)
    return cleaned if kept is None else kept


def speaker_gain(canceller: EchoCanceller) -> float:
    """What the canceller asks the speaker to play at now (1: as it is).

    A canceller that cannot cancel for a while (speex's filter re-learning after a walk) can
    ask for a quieter speaker meanwhile, so that a user is not buried under echo it leaves; the
    loop plays at that gain, and the reference, being what was played, follows it."""
    return float(getattr(canceller, "speaker_gain", 1.0))


_KNOWN_RATES = (8_000, 16_000, 24_000, 32_000, 44_100, 48_000, 96_000)


def check_frames(
    canceller: str, sample_rate: int, mic_frame: np.ndarray, reference_frame: np.ndarray
) -> None:
    """ValueError naming expected vs got. Without it a wrong-sized frame fails deep in numpy
    with a broadcasting error that names neither frames nor rates, or (a single sample) is
    silently broadcast to a whole frame; the usual cause, unresampled device audio, deserves
    to be named."""
    expected = sample_rate // 100
    if mic_frame.shape != (expected,):
        raise ValueError(
            f"the {canceller} canceller takes {expected}-sample mic frames (10 ms at {sample_rate} Hz), "
            f"got {_described(mic_frame, sample_rate)}"
        )
    if reference_frame.shape != mic_frame.shape:
        raise ValueError(
            f"the {canceller} canceller needs a reference frame as long as the mic frame "
            f"({expected} samples), got {_described(reference_frame, sample_rate)}"
        )


def _described(frame: np.ndarray, sample_rate: int) -> str:
    if frame.ndim != 1:
        return f"shape {frame.shape}"
    rate = frame.size * 100
    if rate in _KNOWN_RATES and rate != sample_rate:
        return f"{frame.size} samples (10 ms at {rate} Hz: resample to {sample_rate} Hz first)"
    return f"{frame.size} samples"
