"""The path watch's question, "is this loud residual the echo?", on two voices at one pitch.

A user who talks over a reply at the reply's own pitch (tests/test_soak.py: espeak over
espeak) is phase-locked to it: GCC-PHAT of the residual against the reference is then a comb
of peaks one pitch period apart, and one lands in any lag range. Asked about the lags from
the echo's on (where the mic holds the reference), the user is not the echo; the echo, and
what a changed path leaves of it, still is.
"""

from __future__ import annotations

import numpy as np

from voiceloop.aec.path_watch import CLEAR_ECHO, MAX_LAG_S, MIN_LAG_S, echo_clarity
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.audio.room_echo import walked_past
from voiceloop.audio.virtual import room_impulse_response

SECONDS = 0.4  # the watch's window
PITCH_HZ = 117.0
ECHO_DELAY = int(0.010 * SAMPLE_RATE)  # the reference leads its echo by 10 ms
LAGS = int(MIN_LAG_S * SAMPLE_RATE), int(MAX_LAG_S * SAMPLE_RATE)


def voice(rng: np.random.Generator, offset_s: float) -> np.ndarray:
    """A vowel at PITCH_HZ: a pulse train through a random short filter (its own formants)."""
    n = int(SECONDS * SAMPLE_RATE)
    pulses = np.zeros(n)
    period = SAMPLE_RATE / PITCH_HZ
    for k in np.arange(offset_s * SAMPLE_RATE % period, n, period):
        pulses[int(k)] = 1.0
    tract = rng.standard_normal(64) * np.exp(-np.arange(64) / 12.0)
    return np.convolve(pulses, tract)[:n]


def room(rng: np.random.Generator, signal: np.ndarray) -> np.ndarray:
    response = np.zeros(1600)
    response[0] = 1.0
    response[40:] = 0.3 * rng.standard_normal(1560) * np.exp(-np.arange(1560) / 800.0)
    echo = np.convolve(signal, response)[: signal.size]
    return np.concatenate([np.zeros(ECHO_DELAY), echo])[: signal.size]


def test_a_user_at_the_replys_pitch_is_not_taken_for_its_echo() -> None:
    rng = np.random.default_rng(3)
    reference = voice(rng, 0.0)
    user = voice(rng, 0.0055)  # the soak test's: pulses 5.5 ms apart
    echo = room(rng, reference)
    noise = 1e-3 * rng.standard_normal(reference.size)
    mic = echo + user + noise
    residual = user + 0.05 * echo + noise  # a converged filter, the user talking over it
    assert echo_clarity(reference, residual, *LAGS) >= CLEAR_ECHO  # the comb, anywhere
    assert echo_clarity(reference, residual, *LAGS, mic=mic) < CLEAR_ECHO


def test_what_a_walk_past_leaves_is_still_the_echo() -> None:
    """The filter still models the old path; the room now has the new one (a body near the
    direct path: voiceloop/audio/room_echo.py)."""
    rng = np.random.default_rng(4)
    reference = voice(rng, 0.0) + 0.3 * rng.standard_normal(int(SECONDS * SAMPLE_RATE))
    before = room_impulse_response(0.3, np.random.default_rng(5))
    after = walked_past(before, np.random.default_rng(6))
    noise = 1e-3 * rng.standard_normal(reference.size)
    mic = delayed(np.convolve(reference, after)[: reference.size]) + noise
    residual = mic - delayed(np.convolve(reference, before)[: reference.size])
    assert echo_clarity(reference, residual, *LAGS, mic=mic) >= CLEAR_ECHO


def delayed(echo: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros(ECHO_DELAY), echo])[: echo.size]
