"""The `openai` recogniser against FunASR's own server, a real server no one here wrote.

`funasr-server` (FunASR 1.4.16, installed with the test extras) is started on a tiny random-init
Paraformer directory, as a fleet's GPU box would be started on a real one. Everything stays
offline: the model is a local directory, the server loads it with update checks off, and the
hub's address is made unresolvable, so a download attempt would fail the test instead of hanging.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import script
from voiceloop.demo import run_demo
from voiceloop.session.log import read_session
from voiceloop.testing.clips import encoded, spoken_clip
from voiceloop.testing.llm_server import unused_port
from voiceloop.testing.tiny_funasr import TinyModels, build_once

pytestmark = pytest.mark.slow  # the server imports FunASR (12 s) and the loop runs in real time

OFFLINE = {
    "MODELSCOPE_DOMAIN": "modelscope.invalid",  # a hub download fails at once, visibly
    "HF_HUB_OFFLINE": "1",
    "HF_ENDPOINT": "http://hub.invalid",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_once(tmp_path_factory.getbasetemp() / "tiny-funasr")


@pytest.fixture(scope="module")
def funasr_server(tiny: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (".../v1") of a running `funasr-server` on the tiny Paraformer."""
    program = Path(sys.executable).with_name("funasr-server")
    assert program.is_file(), f"{program} is missing: install the test extras (pip install -e '.[test]')"
    port = unused_port()
    log_path = tmp_path_factory.mktemp("funasr-server") / "server.log"
    command = [str(program), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--model-path", str(tiny.paraformer)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **OFFLINE},
        )
    try:
        deadline = time.monotonic() + 180  # importing FunASR on a busy 2-core machine
        while True:
            if process.poll() is not None:
                pytest.fail(f"funasr-server exited ({process.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"funasr-server did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert "download" not in log_path.read_text().lower().replace("download models from model hub", "")


def official_client_text(base_url: str, wav: bytes) -> str:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="not-needed", max_retries=0, timeout=120)
    return client.audio.transcriptions.create(
        model="custom", file=("clip.wav", wav), response_format="json"
    ).text


def test_voiceloop_transcribe_through_funasr_server(funasr_server: str, tmp_path: Path) -> None:
    wav = encoded(spoken_clip("what time is it", seconds=3.0))
    (tmp_path / "clip.wav").write_bytes(wav)
    env = {**os.environ, **OFFLINE, "VOICELOOP_ASR__OPENAI__BASE_URL": funasr_server, "COLUMNS": "200"}

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voiceloop",
            "transcribe",
            "--asr",
            "openai",
            "-f",
            "json",
            str(tmp_path / "clip.wav"),
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    # The model the server loaded ("custom": started with --model-path), not a name it would
    # have to fetch from its hub.
    assert f"openai custom at {funasr_server}" in result.stderr
    text = [line for line in result.stdout.splitlines() if line.strip()]
    expected = official_client_text(funasr_server, wav)
    assert expected  # the random model says something for speech
    assert json.loads("\n".join(text))["text"] == expected


async def test_a_two_turn_loop_hears_through_funasr_server(room_settings, funasr_server: str) -> None:
    room_settings.asr.name = "openai"
    room_settings.asr.openai.base_url = funasr_server
    room_settings.asr.language = "zh"
    room_settings.asr.timeout_s = 60.0  # the server's cost under a busy CI machine, not ours
    room_settings.audio.room.speed = 2.0
    room_settings.loop.greeting = ""
    user = script({"say": "what time is it", "pause_ms": 300}, {"say": "tell me a joke"})

    result = await run_demo(room_settings, user, say=lambda _: None)

    lines = read_session(result.session_dir / "session.jsonl")
    turns = [line for line in lines if line["event"] == "turn"]
    assert len(turns) == 2, turns
    assert all(t["outcome"] == "answered" and t["transcript"] for t in turns)
