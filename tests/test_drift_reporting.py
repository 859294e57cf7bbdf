"""The speaker/mic clock drift where a person sees it: `voiceloop calibrate --drift-s` and the
session log of a conversation whose canceller compensates drift."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import script
from voiceloop.audio.calibration import MAX_DELAY_S, chirp, chirp_drift_ppm
from voiceloop.audio.devices.delay import estimate_delay
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.room_echo import ChangingEchoPath, EchoConditions
from voiceloop.audio.rooms import HARD_SCENARIOS
from voiceloop.audio.virtual import VirtualRoom, room_as_configured, room_impulse_response
from voiceloop.build.llm import choose_llm
from voiceloop.session.log import read_session
from voiceloop.session.runner import conversation


def swept_through_a_drifting_room(drift_ppm: float, seconds: float) -> tuple[np.ndarray, np.ndarray, list]:
    """Chirps laid out as calibrate lays them, played through the room's own drifting echo
    path; (played, recorded, [(start, whole-sample lag)]) as calibrate finds them."""
    sweep = chirp()
    max_lag = int(MAX_DELAY_S * SAMPLE_RATE)
    period = sweep.size + max_lag + SAMPLE_RATE // 10
    starts = [SAMPLE_RATE // 2 + i * period for i in range(int(seconds * SAMPLE_RATE) // period)]
    frames = -(-(starts[-1] + period) // FRAME_SAMPLES)
    played = np.zeros(frames * FRAME_SAMPLES, np.float32)
    for start in starts:
        played[start : start + sweep.size] = sweep
    rir = room_impulse_response(0.4, np.random.default_rng(7))
    path = ChangingEchoPath(37.3, -6.0, rir, False, EchoConditions(drift_ppm=drift_ppm))
    echo = np.concatenate([path.process(frame) for frame in played.reshape(frames, FRAME_SAMPLES)])
    noise = np.random.default_rng(8).standard_normal(echo.size).astype(np.float32)
    recorded = echo + 10 ** (-60 / 20) * noise
    found = []
    for start in starts:
        window = slice(start - SAMPLE_RATE // 20, start + sweep.size + max_lag)
        estimate = estimate_delay(played[window], recorded[window], max_lag)
        assert estimate.clear
        found.append((start, estimate.lag_samples))
    return played, recorded, found


@pytest.mark.parametrize("drift_ppm", [80.0, -40.0, 0.0])
def test_a_thirty_second_sweep_measures_the_drift_within_3_ppm(drift_ppm: float) -> None:
    played, recorded, found = swept_through_a_drifting_room(drift_ppm, 30.0)
    measured = chirp_drift_ppm(played, recorded, found)
    assert measured is not None
    assert measured == pytest.approx(drift_ppm, abs=3.0)


def test_three_chirps_are_too_short_to_say() -> None:
    played, recorded, found = swept_through_a_drifting_room(80.0, 4.5)
    assert chirp_drift_ppm(played, recorded, found) is None


@pytest.mark.slow
async def test_the_session_log_keeps_the_drift_the_canceller_measured(room_settings) -> None:
    """A conversation in the drift+60ppm room (the greeting and one reply: ~6 s of echo) with
    the profile's canceller: the session's last line says how far apart the clocks ran."""
    scenario = HARD_SCENARIOS["drift+60ppm"]
    room_settings.audio.room = scenario.room
    room_settings.aec.speex.drift_compensation = True
    room = VirtualRoom(
        script({"say": "tell me a joke", "pause_ms": 300}),
        room_as_configured(room_settings),
        conditions=scenario.conditions,
    )
    llm = await choose_llm(room_settings, lambda _: None)
    async with conversation(room_settings, room, llm=llm) as talk:
        await talk.run()
    end = read_session(talk.session.dir / "session.jsonl")[-1]
    assert end["event"] == "session_end"
    assert end["aec_drift_ppm"] == pytest.approx(60.0, abs=5.0)
    assert end["aec_delay_correction_ms"] == 0.0  # the room's delay was configured right
