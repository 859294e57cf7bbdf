"""Measuring how fast the speaker's clock runs against the mic's, from the echo itself.

A USB mic and a separate speaker each run on their own crystal, 20-120 ppm apart: the echo
then slides against the reference by a sample every 0.5-3 s, and speex's adaptive filter
spends itself chasing a path that keeps moving (80 ppm: 11.9 s of false speech in 18.5 s of
echo, NOTES.md). PulseAudio's and PipeWire's speex echo-cancel modules fix this by resampling;
they get the rate from the sound server's buffer fill. Here nothing but the two signals is
known, so the rate comes from the echo: the lag at which the mic holds the reference is
measured once per HOP_S over WINDOW_S (GCC-PHAT, refined between samples), and the drift is
the slope of that lag over time, fitted robustly (Theil-Sen, then least squares on the points
that agree) so double talk, a moved speaker or a delay jump does not bend it.

PHAT weighting makes each measurement independent of what is being said: it keeps only the
phase of the cross-spectrum, i.e. of the room's response, so its bias is the same in every
window and cancels out of the slope.
"""

from __future__ import annotations

import functools
from collections import deque

import numpy as np
import numpy.ma  # noqa: F401  np.median's first call imports it (~50 ms): here, not on the audio thread

from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE

WINDOW_S = 0.5
HOP_S = 0.25
# Once the fit spans this much echo the estimate is within ~1 ppm, and measuring four times
# less often (SETTLED_HOP_S) still follows a drifting crystal; it cuts the estimator's
# average cost per frame by ~3x (its FFTs are most of it).
SETTLED_SPAN_S = 10.0
SETTLED_HOP_S = 1.0
MAX_LAG_S = 0.2  # echo later than the reference by up to this (an uncalibrated device: 150 ms)
MIN_LAG_S = -0.02  # or a little earlier (a reference that arrives late)
MIN_ACTIVE = 0.6  # share of the window's frames the reference must be sounding in
ACTIVE_RMS = 10 ** (-50 / 20)
CLEAR_PEAK = 5.0  # GCC-PHAT peak over the correlation's RMS: below, no echo or mostly user
BAND_HZ = (150.0, 3800.0)
HISTORY_S = 60.0  # lag measurements kept for the fit
# The fit needs measurements this far apart... 1 s is what a greeting gives ("Hello, I am
# listening.": 1.3-1.4 s of espeak, five windows): the drift is then known before the first reply, whose
# first second a filter chasing the slide cancelled 7.5 dB where it now does 14.7 (a kept
# drift+60ppm barge-in session replayed). Its first estimates there were 3-9 ppm off (57.2
# at 60, 88.9 at 80), half a second into the first reply 0.2-1.1 (each measurement refits).
MIN_SPAN_S = 1.0
MIN_POINTS = 5  # ...and this many agreeing ones
INLIER_SAMPLES = 0.3  # a measurement within this of the fitted line (or 3 MADs) agrees
JUMP_SAMPLES = 2.0  # this far off the line, JUMP_RUN times in a row: the delay jumped
JUMP_RUN = 3
THEIL_SEN_POINTS = 40
MEASURE_RATE = SAMPLE_RATE // 2  # the lag is measured at 8 kHz: half the FFT work, same slope
_HALF_BAND = np.array([1.0, 3.0, 3.0, 1.0]) / 8.0
_NEAR = np.arange(-16, 17)  # correlation samples either side of its peak for the sinc
_FINE_STEP = 1 / 64
_FINE = np.arange(-64, 65) * _FINE_STEP
_UPSAMPLE = (
    np.sinc(_FINE[:, None] - _NEAR[None, :])
    * np.kaiser(2 * 17 + 1, 6.0)[np.clip(np.rint((_FINE[:, None] - _NEAR[None, :]) + 17).astype(int), 0, 34)]
)


