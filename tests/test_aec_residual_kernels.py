"""The residual suppressor's compiled kernels (voiceloop/aec/residual_kernels.py) compute what
the plain numpy statement of its rule computes: the gains, leaks and prediction bit for bit
(same operations, same float types, numpy's own pairwise sums), the FIR's output to float32
rounding. The numpy statement below is the rule as aec/residual.py stated it before the
kernels; a kernel that sums, rounds or orders anything differently fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from voiceloop.aec import residual
from voiceloop.aec.residual import ResidualSuppressor
from voiceloop.aec.residual_kernels import _pairwise_sum
from voiceloop.audio.frames import FRAME_SAMPLES


class NumpyRule:
    """One suppressor's state and rule in plain numpy, one array per figure."""

    def __init__(self, frame_samples: int) -> None:
        self.n = frame_samples
        self.size = residual.FFT_FRAMES * frame_samples
        self.half_taps = int(residual.HALF_TAPS_MS * frame_samples / 10)
        bins = self.size // 2 + 1
        self.window = np.hanning(self.size + 2)[1:-1].astype(np.float32)
        self.signals = np.zeros((3, self.size), np.float32)
        self.held = np.zeros((2, bins))
        self.means = np.zeros((4, bins))
        self.covariances = np.zeros((3, bins))
        self.variances = np.zeros((3, bins))
        self.leaks = np.zeros((3, bins))
        self.residual_power = np.zeros(bins)
        self.predicted = np.zeros(bins)
        self.gains = np.ones(bins)
        self.history = np.zeros(2 * self.half_taps, np.float32)
        self.active_energy = residual.ACTIVE_POWER * self.size * bins
        self.silent_frames = residual.FFT_FRAMES
        self.passing = True
        self.echo_heard = False

    def add(self, mic: np.ndarray, left_by_filter: np.ndarray, reference: np.ndarray) -> None:
        n = self.n
        self.signals = np.concatenate(
            [self.signals[:, n:], np.stack([mic, left_by_filter, reference])], axis=1
        )
        self.silent_frames = 0 if np.any(reference) else self.silent_frames + 1
        silent = self.silent_frames >= residual.FFT_FRAMES
        self.passing = self.passing and silent
        if self.passing:
            return
        spectra = np.fft.rfft(self.signals * self.window)
        estimate = spectra[0] - spectra[1]
        echo = estimate.real * estimate.real + estimate.imag * estimate.imag
        left = spectra[1].real * spectra[1].real + spectra[1].imag * spectra[1].imag
        played = spectra[2].real * spectra[2].real + spectra[2].imag * spectra[2].imag
        self.held = np.maximum(played, self.held * residual.REFERENCE_HOLDS)
        decay = residual.ECHO_DECAY if self.echo_heard else residual.DECAY
        self.residual_power = self.residual_power + residual.POWER_SMOOTHING * (left - self.residual_power)
        if float(np.sum(echo)) < self.active_energy:
            self.predicted = self.predicted * decay
        else:
            self.learn(echo, left, decay)
        boost, floor_db = (
            (residual.ECHO_HEARD_BOOST, residual.ECHO_FLOOR_DB)
            if self.echo_heard
            else (1.0, residual.FLOOR_DB)
        )
        shares = self.predicted / (self.residual_power + 1e-20)
        padded = np.concatenate([[0.0], shares, [0.0]])
        spread = (shares + shares + padded[:-2] + padded[2:]) * (0.25 * residual.OVERESTIMATE * boost)
        wanted = np.maximum(10 ** (floor_db / 20), 1.0 - spread)
        self.gains = np.where(
            wanted > self.gains, self.gains + residual.RELEASE * (wanted - self.gains), wanted
        )
        if silent and np.min(self.gains) >= residual.PASSING_GAIN:
            self.passing = True
            self.gains = np.ones_like(self.gains)
            self.predicted = np.zeros_like(self.predicted)

    def learn(self, echo: np.ndarray, left: np.ndarray, decay: float) -> None:
        samples = np.stack([echo, self.held[0], np.full(echo.size, np.sum(self.held[0])), left])
        a = residual.LEAK_SMOOTHING
        self.means = self.means + a * (samples - self.means)
        deviations = samples - self.means
        self.covariances = self.covariances + a * (deviations[:3] * deviations[3] - self.covariances)
        self.variances = self.variances + a * (deviations[:3] * deviations[:3] - self.variances)
        leaks = np.minimum(np.maximum(self.covariances / (self.variances + 1e-20), 0.0), residual.LEAK_MAX)
        self.leaks = leaks
        echoes = leaks * samples[:3]
        if self.echo_heard:
            echoes[1] = leaks[1] * self.held[1]
        self.predicted = np.maximum(np.max(echoes, axis=0), self.predicted * decay)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        signal = np.concatenate([self.history, frame])
        self.history = signal[-2 * self.half_taps :]
        if self.passing:
            return signal[self.half_taps : self.half_taps + frame.size]
        taps = np.fft.irfft(self.gains, self.size)[np.r_[-self.half_taps : self.half_taps + 1]]
        taps *= np.hanning(2 * self.half_taps + 3)[1:-1]
        return np.convolve(signal, taps, mode="valid").astype(np.float32)


