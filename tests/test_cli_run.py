"""`voiceloop run` on real devices: a private PulseAudio daemon, a user talking into one null
sink (the mic is its monitor) and the assistant's speaker on another, recorded by `parec`.

The offline stack (silero, pocketsphinx, espeak) and the echo LLM keep it self-contained."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceloop.audio.frames import SAMPLE_RATE, to_float32
from voiceloop.session.log import read_session
from voiceloop.testing.heard import assert_heard_whole_and_in_order
from voiceloop.testing.processes import interruptible
from voiceloop.testing.pulse import (
    LOOPBACK_MIC,
    SPEAKER_DEVICE,
    SPEAKER_SINK,
    USER_MIC,
    USER_SINK,
    PulseServer,
)

VOICELOOP = [sys.executable, "-m", "voiceloop"]
pytestmark = pytest.mark.timeout(120)


def start_run(server: PulseServer, runs: Path, *device_args: str) -> subprocess.Popen[str]:
    env = {
        **server.client_env(),
        "VOICELOOP_LOOP__GREETING": "",  # the first sound on the speaker is the reply
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }
    return subprocess.Popen(
        [
            *VOICELOOP,
            "run",
            "--config",
            "offline",
            "--llm",
            "echo",
            "--out",
            str(runs),
            "--seconds",
            "60",
            *device_args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,  # Ctrl-C as from a terminal, however the runner was started
    )


def wait_until_listening(process: subprocess.Popen[str]) -> list[str]:
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("listening"):
            return seen
    raise AssertionError(
        f"never started listening: {''.join(seen)}{process.stderr.read() if process.stderr else ''}"
    )


def wait_for_event(runs: Path, event: str, timeout_s: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for log in runs.glob("*/session.jsonl"):
            events = read_session(log)
            if any(e["event"] == event for e in events):
                return events
        time.sleep(0.2)
    raise AssertionError(f"no '{event}' in the session log within {timeout_s:.0f} s")


def user_says(text: str, path: Path) -> Path:
    """The user's line as a WAV, at the virtual room's voice level."""
    from voiceloop.audio.virtual import at_voice_level, trim_silence
    from voiceloop.tts.espeak import render

    speech = at_voice_level(trim_silence(to_float32(render(text, "en-us+m3", 165))))
    sf.write(path, np.concatenate([np.zeros(SAMPLE_RATE // 4, np.float32), speech]), SAMPLE_RATE)
    return path


def room_noise(path: Path, seconds: float = 60, dbfs: float = -50) -> Path:
    """A mic never hears digital silence, and pocketsphinx transcribed clean synthetic speech
    in it only about half the time: this plays under the user, as a room's noise floor."""
    rng = np.random.default_rng(1)
    sf.write(
        path,
        (rng.standard_normal(int(seconds * SAMPLE_RATE)) * 10 ** (dbfs / 20)).astype(np.float32),
        SAMPLE_RATE,
    )
    return path


def test_run_hears_a_talking_user_and_plays_the_reply_then_ctrl_c_ends_it_cleanly(
    pulse: PulseServer, tmp_path: Path
):
    runs = tmp_path / "runs"
    speaker_recording = pulse.record(f"{SPEAKER_SINK}.monitor", tmp_path / "speaker.wav")
    noise = pulse.play(room_noise(tmp_path / "noise.wav"), sink=USER_SINK)
    run = start_run(pulse, runs, "--input", USER_MIC, "--output", SPEAKER_DEVICE)
    try:
        wait_until_listening(run)
        pulse.play(user_says("what time is it", tmp_path / "user.wav"), sink=USER_SINK).wait(timeout=20)
        events = wait_for_event(runs, "turn")
        time.sleep(3.0)  # the reply ("You said: what time is it.") plays out
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
        for helper in (speaker_recording, noise):
            helper.terminate()
            helper.wait(timeout=10)
    assert run.returncode == 0, err
    assert "stopped (Ctrl-C)" in out

    turn = next(e for e in events if e["event"] == "turn")
    assert turn["transcript"] == "what time is it"
    assert turn["heard_text"] == "You said: what time is it."
    assert turn["timings_ms"]["voice_to_voice"] is not None

    session_dir = next(runs.iterdir())
    log = read_session(session_dir / "session.jsonl")
    assert log[-1]["event"] == "session_end" and log[-1]["turns"] == 1  # closed, not cut off
    device = next(e for e in log if e["event"] == "audio_device")
    assert (device["input"], device["output"]) == (USER_MIC, SPEAKER_DEVICE)
    assert device["input_overruns"] == 0

    # What the loop says it played is what reached the speaker's sink, whole and in order
    # (a late block on a loaded machine may put silence into it: the log counts those).
    played = sf.read(session_dir / "conversation.wav", dtype="float32")[0][:, 1]
    heard, rate = sf.read(tmp_path / "speaker.wav", dtype="float32")
    assert rate == SAMPLE_RATE and np.max(np.abs(played)) > 0.05
    late_blocks = (
        device["output_underruns"] - device["startup_underruns"] + device["device_output_underflows"]
    )
    assert_heard_whole_and_in_order(played, heard, min_pieces=4, late_blocks=late_blocks)


def test_run_stops_with_a_message_when_the_sound_server_goes_away_and_keeps_the_log(
    pulse: PulseServer, tmp_path: Path
):
    runs = tmp_path / "runs"
    run = start_run(pulse, runs, "--input", LOOPBACK_MIC, "--output", SPEAKER_DEVICE)
    try:
        wait_until_listening(run)
        time.sleep(0.5)
        pulse.go_away()
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1
    message = " ".join(err.split())
    assert "audio stopped:" in message and "unplugged or the sound server went away" in message
    session_dir = next(runs.iterdir())
    assert f"the session log so far is kept in {session_dir}" in " ".join(out.split())
    log = read_session(session_dir / "session.jsonl")
    assert log[0]["event"] == "session_start" and log[-1]["event"] == "session_end"


def test_run_with_a_device_that_is_not_there_names_the_close_matches(pulse: PulseServer, tmp_path: Path):
    result = subprocess.run(
        [
            *VOICELOOP,
            "run",
            "--config",
            "offline",
            "--llm",
            "echo",
            "--input",
            "vl_usr_mic",
            "--out",
            str(tmp_path),
        ],
        check=False,
        env={**pulse.client_env(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "no input device matches 'vl_usr_mic'" in message and f"'{USER_MIC}'" in message
    assert not any(tmp_path.iterdir())  # nothing started, so no session was written
