"""The speex canceller's conversions between float frames and speex's int16, compiled.

Per frame the canceller scales, clips, rounds and casts the mic and reference frames to int16
(six numpy calls, ~13 µs on this machine) and scales speex's int16 output back to float twice:
the arithmetic is a few hundred operations, the cost was numpy's per-call machinery. These do
the same operations in the same float32 type (the scaling by 32768 is exact, then rint, round
half to even, as np.rint), so every sample is what the numpy form gave
(tests/test_aec_pcm_kernels.py). Compiled and cached as aec/compiled.py says.
"""

from __future__ import annotations

import numpy as np

from voiceloop.aec.compiled import compiled


@compiled("void(float32[:], float32[:], int16[:, ::1])")
def to_int16_pair(mic: np.ndarray, reference: np.ndarray, pcm: np.ndarray) -> None:
    """pcm[0], pcm[1] = the mic and reference frames (float, ±1) as int16: scaled by 32768,
    clipped to int16's range, rounded half to even (frames.to_int16_into's rule)."""
    scale, low, high = np.float32(32768.0), np.float32(-32768.0), np.float32(32767.0)
    for row, frame in ((0, mic), (1, reference)):
        for i in range(frame.size):
            value = frame[i] * scale
            value = value if value >= low else low  # np.maximum(value, -32768)
            value = value if value <= high else high  # np.minimum(value, 32767)
            pcm[row, i] = np.int16(np.rint(value))


@compiled("void(int16[::1], float64, float32[::1])")
def scaled_into(pcm: np.ndarray, scale: float, out: np.ndarray) -> None:
    """out = pcm times `scale`, in float32 (np.multiply(pcm, scale, out=out, dtype=float32))."""
    factor = np.float32(scale)
    for i in range(pcm.size):
        out[i] = np.float32(pcm[i]) * factor
