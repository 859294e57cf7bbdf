"""How much of what the linear filter left the reference explains: the echo's own test, asked
of speech heard over a reply once it has ended.

Speech held over a reply is the user, or the echo the filter no longer removes (someone walked
past, the path changed while nothing played). Silero is sure of both: after a path change the
residual is the reply's voice, clear, and the recogniser heard it as a phrase ("You said: thank
you." as "thank you": bench_bargein's self-transcriptions). GCC-PHAT (path_watch.py) asks if
the residual is the reference at one lag: a rebuilt room's residual is the difference of two
long impulse responses, spread over many lags, and half of that echo read under 11 while users
read up to 13 (bench_bargein sessions, every held speech over a reply).

Magnitude-squared coherence asks if the residual is *any* linear filtering of the reference,
band by band (Welch's average over SEGMENT-sample segments): echo through any path is
coherent, a voice that is not the reference is not, whatever its pitch. Measured over the
held speech of bench_bargein's sessions (below in the README, echo section).

What it cannot do: per band it is about the echo's share of the residual, so a user talking
while the residual echo is as loud as their voice (a filter that has not learnt the room, or
just after a walk) reads as coherent as the echo. The loop does not hold a reply before the
canceller has converged; after that, the bench's users read at most 0.26 in the first sessions
measured, and 0.297 in later ones (a "stop" 0.8 s after a walk, README), +10 dB rooms included.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from voiceloop.aec.drift import fractional_lag
from voiceloop.aec.refit import MIN_FIT_S, RefitCopy
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE

SEGMENT = 1024  # 64 ms: longer than the echo's lag, so each segment holds its own echo
HOP = SEGMENT // 2
BAND_HZ = (200.0, 4000.0)
MIN_LAG_S = -0.01  # as the path watch searches: the compensated reference leads its echo
MAX_LAG_S = 0.05
LAGS = int(MIN_LAG_S * SAMPLE_RATE), int(MAX_LAG_S * SAMPLE_RATE)
# Held speech is judged once it has ended: its onset is then up to a backchannel's length
# (turn.backchannel_max_ms, 1 s) plus the stop window before the newest frame.
RECENT_S = 2.0


@functools.cache
def _window() -> np.ndarray:
    return np.hanning(SEGMENT + 1)[:-1]  # periodic, as for spectra


@functools.cache
def _band() -> slice:
    low, high = (hz * SEGMENT / SAMPLE_RATE for hz in BAND_HZ)
    return slice(int(np.ceil(low)), int(high) + 1)


def coherence(reference: np.ndarray, signal: np.ndarray) -> float:
    """Mean magnitude-squared coherence of `signal` with `reference` over BAND_HZ (Welch: Hann
    segments, half overlap, each segment's mean removed): 1 where `signal` is the reference
    through a fixed filter, near 1/segments for unrelated sound."""
    count = 1 + (min(reference.size, signal.size) - SEGMENT) // HOP
    if count < 2:
        return 0.0
    starts = np.arange(count) * HOP
    index = starts[:, None] + np.arange(SEGMENT)
    window = _window()

    def spectra(x: np.ndarray) -> np.ndarray:
        segments = x[index].astype(np.float64)
        segments -= segments.mean(axis=1, keepdims=True)
        return np.fft.rfft(segments * window, axis=1)[:, _band()]

    ref, sig = spectra(reference), spectra(signal)
    cross = np.abs(np.mean(ref * np.conj(sig), axis=0)) ** 2
    power = np.mean(np.abs(ref) ** 2, axis=0) * np.mean(np.abs(sig) ** 2, axis=0)
    return float(np.mean(cross / np.maximum(power, 1e-30)))


class EchoCoherence(NamedTuple):
    """How much of speech over a reply the reference explains: of what the linear filter left
    (`residual`), and of the mic itself (`mic`). The second is no test alone (a user over a
    reply that plays on reads 0.50-0.65: the echo is still most of the mic), but it tells a
    residual half explained by a walk (the mic the reply's) from a user drowned in it (the mic
    the user's once the reply paused): README, "A walk's echo half explained". The mic's
    measure costs one more Welch pass, 0.15-1 ms of the 0.5-3 ms per speech over a reply."""

    residual: float
    mic: float | None  # None where not asked for (`turn.echo_coherence_with_mic = 0`)


class RecentFrames:
    """The last `seconds` of what the linear filter took and left, frame by frame, and
    `refit_s` before them where held speech is cancelled again (aec/refit.py)."""

    def __init__(self, seconds: float, refit_s: float = 0.0) -> None:
        self._measured = int(seconds * SAMPLE_RATE) // FRAME_SAMPLES
        self._refit = int(refit_s * SAMPLE_RATE) // FRAME_SAMPLES
        self._ring = np.zeros((self._measured + self._refit, 3, FRAME_SAMPLES), np.float32)
        self._count = 0
        self._path_changed_at = 0  # the count when the filter was last rebuilt or recalled

    def path_changed(self) -> None:
        """The path watch saw the echo path change: a refit copy fits only what came after."""
        self._path_changed_at = self._count

    def add(self, mic: np.ndarray, reference: np.ndarray, residual: np.ndarray) -> None:
        row = self._ring[self._count % len(self._ring)]
        row[0], row[1], row[2] = mic, reference, residual
        self._count += 1

    def clear(self) -> None:
        self._count = self._path_changed_at = 0

    def echo_coherence(self, frames_ago: int, frames: int, with_mic: bool = True) -> EchoCoherence | None:
        """Coherence of the residual and of the mic (where `with_mic`) with the reference
        (shifted by the echo's lag) over `frames` frames that began `frames_ago` frames before
        the newest, or over what is still kept of them (speech longer than RECENT_S: its last
        part); None where that is under two Welch segments, or no reference played in it."""
        size = len(self._ring)
        kept = min(self._count, self._measured)
        frames = min(frames, frames_ago) - max(frames_ago - kept, 0)
        frames_ago = min(frames_ago, kept)
        if frames * FRAME_SAMPLES < SEGMENT + HOP:
            return None
        first = self._count - frames_ago
        rows = self._ring[np.arange(first, first + frames) % size]
        mic, reference, residual = (rows[:, k].ravel() for k in range(3))
        if not np.any(reference):
            return None
        # The echo's lag as the drift estimator finds it (GCC-PHAT): over the bench's kept
        # person-walks sessions (39) the same separation as a plain cross-correlation's peak
        # (sure users at most 0.296 both ways, sure echo >= 0.3 in 123 and 124 of 184).
        lag = round(fractional_lag(reference, mic, *LAGS, rate=SAMPLE_RATE)[0])
        if lag > 0:
            reference, residual, mic = reference[:-lag], residual[lag:], mic[lag:]
        elif lag < 0:
            reference, residual, mic = reference[-lag:], residual[:lag], mic[:lag]
        return EchoCoherence(coherence(reference, residual), coherence(reference, mic) if with_mic else None)

    def refit_copy(self, frames_ago: int, frames: int) -> RefitCopy | None:
        """The mic and the reference over `frames` frames that began `frames_ago` frames before
        the newest, with the `refit_s` before them in front (or those of them since the path
        watch last saw the path change, if at least MIN_FIT_S); None where any of that is no
        longer kept (or never was: `refit_s` 0), or no reference played in those seconds
        before. Nor where the path changed after those seconds: the fit would be of a room
        that is gone, and the echo of the new one a walk's blip (heard as "goodbye" here)."""
        start = self._count - frames_ago
        fit = min(self._refit, start - self._path_changed_at)
        if fit < self._refit and fit < round(MIN_FIT_S * SAMPLE_RATE) // FRAME_SAMPLES:
            return None
        if not fit or frames_ago + fit > min(self._count, len(self._ring)) or frames > frames_ago:
            return None
        first = start - fit
        rows = self._ring[np.arange(first, first + fit + frames) % len(self._ring)]
        if not np.any(rows[:fit, 1]):
            return None
        return RefitCopy(rows[:, 0].ravel(), rows[:, 1].ravel(), fit * FRAME_SAMPLES)