def _frames(seed: int, count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]]:
    """Echo-like frames (mic: the reference delayed and filtered, a user now and then, noise),
    with silent stretches (the suppressor goes back to passing) and the path watch's verdict
    switching, so every branch of the rule runs."""
    rng = np.random.default_rng(seed)
    n = FRAME_SAMPLES
    reference = (0.2 * rng.standard_normal(count * n)).astype(np.float32)
    envelope = np.repeat(rng.uniform(0.0, 1.0, count) ** 2, n).astype(np.float32)
    reference *= envelope
    for start in (60, 150):  # silence long enough for every gain to come back to 1
        reference[start * n : (start + 40) * n] = 0.0
    echo = np.convolve(reference, rng.uniform(-0.5, 0.5, 40) * np.exp(-np.arange(40) / 8.0))[: reference.size]
    user = np.where(np.arange(count * n) // (30 * n) % 3 == 1, 0.05 * rng.standard_normal(count * n), 0.0)
    noise = 1e-4 * rng.standard_normal(count * n)
    mic = (echo + user + noise).astype(np.float32)
    left = (0.1 * echo + user + noise).astype(np.float32)
    heard = rng.uniform(size=count) < 0.2
    return [
        (mic[k * n : (k + 1) * n], left[k * n : (k + 1) * n], reference[k * n : (k + 1) * n], bool(heard[k]))
        for k in range(count)
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_compiled_rule_is_numpys_bit_for_bit(seed: int) -> None:
    compiled, plain = ResidualSuppressor(FRAME_SAMPLES), NumpyRule(FRAME_SAMPLES)
    checked = learnt = 0
    for mic, left, reference, heard in _frames(seed, 240):
        compiled.echo_heard = plain.echo_heard = heard
        compiled.add(mic, left, reference)
        plain.add(mic, left, reference)
        out, expected = compiled.apply(left), plain.apply(left)
        assert compiled._passing == plain.passing
        np.testing.assert_array_equal(compiled.gains, plain.gains)
        np.testing.assert_array_equal(compiled._predicted, plain.predicted)
        np.testing.assert_array_equal(compiled.leaks, plain.leaks)
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)
        checked += 1
        learnt += int(np.any(plain.leaks > 0) and not plain.passing)
    assert checked == 240 and learnt > 50  # the rule ran, not only its passing branch


def test_a_float64_frame_is_taken_as_numpy_rounds_it_into_float32() -> None:
    """Callers outside the pipeline may hand float64 frames: the kernels are compiled for
    float32, so they are rounded as assignment into the old float32 rows rounded them."""
    compiled, plain = ResidualSuppressor(FRAME_SAMPLES), NumpyRule(FRAME_SAMPLES)
    for mic, left, reference, _ in _frames(3, 40):
        compiled.add(mic.astype(np.float64), left.astype(np.float64), reference.astype(np.float64))
        plain.add(mic, left, reference)
        compiled.apply(left.astype(np.float64))
        plain.apply(left)
    np.testing.assert_array_equal(compiled.gains, plain.gains)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count", [3, 8, 100, 128, 129, 161, 257, 481])
def test_sums_over_bands_are_numpys_pairwise_sums(dtype: type, count: int) -> None:
    """Whether a band's energy clears the active threshold, and the distortion predictor,
    depend on the sum's last bit: numpy sums pairwise (eight accumulators in blocks of 128)."""
    rng = np.random.default_rng(count)
    for _ in range(20):
        values = (rng.standard_normal(count) * 10 ** rng.uniform(-6, 6, count)).astype(dtype)
        assert _pairwise_sum(values, 0, count) == np.add.reduce(values)