def fractional_lag(
    reference: np.ndarray, mic: np.ndarray, min_lag: int, max_lag: int, rate: int = MEASURE_RATE
) -> tuple[float, float]:
    """(lag, peak clarity): how many samples later `mic` holds `reference`, between samples.

    The integer peak of the GCC-PHAT correlation is refined on the band-limited correlation
    itself, read on a 1/64-sample grid around the peak by sinc interpolation: a parabola through
    three integer lags is biased towards the nearest integer, by an amount that changes as the
    drift moves the true lag across a sample, and that would bend the slope."""
    size = _fast_size(reference.size + max_lag - min_lag)
    low, high = (int(hz * size / rate) for hz in BAND_HZ)
    band = np.conj(np.fft.rfft(reference, size)[low:high]) * np.fft.rfft(mic, size)[low:high]
    band /= np.maximum(np.abs(band), 1e-20)
    cross = np.zeros(size // 2 + 1, np.complex128)
    cross[low:high] = band
    correlation = np.fft.irfft(cross, size)
    lags = _lags(min_lag, max_lag)
    values = np.concatenate([correlation[: max_lag + 1], correlation[size + min_lag :]])
    best = int(np.argmax(values))
    clarity = float(values[best] / (np.sqrt(np.mean(values**2)) + 1e-20))
    around = correlation[(lags[best] + _NEAR) % size]  # circular: negative lags wrap
    fine = _UPSAMPLE @ around
    peak = int(np.argmax(fine))
    if 0 < peak < fine.size - 1:
        left, centre, right = fine[peak - 1 : peak + 2]
        curvature = left - 2 * centre + right
        offset = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
    else:
        offset = 0.0
    return float(lags[best] + _FINE[peak] + offset * _FINE_STEP), clarity


def _decimated(audio: np.ndarray) -> np.ndarray:
    """Half the rate: a [1 3 3 1]/8 low-pass (its triple zero at 8 kHz keeps what folds back
    30 dB down where the echo has its energy), then every other sample."""
    return np.convolve(audio, _HALF_BAND, mode="same")[::2]


@functools.cache
def _lags(min_lag: int, max_lag: int) -> np.ndarray:
    """The lag of each value `fractional_lag` searches: 0..max_lag, then min_lag..-1."""
    return np.concatenate([np.arange(0, max_lag + 1), np.arange(min_lag, 0)])


@functools.cache
def _theil_sen_pairs(points: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) of the pairs `_fit` compares among `points` measurements: THEIL_SEN_POINTS of
    them spread evenly (linspace rounds down, so the picks are sorted and repeats adjacent:
    dropping those is what np.unique did). Made once per count, not at every fit."""
    spread = np.linspace(0, points - 1, min(points, THEIL_SEN_POINTS)).astype(int)
    pick = spread[np.concatenate([[True], spread[1:] != spread[:-1]])]
    i, j = (pick[k] for k in np.triu_indices(pick.size, 1))
    return i, j


@functools.cache
def _fast_size(at_least: int) -> int:
    """The smallest 2^a·3^b·5^c ≥ at_least: pocketfft is several times slower on sizes with
    large prime factors (19,520 = 2^6·5·61 cost as much as 65,536)."""
    best = 1 << (at_least - 1).bit_length()
    for threes in (1, 3, 9, 27):
        for fives in (1, 5, 25, 125):
            base = threes * fives
            size = base << max(0, (-(-at_least // base) - 1).bit_length())
            if at_least <= size < best:
                best = size
    return best


class DriftEstimator:
    """Fed every frame pair; `ppm` is the speaker's clock over the mic's, minus one, in ppm
    (positive: the echo arrives ever earlier against the reference), or None until known."""

    def __init__(self) -> None:
        self.window = int(WINDOW_S * SAMPLE_RATE)
        self.hop_frames = int(HOP_S * SAMPLE_RATE) // FRAME_SAMPLES
        # Rings of whole frames (slot = frame index mod size), put in order only to measure.
        self._reference = np.zeros((self.window // FRAME_SAMPLES, FRAME_SAMPLES), np.float32)
        self._mic = np.zeros_like(self._reference)
        self._active = np.zeros(self.window // FRAME_SAMPLES, bool)
        self._in_order = np.zeros(self._reference.size, np.float64)  # a ring read oldest first
        self.frames = 0
        self.lags: deque[tuple[float, float]] = deque()  # (window centre in samples, lag)
        self.slope: float | None = None  # lag change per sample
        self.jumps = 0

    @property
    def ppm(self) -> float | None:
        return None if self.slope is None else -self.slope * 1e6

    @property
    def span_s(self) -> float:
        """How much echo the kept measurements span: from SETTLED_SPAN_S on, `ppm` is within ~1."""
        return (self.lags[-1][0] - self.lags[0][0]) / SAMPLE_RATE if self.lags else 0.0

    def add(self, mic_frame: np.ndarray, reference_frame: np.ndarray) -> None:
        slot = self.frames % self._active.size
        self._reference[slot] = reference_frame
        self._mic[slot] = mic_frame
        self._active[slot] = float(np.dot(reference_frame, reference_frame)) > ACTIVE_RMS**2 * FRAME_SAMPLES
        self.frames += 1
        if self.frames % self.hop_frames == 0 and np.mean(self._active) >= MIN_ACTIVE:
            self._measure()
            settled = bool(self.lags) and self.lags[-1][0] - self.lags[0][0] >= SETTLED_SPAN_S * SAMPLE_RATE
            self.hop_frames = int((SETTLED_HOP_S if settled else HOP_S) * SAMPLE_RATE) // FRAME_SAMPLES

    def _measure(self) -> None:
        oldest = self.frames % self._active.size
        reference = _decimated(self._ordered(self._reference, oldest))
        mic = _decimated(self._ordered(self._mic, oldest))
        lag, clarity = fractional_lag(
            reference, mic, int(MIN_LAG_S * MEASURE_RATE), int(MAX_LAG_S * MEASURE_RATE)
        )
        lag *= SAMPLE_RATE / MEASURE_RATE
        if clarity < CLEAR_PEAK:
            return
        centre = self.frames * FRAME_SAMPLES - self.window / 2
        self.lags.append((centre, lag))
        while self.lags and centre - self.lags[0][0] > HISTORY_S * SAMPLE_RATE:
            self.lags.popleft()
        self._fit()

    def _ordered(self, ring: np.ndarray, oldest: int) -> np.ndarray:
        """The ring's frames oldest first, as float64 (np.roll then astype, in one copy); the
        buffer is reused, so each result is used up before the next call."""
        split = (ring.shape[0] - oldest) * FRAME_SAMPLES
        self._in_order[:split] = ring[oldest:].ravel()
        self._in_order[split:] = ring[:oldest].ravel()
        return self._in_order

    def _fit(self) -> None:
        t, lag = (np.array(column) for column in zip(*self.lags, strict=True))
        if t.size < MIN_POINTS or t[-1] - t[0] < MIN_SPAN_S * SAMPLE_RATE:
            return
        # Theil-Sen over pairs a second or more apart, among at most THEIL_SEN_POINTS spread
        # over the history (all pairs of a minute's 240 cost 2.5 ms per measurement).
        i, j = _theil_sen_pairs(t.size)
        apart = t[j] - t[i] >= SAMPLE_RATE
        if not np.any(apart):
            return
        rough = float(np.median((lag[j] - lag[i])[apart] / (t[j] - t[i])[apart]))
        residual = lag - rough * t
        centre = float(np.median(residual))
        spread = 1.4826 * float(np.median(np.abs(residual - centre)))
        off = residual - centre
        if self.slope is not None and np.all(np.abs(off[-JUMP_RUN:]) > JUMP_SAMPLES):
            same_side = np.all(off[-JUMP_RUN:] > 0) or np.all(off[-JUMP_RUN:] < 0)
            if same_side:  # the delay jumped (a device re-synced): fit only what came after
                for _ in range(len(self.lags) - JUMP_RUN):
                    self.lags.popleft()
                self.jumps += 1
                return
        inliers = np.abs(off) <= max(3 * spread, INLIER_SAMPLES)
        if np.count_nonzero(inliers) < MIN_POINTS:
            return
        ti, li = t[inliers], lag[inliers]
        if ti[-1] - ti[0] < MIN_SPAN_S * SAMPLE_RATE:
            return
        ti = ti - ti.mean()
        self.slope = float(np.dot(ti, li - li.mean()) / np.dot(ti, ti))  # least squares
