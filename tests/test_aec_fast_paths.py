"""The default canceller's cheaper paths compute what the straightforward code computes.

The per-frame work of drift compensation and the path watch was cut (scripts/bench_aec.py's
µs/frame) on the condition that no output changes: these hold each shortcut to the plain
computation it replaced, exactly where it is exact.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from voiceloop.aec.drift import THEIL_SEN_POINTS, _theil_sen_pairs
from voiceloop.aec.path_watch import BAND_HZ, ECHO_LAG_S, MAX_LAG_S, MIN_LAG_S, UNCLEAR, echo_clarity
from voiceloop.audio.fractional import _TABLE, HALF, PHASES, StreamReader
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE

LAGS = int(MIN_LAG_S * SAMPLE_RATE), int(MAX_LAG_S * SAMPLE_RATE)


@pytest.mark.parametrize("start", [-40.37, 12.0, 7.999])
def test_with_no_drift_the_fast_path_is_the_per_sample_path(start: float) -> None:
    """With no drift (the compensator before its first estimate, a room on one clock) every
    position of a frame has the same phase and read_ramp runs one filter pass: what it reads
    is the per-sample interpolator's output to float32 rounding, not only within -55 dB."""
    noise = (0.1 * np.random.default_rng(5).standard_normal(80 * FRAME_SAMPLES)).astype(np.float32)
    fast, exact = StreamReader(keep=SAMPLE_RATE), StreamReader(keep=SAMPLE_RATE)
    position, worst = start, 0.0
    for frame in noise.reshape(-1, FRAME_SAMPLES):
        fast.write(frame)
        exact.write(frame)
        quick = fast.read_ramp(position, 1.0, FRAME_SAMPLES)
        slow = exact.read(position + np.arange(FRAME_SAMPLES))
        worst = max(worst, float(np.max(np.abs(quick - slow))))
        position += FRAME_SAMPLES
    assert worst < 1e-6


def _two_pass(samples: np.ndarray, phase: int) -> np.ndarray:
    """read_ramp as first written, at one phase: both passes, then the blend."""
    at_first = np.correlate(samples, _TABLE[phase], "valid")
    at_last = np.correlate(samples, _TABLE[phase], "valid")
    return at_first + np.linspace(0.0, 1.0, FRAME_SAMPLES, dtype=np.float32) * (at_last - at_first)


def test_the_single_pass_gives_the_two_pass_blend_bit_for_bit() -> None:
    """Skipping the second pass at one phase still adds the blend's +0.0 (a -0.0 would turn
    into 0.0): the samples are the two-pass blend's own, bit for bit."""
    signal = np.zeros(4 * FRAME_SAMPLES, np.float32)
    signal[200:260] = (0.1 * np.random.default_rng(6).standard_normal(60)).astype(np.float32)
    reader = StreamReader(keep=SAMPLE_RATE)
    for frame in signal.reshape(-1, FRAME_SAMPLES):
        reader.write(frame)
    start, fraction = 150, 0.25
    one_pass = reader.read_ramp(start + fraction, 1.0, FRAME_SAMPLES)
    local = start - reader._start
    samples = reader._data[local - HALF + 1 : local + FRAME_SAMPLES - 1 + HALF + 1]
    expected = _two_pass(samples, int(fraction * PHASES + 0.5))
    assert np.array_equal(one_pass.view(np.int32), expected.view(np.int32))


@pytest.mark.parametrize("points", range(1, 242))
def test_the_theil_sen_pairs_are_np_uniques(points: int) -> None:
    """The pairs compared when np.unique picked the measurements, made once per count."""
    pick = np.unique(np.linspace(0, points - 1, min(points, THEIL_SEN_POINTS)).astype(int))
    expected = tuple(pick[k] for k in np.triu_indices(pick.size, 1))
    for got, want in zip(_theil_sen_pairs(points), expected, strict=True):
        assert np.array_equal(got, want)


def test_the_first_fit_imports_nothing_on_the_audio_thread() -> None:
    """np.median's first call imported numpy.ma (~50 ms: five frames late, at the first fit
    of a session, ~2 s into the first reply); drift.py now imports it with itself."""
    fit_once = (
        "import sys\n"
        "from collections import deque\n"
        "from voiceloop.aec.drift import DriftEstimator\n"
        "estimator = DriftEstimator()\n"
        "estimator.lags = deque((k * 4000.0, 10 + k * 0.001) for k in range(12))\n"
        "before = set(sys.modules)\n"
        "estimator._fit()\n"
        "assert estimator.slope is not None\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    run = subprocess.run([sys.executable, "-c", fit_once], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def _straightforward_clarity(
    reference: np.ndarray, residual: np.ndarray, min_lag: int, max_lag: int, mic: np.ndarray
) -> float:
    """echo_clarity as first written: each correlation divided by its RMS over every lag."""
    size = 1 << int(np.ceil(np.log2(reference.size + max_lag - min_lag)))
    band = slice(*(int(hz * size / SAMPLE_RATE) for hz in BAND_HZ))
    reference_band = np.conj(np.fft.rfft(reference, size)[band])

    def correlation(signal: np.ndarray) -> np.ndarray:
        cross = reference_band * np.fft.rfft(signal, size)[band]
        cross /= np.maximum(np.abs(cross), 1e-20)
        full = np.zeros(size // 2 + 1, np.complex128)
        full[band] = cross
        values = np.fft.irfft(full, size)
        values = values / (np.sqrt(np.mean(values**2)) + 1e-20)
        return np.concatenate([values[size + min_lag :], values[: max_lag + 1]])

    near = correlation(residual)
    if np.max(near) < UNCLEAR:
        return float(np.max(near))
    echo_at = int(np.argmax(correlation(mic)))
    return float(np.max(near[max(echo_at - int(ECHO_LAG_S * SAMPLE_RATE), 0) :]))


@pytest.mark.parametrize("echo_share", [0.0, 0.3, 1.0])
def test_the_path_watch_check_is_the_straightforward_one(echo_share: float) -> None:
    """Only the searched lags are divided by the RMS now: the clarity is the same float."""
    rng = np.random.default_rng(7)
    reference = (0.1 * rng.standard_normal(6400)).astype(np.float32)
    echo = np.concatenate([np.zeros(160, np.float32), reference[:-160]])
    user = (0.1 * rng.standard_normal(6400)).astype(np.float32)
    residual = (echo_share * echo + (1 - echo_share) * user).astype(np.float32)
    mic = (echo + 0.5 * user).astype(np.float32)
    got = echo_clarity(reference, residual, *LAGS, mic=mic)
    assert got == _straightforward_clarity(reference, residual, *LAGS, mic)
