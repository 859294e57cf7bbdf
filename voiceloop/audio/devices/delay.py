"""How much later the mic holds what the speaker played: GCC-PHAT over the two signals on
one clock. Used live by the echo tracker, once by `voiceloop calibrate`, and by the bench
and tests to check what came back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE

CLEAR_PEAK = 4.0  # GCC-PHAT peak over the next-best lag: below this it may be noise


@dataclass(frozen=True)
class DelayEstimate:
    lag_samples: int  # how much later `recorded` holds `played`
    sample_rate: int
    sharpness: float  # peak over the next-best lag outside the peak: >3 is a clear echo
    correlation: float  # normalised cross-correlation at the lag (1.0 = an exact copy)

    @property
    def delay_ms(self) -> float:
        return self.lag_samples * 1000 / self.sample_rate

    @property
    def clear(self) -> bool:
        return self.sharpness >= CLEAR_PEAK


def estimate_delay(
    played: np.ndarray, recorded: np.ndarray, max_lag: int, sample_rate: int = SAMPLE_RATE
) -> DelayEstimate:
    """GCC-PHAT: the lag at which `recorded` best matches `played` (both on one clock), in
    [0, max_lag]. Phase-only weighting gives a sharp peak even through a room's colouring,
    where plain correlation of speech or a tone gives a broad or periodic one."""
    n = min(played.size, recorded.size)
    x = np.asarray(played[:n], dtype=np.float64)
    y = np.asarray(recorded[:n], dtype=np.float64)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    cross = np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size))
    # PHAT whitening, except where there is next to nothing: whitened, bins of digital
    # silence or rounding noise would weigh as much as the signal and bury the peak.
    magnitude = np.abs(cross)
    cross /= magnitude + 1e-3 * float(np.mean(magnitude)) + 1e-20
    scores = np.fft.irfft(cross, size)[: max_lag + 1]
    lag = int(np.argmax(scores))
    guard = max(1, sample_rate // 1000)  # 1 ms either side belongs to the peak
    rest = np.concatenate([scores[: max(0, lag - guard)], scores[lag + guard + 1 :]])
    floor = float(np.max(np.abs(rest))) if rest.size else 0.0
    sharpness = float(scores[lag]) / max(floor, 1e-12)
    shifted_x, shifted_y = x[: n - lag], y[lag:n]
    denom = float(np.sqrt(np.sum(shifted_x**2) * np.sum(shifted_y**2)))
    correlation = float(np.sum(shifted_x * shifted_y) / denom) if denom > 0 else 0.0
    return DelayEstimate(lag, sample_rate, sharpness, correlation)
