"""Reading a sampled signal between its samples, for clocks that run at slightly different rates.

Two clocks a few tens of ppm apart differ by a fraction of a sample per frame, so neither
dropping/repeating samples nor a fixed-ratio resampler will do: a dropped sample is a step the
echo canceller's filter must re-learn. This reads a stream at any increasing real positions
with a Kaiser-windowed sinc through a polyphase table; the room uses it to make a speaker
drift, the drift compensator to bring the reference back onto the mic's clock.

Accuracy (16 taps, 512 phases, cut-off 0.92 of Nyquist): the interpolation error of speech at
16 kHz is ~-60 dB, far below what a canceller reaches, so it cannot be mistaken for echo the
canceller fails to remove.
"""

from __future__ import annotations

import math

import numpy as np

TAPS = 16
HALF = TAPS // 2
PHASES = 512
CUTOFF = 0.92  # of Nyquist: above it, up to 8 kHz, the kernel rolls off instead of aliasing
KAISER_BETA = 8.0


def _polyphase_table() -> np.ndarray:
    """Row q holds the taps for fractional position q/PHASES; taps j span input samples
    i-HALF+1 .. i+HALF around position i + q/PHASES. Rows sum to 1 (DC passes unchanged)."""
    fraction = np.arange(PHASES + 1)[:, None] / PHASES
    offsets = fraction + HALF - 1 - np.arange(TAPS)[None, :]  # position minus tap index
    window = np.kaiser(2 * PHASES * HALF + 1, KAISER_BETA)
    window_at = np.interp(offsets, np.linspace(-HALF, HALF, window.size), window, left=0.0, right=0.0)
    table = CUTOFF * np.sinc(CUTOFF * offsets) * window_at
    return (table / table.sum(axis=1, keepdims=True)).astype(np.float32)


_TABLE = _polyphase_table()


class _Blends(dict[int, np.ndarray]):
    """0..1 ramps by length, made once: the blend weights of `StreamReader.read_ramp`."""

    def __missing__(self, count: int) -> np.ndarray:
        ramp = np.linspace(0.0, 1.0, count, dtype=np.float32) if count > 1 else np.zeros(1, np.float32)
        self[count] = ramp
        return ramp


_BLEND = _Blends()
_SPAN = np.arange(-HALF + 1, HALF + 1)


def interpolate(signal: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """`signal` read at real `positions` (indices into it); each needs HALF samples either side
    inside `signal` (callers keep that margin). float32 out."""
    whole = np.floor(positions)
    phase = np.rint((positions - whole) * PHASES).astype(np.int64)
    index = whole.astype(np.int64)[:, None] + _SPAN[None, :]
    return np.einsum("nj,nj->n", signal[index], _TABLE[phase]).astype(np.float32)


class StreamReader:
    """A stream written frame by frame and read at absolute real positions (sample indices since
    the first write; before it the stream is silent). Keeps `keep` samples of history."""

    def __init__(self, keep: int) -> None:
        self.keep = keep + TAPS
        self._data = np.zeros(4 * self.keep + 4096, dtype=np.float32)
        self._fill = self.keep  # zeros before the first write, so early reads see silence
        self._start = -self.keep  # absolute index of _data[0]
        self.written = 0

    def write(self, frame: np.ndarray) -> None:
        if self._fill + frame.size > self._data.size:  # slide the kept history to the front
            kept = self._data[self._fill - self.keep : self._fill].copy()
            self._data[: self.keep] = kept
            self._start += self._fill - self.keep
            self._fill = self.keep
        self._data[self._fill : self._fill + frame.size] = frame
        self._fill += frame.size
        self.written += frame.size

    def read(self, positions: np.ndarray) -> np.ndarray:
        """Values at absolute positions, clamped to what is kept and written."""
        local = np.clip(positions - self._start, HALF, self._fill - HALF - 1)
        return interpolate(self._data, local)

    def read_ramp(self, start: float, step: float, count: int) -> np.ndarray:
        """read(start + arange(count)·step) for increasing positions, cheaply where it can be.

        Clock drift moves the fraction of the position by (step - 1) per sample, ~0.02 sample
        over a 10 ms frame at 120 ppm: while the whole part advances one per sample, the taps
        change only through that fraction, so two fixed-phase FIR passes (at the first and last
        position, each one C loop) blended along the frame stand in for a kernel per sample.
        The blend is linear in the fraction where the exact kernel is not: it differs from the
        per-sample path by -59 dB on white noise at ±120 ppm (most of that is the table's phase
        rounding, which the per-sample path has too). Where the whole part skips or repeats inside the frame (once every 1/|step-1|
        samples: every ~50 frames at 120 ppm), the exact per-sample path runs instead."""
        last = start + (count - 1) * step
        first_local, last_local = start - self._start, last - self._start
        whole_first, whole_last = math.floor(first_local), math.floor(last_local)
        inside = first_local >= HALF and last_local <= self._fill - HALF - 1
        if not inside or whole_last - whole_first != count - 1:
            return self.read(start + np.arange(count) * step)
        samples = self._data[whole_first - HALF + 1 : whole_last + HALF + 1]
        phase_first = int((first_local - whole_first) * PHASES + 0.5)
        phase_last = int((last_local - whole_last) * PHASES + 0.5)
        at_first = np.correlate(samples, _TABLE[phase_first], "valid")
        if phase_last == phase_first:
            # One phase (no drift, or under ~12 ppm): the blend adds exactly +0.0, which only
            # turns -0.0 into 0.0; the second pass and the blend are skipped, not the addition.
            return np.add(at_first, 0.0, out=at_first)
        at_last = np.correlate(samples, _TABLE[phase_last], "valid")
        # at_first + blend·(at_last - at_first), the same operations in place: no temporaries.
        np.subtract(at_last, at_first, out=at_last)
        np.multiply(at_last, _BLEND[count], out=at_last)
        return np.add(at_first, at_last, out=at_last)

    def newest_readable(self) -> float:
        """The largest position whose taps are all written."""
        return float(self.written - HALF)
