"""The speaker/mic clock drift where a person sees it: `voiceloop calibrate --drift-s` and the
session log of a conversation whose canceller compensates drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import bench_room
from voiceloop.audio.calibration import (
    MAX_DELAY_S,
    CalibrationResult,
    chirp_drift_ppm,
    save_calibration,
    sweeps_heard,
)
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.room_echo import EchoConditions
from voiceloop.audio.rooms import HARD_SCENARIOS
from voiceloop.audio.virtual import (
    calibrated_drift_ppm,
    calibration_sweeps,
)
from voiceloop.build import build_adapter
from voiceloop.build.llm import choose_llm
from voiceloop.config import load_settings
from voiceloop.config.settings import RoomSettings
from voiceloop.session.log import read_session
from voiceloop.session.runner import conversation


def swept_through_a_drifting_room(drift_ppm: float, seconds: float) -> tuple[np.ndarray, np.ndarray, list]:
    """Calibrate's sweeps through a desk's drifting echo path (`calibration_sweeps`);
    (played, recorded, [(start, whole-sample lag)]) as calibrate finds them (`sweeps_heard`)."""
    desk = RoomSettings(echo_delay_ms=37.3, echo_gain_db=-6.0, rt60_s=0.4, noise_dbfs=-60.0, seed=7)
    played, recorded, starts, sweep_samples = calibration_sweeps(
        desk, EchoConditions(drift_ppm=drift_ppm), seconds
    )
    heard = sweeps_heard(played, recorded, starts, sweep_samples)
    assert all(estimate.clear for _, estimate in heard)
    return played, recorded, [(start, estimate.lag_samples) for start, estimate in heard]


@pytest.mark.parametrize("drift_ppm", [80.0, -40.0, 0.0])
def test_a_thirty_second_sweep_measures_the_drift_within_3_ppm(drift_ppm: float) -> None:
    played, recorded, found = swept_through_a_drifting_room(drift_ppm, 30.0)
    measured = chirp_drift_ppm(played, recorded, found)
    assert measured is not None
    assert measured == pytest.approx(drift_ppm, abs=3.0)


def test_three_chirps_are_too_short_to_say() -> None:
    played, recorded, found = swept_through_a_drifting_room(80.0, 4.5)
    assert chirp_drift_ppm(played, recorded, found) is None


@pytest.mark.parametrize("room", ["mandarin-10db-drift80", "drift-120ppm"])
def test_calibrate_in_a_drifting_room_measures_its_drift_even_at_10_db_through_a_clipping_speaker(
    room: str,
) -> None:
    scenario = HARD_SCENARIOS[room]
    measured = calibrated_drift_ppm(scenario.room, scenario.conditions, drift_s=30.0)
    assert measured == pytest.approx(scenario.conditions.drift_ppm, abs=2.0)


def test_a_calibrated_drift_is_saved_and_a_real_device_s_canceller_starts_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICELOOP_CALIBRATION", str(tmp_path / "calibration.toml"))
    result = CalibrationResult(
        delay_ms=41.5,
        echo_level_db=-6.0,
        input="USB mic",
        output="speaker",
        sample_rate=16000,
        drift_ppm=79.6,
    )
    save_calibration(result, load_settings("default"))
    real = load_settings("default", audio={"backend": "sounddevice"})
    assert (real.aec.delay_ms, real.aec.drift_ppm) == (41.5, 79.6)
    canceller = build_adapter(real, "aec", real.aec.name)
    assert canceller.drift_ppm == pytest.approx(79.6)  # from the first frame, before any echo
    # What the profile or the environment says wins; the virtual room describes its own.
    monkeypatch.setenv("VOICELOOP_AEC__DRIFT_PPM", "-20")
    assert load_settings("default", audio={"backend": "sounddevice"}).aec.drift_ppm == -20.0
    monkeypatch.delenv("VOICELOOP_AEC__DRIFT_PPM")
    assert load_settings("offline").aec.drift_ppm is None  # the virtual room
    # A calibration that did not measure the drift saves none: the echo measures it, as before.
    save_calibration(CalibrationResult(41.5, -6.0, "USB mic", "speaker", 16000), load_settings("default"))
    assert "drift_ppm" not in (tmp_path / "calibration.toml").read_text()
    assert load_settings("default", audio={"backend": "sounddevice"}).aec.drift_ppm is None


@pytest.mark.parametrize(
    "saved",
    [
        b"\xff\xfe\x00garbage",  # not text
        b"[aec\ndelay_ms = 41.5",  # not TOML
        b"aec = 3",  # no [aec] table
        b'[aec]\ndelay_ms = "fast"\ndrift_ppm = true',  # values that are not numbers
        b"[aec]\ndrift_ppm = 5000",  # a drift no clock has (the config allows +-1000)
    ],
)
def test_a_calibration_file_that_makes_no_sense_leaves_the_device_uncalibrated(
    saved: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The file is the user's to edit (and a disk's to corrupt): what cannot be read is as if
    calibrate had not run, the echo measures the delay and the drift, and the loop starts. The
    log says which file, and that calibrating again mends it."""
    (tmp_path / "calibration.toml").write_bytes(saved)
    monkeypatch.setenv("VOICELOOP_CALIBRATION", str(tmp_path / "calibration.toml"))
    real = load_settings("default", audio={"backend": "sounddevice"})
    assert (real.aec.delay_ms, real.aec.drift_ppm) == (None, None)
    assert f"the calibration file {tmp_path / 'calibration.toml'}" in caplog.text
    assert "run `voiceloop calibrate` again" in caplog.text
    # Where the config sets both values the file is not read, and not complained about.
    caplog.clear()
    monkeypatch.setenv("VOICELOOP_AEC__DELAY_MS", "40")
    monkeypatch.setenv("VOICELOOP_AEC__DRIFT_PPM", "0")
    configured = load_settings("default", audio={"backend": "sounddevice"})
    assert (configured.aec.delay_ms, configured.aec.drift_ppm) == (40.0, 0.0)
    assert "calibration file" not in caplog.text


@pytest.mark.slow
async def test_the_session_log_keeps_the_drift_the_canceller_measured(room_settings) -> None:
    """A conversation in the drift+60ppm room (the greeting and one reply: ~6 s of echo) with
    the profile's canceller: the session's last line says how far apart the clocks ran."""
    room = bench_room(room_settings, "drift+60ppm", {"say": "tell me a joke", "pause_ms": 300})
    llm = await choose_llm(room_settings, lambda _: None)
    async with conversation(room_settings, room, llm=llm) as talk:
        await talk.run()
    end = read_session(talk.session.dir / "session.jsonl")[-1]
    assert end["event"] == "session_end"
    assert end["aec_drift_ppm"] == pytest.approx(60.0, abs=5.0)
    assert end["aec_delay_correction_ms"] == 0.0  # the room's delay was configured right


def test_a_sweep_a_loaded_machine_delivered_a_block_late_does_not_bend_the_drift() -> None:
    played, recorded, found = swept_through_a_drifting_room(80.0, 30.0)
    late = found[7][0]  # one sweep's echo came a block (10 ms) late: the next ones are on time
    span = slice(late - FRAME_SAMPLES, late + int(MAX_DELAY_S * SAMPLE_RATE))
    recorded = recorded.copy()
    recorded[span] = np.concatenate([np.zeros(FRAME_SAMPLES, np.float32), recorded[span][:-FRAME_SAMPLES]])
    found = [(start, lag + (FRAME_SAMPLES if start == late else 0)) for start, lag in found]
    assert chirp_drift_ppm(played, recorded, found) == pytest.approx(80.0, abs=3.0)
