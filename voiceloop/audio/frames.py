"""The pipeline's one audio format: 16 kHz mono float32 in 10 ms frames.

Every stage inside the loop speaks this format, so only the edges (devices, TTS voices,
files) resample. Keeping it in one place stops silent rate mismatches.
"""

from __future__ import annotations

import numpy as np

from voiceloop.audio.format import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE

__all__ = ["FRAME_MS", "FRAME_SAMPLES", "SAMPLE_RATE"]  # and the helpers below

AudioArray = np.ndarray  # float32, mono, [-1, 1]


def seconds(samples: int, rate: int = SAMPLE_RATE) -> float:
    return samples / rate


def to_float32(audio: np.ndarray) -> np.ndarray:
    """Accepts int16 or float audio and returns float32 in [-1, 1]."""
    if audio.dtype == np.int16:
        return audio.astype(np.float32) / 32768.0
    return np.asarray(audio, dtype=np.float32)


def to_int16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def to_int16_into(audio: np.ndarray, scratch: np.ndarray, out: np.ndarray) -> None:
    """`to_int16` without allocating, for per-frame paths: `scratch` is a float32 buffer of
    the same length, `out` the int16 destination (both preallocated by the caller). Clipped as
    maximum then minimum: the same values as np.clip, without its Python wrapper (~5 µs)."""
    np.multiply(audio, 32768.0, out=scratch)
    np.maximum(scratch, -32768.0, out=scratch)
    np.minimum(scratch, 32767.0, out=scratch)
    np.rint(scratch, out=scratch)
    np.copyto(out, scratch, casting="unsafe")


def resample(audio: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """High-quality resampling with soxr (imported lazily: it is only needed at the edges)."""
    audio = to_float32(audio)
    if from_rate == to_rate or audio.size == 0:
        return audio
    import soxr

    return soxr.resample(audio, from_rate, to_rate).astype(np.float32)


def rms_dbfs(audio: np.ndarray) -> float:
    if audio.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20.0 * np.log10(max(rms, 1e-6))
