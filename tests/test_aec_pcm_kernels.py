"""The speex canceller's compiled int16 conversions (voiceloop/aec/pcm_kernels.py) give every
sample numpy's form gives: `to_int16_into`'s scale, clip and round half to even on the way in,
np.multiply in float32 on the way out. A kernel that rounds half away from zero, clips after
rounding or scales in float64 fails here."""

from __future__ import annotations

import numpy as np
import pytest

from voiceloop.aec.pcm_kernels import scaled_into, to_int16_pair
from voiceloop.audio.frames import FRAME_SAMPLES, to_int16_into


def _frames(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like and clipping values, plus exact halves between int16 steps (k + 0.5)/32768,
    where round-half-even and round-half-away differ."""
    rng = np.random.default_rng(seed)
    mic = (rng.standard_normal(FRAME_SAMPLES) * 0.6).astype(np.float32)  # some beyond ±1
    halves = (rng.integers(-32768, 32767, FRAME_SAMPLES) + 0.5) / 32768.0
    reference = halves.astype(np.float32)
    reference[:4] = [1.0, -1.0, 32767.5 / 32768, -32768.5 / 32768]
    return mic, reference


@pytest.mark.parametrize("seed", range(5))
def test_frames_to_int16_as_numpy_rounds_them(seed: int) -> None:
    mic, reference = _frames(seed)
    pcm = np.zeros((2, FRAME_SAMPLES), np.int16)
    to_int16_pair(mic, reference, pcm)
    for row, frame in enumerate((mic, reference)):
        expected = np.zeros(FRAME_SAMPLES, np.int16)
        to_int16_into(frame, np.zeros(FRAME_SAMPLES, np.float32), expected)
        np.testing.assert_array_equal(pcm[row], expected)


@pytest.mark.parametrize("scale", [1.0 / 32768.0, 0.01 / 32768.0, 0.3 / 32768.0])
def test_int16_to_float_as_numpy_multiplies(scale: float) -> None:
    pcm = np.random.default_rng(7).integers(-32768, 32768, FRAME_SAMPLES).astype(np.int16)
    out = np.zeros(FRAME_SAMPLES, np.float32)
    scaled_into(pcm, scale, out)
    np.testing.assert_array_equal(out, np.multiply(pcm, scale, dtype=np.float32))
