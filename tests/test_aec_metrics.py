"""The bench's figures of merit on signals whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from voiceloop.aec.metrics import erle_db, kept_level_db, si_sdr_db, sliding_erle_db


def noise(seed: int, n: int = 16_000) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("attenuation_db", [0.0, 6.0, 20.0, 45.0])
def test_erle_of_a_known_attenuation_is_that_attenuation(attenuation_db: float) -> None:
    mic = noise(1)

    assert erle_db(mic, mic * 10 ** (-attenuation_db / 20)) == pytest.approx(attenuation_db, abs=1e-3)


def test_erle_of_digital_silence_is_high_but_finite() -> None:
    erle = erle_db(noise(1), np.zeros(16_000, np.float32))

    assert 100.0 < erle < np.inf


def test_sliding_erle_follows_a_canceller_that_converges_halfway() -> None:
    mic = noise(2)
    output = mic.copy()
    output[8_000:] *= 0.1  # 20 dB from the middle on

    erle = sliding_erle_db(mic, output, window=1_600, hop=160)

    assert erle.size == (16_000 - 1_600) // 160 + 1
    assert np.allclose(erle[: 6_400 // 160 + 1], 0.0, atol=1e-3)  # windows ending by sample 8000
    assert np.allclose(erle[8_000 // 160 :], 20.0, atol=1e-3)  # windows starting at 8000 or later


def test_si_sdr_of_a_scaled_copy_is_very_high() -> None:
    target = noise(3)

    assert si_sdr_db(0.3 * target, target) > 80.0


def test_si_sdr_of_unrelated_noise_is_very_low() -> None:
    assert si_sdr_db(noise(4), noise(5)) < -25.0  # ~ -10·log10(samples): chance correlation only


def test_si_sdr_of_a_copy_with_noise_10_db_below_is_10_db() -> None:
    target = noise(6)
    interference = noise(7) * 10 ** (-10 / 20)

    assert si_sdr_db(0.5 * (target + interference), target) == pytest.approx(10.0, abs=0.5)


def test_mismatched_spans_are_an_error_not_a_number() -> None:
    with pytest.raises(ValueError, match="equal"):
        erle_db(noise(1), noise(1)[:-1])
    with pytest.raises(ValueError, match="equal"):
        si_sdr_db(noise(1), noise(1)[:-1])


def test_kept_level_is_the_gain_applied_to_the_user():
    rng = np.random.default_rng(3)
    user = rng.standard_normal(16_000)
    assert kept_level_db(0.5 * user, user) == pytest.approx(-6.02, abs=0.01)
    assert kept_level_db(user + 0.1 * rng.standard_normal(16_000), user) == pytest.approx(0.0, abs=0.1)
