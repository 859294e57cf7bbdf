"""Echo-canceller figures of merit, shared by scripts/bench_aec.py and the tests.

Callers align first: a canceller's output lags its mic by `output_delay_samples`, and an
unaligned comparison charges that lag to the canceller as distortion.
"""

from __future__ import annotations

import numpy as np

_TINY = 1e-20  # keeps digital silence finite: a perfect canceller scores high, not inf


def _energy(audio: np.ndarray) -> float:
    return float(np.sum(np.square(audio, dtype=np.float64)))


def erle_db(mic: np.ndarray, output: np.ndarray) -> float:
    """Echo return loss enhancement: how much quieter the output is than the mic, over the same
    (echo-only) span. Energy, not waveform: suppression counts as much as cancellation."""
    if mic.shape != output.shape:
        raise ValueError(f"ERLE needs equal spans, got {mic.shape} and {output.shape}")
    return 10.0 * np.log10((_energy(mic) + _TINY) / (_energy(output) + _TINY))


def sliding_erle_db(mic: np.ndarray, output: np.ndarray, window: int, hop: int) -> np.ndarray:
    """ERLE over windows starting every `hop` samples; entry i covers [i·hop, i·hop + window)."""
    if mic.shape != output.shape:
        raise ValueError(f"ERLE needs equal spans, got {mic.shape} and {output.shape}")
    starts = np.arange(0, mic.size - window + 1, hop)
    mic_cum = np.concatenate([[0.0], np.cumsum(np.square(mic, dtype=np.float64))])
    out_cum = np.concatenate([[0.0], np.cumsum(np.square(output, dtype=np.float64))])
    mic_energy = mic_cum[starts + window] - mic_cum[starts]
    out_energy = out_cum[starts + window] - out_cum[starts]
    return 10.0 * np.log10((mic_energy + _TINY) / (np.maximum(out_energy, 0.0) + _TINY))


def kept_level_db(estimate: np.ndarray, target: np.ndarray) -> float:
    """The level of `target` inside `estimate` relative to `target` alone (0 = untouched):
    how much a canceller turned the user down while the assistant was also speaking."""
    if estimate.shape != target.shape:
        raise ValueError(f"level needs equal lengths, got {estimate.shape} and {target.shape}")
    scale = np.dot(estimate.astype(np.float64), target) / (np.dot(target.astype(np.float64), target) + _TINY)
    return 20.0 * np.log10(max(abs(float(scale)), _TINY))


def si_sdr_db(estimate: np.ndarray, target: np.ndarray) -> float:
    """Scale-invariant SDR: how much of `estimate` is `target` (at any gain) versus anything
    else. Scale-invariant so a canceller that merely turns the user down a little is not
    scored like one that mangles or buries them."""
    if estimate.shape != target.shape:
        raise ValueError(f"SI-SDR needs equal lengths, got {estimate.shape} and {target.shape}")
    estimate = estimate.astype(np.float64) - np.mean(estimate)
    target = target.astype(np.float64) - np.mean(target)
    scale = np.dot(estimate, target) / (np.dot(target, target) + _TINY)
    wanted = scale * target
    return 10.0 * np.log10((_energy(wanted) + _TINY) / (_energy(estimate - wanted) + _TINY))
