"""A kiosk: `voiceloop serve --session devices` runs the conversation on the machine's own
microphone and speaker from start-up, and its screen follows it over the events feed. The
devices are a private PulseAudio's null sinks (see tests/test_cli_run.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets

from tests.test_cli_run import room_noise, user_says
from voiceloop.session.log import read_session
from voiceloop.testing.llm_server import unused_port
from voiceloop.testing.processes import interruptible
from voiceloop.testing.pulse import (
    SPEAKER_DEVICE,
    USER_MIC,
    USER_SINK,
    PulseServer,
)

pytestmark = pytest.mark.timeout(120)


def start_kiosk(server: PulseServer, runs: Path, port: int) -> subprocess.Popen[str]:
    env = {
        **server.client_env(),
        "VOICELOOP_LOOP__GREETING": "",
        "VOICELOOP_AUDIO__INPUT_DEVICE": USER_MIC,
        "VOICELOOP_AUDIO__OUTPUT_DEVICE": SPEAKER_DEVICE,
        "VOICELOOP_LOG__DIR": str(runs),
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "voiceloop", "serve", "-c", "offline", "--llm", "echo"]
    return subprocess.Popen(
        [*command, "--session", "devices", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,  # Ctrl-C as from a terminal, however the runner was started
    )


def wait_healthy(url: str, process: subprocess.Popen[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {process.communicate()[1]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve did not come up")


def test_a_kiosk_screen_follows_the_conversation_on_the_machines_own_devices(
    pulse: PulseServer, tmp_path: Path
) -> None:
    runs, port = tmp_path / "runs", unused_port()
    url = f"http://127.0.0.1:{port}"
    noise = pulse.play(room_noise(tmp_path / "noise.wav"), sink=USER_SINK)
    kiosk = start_kiosk(pulse, runs, port)

    async def watch() -> list[dict]:
        async with websockets.connect(f"ws://127.0.0.1:{port}/v1/session/events") as feed:
            snapshot = json.loads(await feed.recv())
            assert snapshot["session"]["running"] and snapshot["session"]["source"] == "devices"
            await asyncio.to_thread(
                lambda: pulse.play(user_says("what time is it", tmp_path / "user.wav"), sink=USER_SINK).wait(
                    20
                )
            )
            events = []
            async with asyncio.timeout(40):
                while not any(e["type"] == "turn" for e in events):
                    events.append(json.loads(await feed.recv()))
            return events

    try:
        wait_healthy(url, kiosk)
        events = asyncio.run(watch())
        kiosk.send_signal(signal.SIGINT)
        _, err = kiosk.communicate(timeout=30)
    finally:
        if kiosk.poll() is None:
            kiosk.kill()
        noise.terminate()
        noise.wait(timeout=10)

    assert kiosk.returncode == 0, err
    assert [e["text"] for e in events if e["type"] == "user"] == ["what time is it"]
    turn = next(e for e in events if e["type"] == "turn")
    assert turn["user"] == "what time is it" and turn["reply"] == "You said: what time is it."
    assert turn["timings_ms"]["voice_to_voice"] is not None
    # Ctrl-C on the server closed the session log rather than cutting it off.
    log = read_session(next(runs.iterdir()) / "session.jsonl")
    assert log[-1]["event"] == "session_end" and log[-1]["turns"] == 1
    device = next(e for e in log if e["event"] == "audio_device")
    assert (device["input"], device["output"]) == (USER_MIC, SPEAKER_DEVICE)
