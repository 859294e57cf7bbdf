"""`voiceloop say` and `voiceloop voices` as a user meets them: offline, against the loopback
Edge service, and on a machine without speakers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile
from typer.testing import CliRunner

from voiceloop.cli.app import app
from voiceloop.testing.edge_server import EdgeServer
from voiceloop.tts.edge import SERVICE_HOST

runner = CliRunner()
ENV = {"COLUMNS": "200", "VOICELOOP_CONFIG": ""}


def online() -> bool:
    try:
        socket.getaddrinfo(SERVICE_HOST, 443)
    except OSError:
        return False
    return True


def has_output_device() -> bool:
    try:
        import sounddevice

        return any(d["max_output_channels"] for d in sounddevice.query_devices())
    except Exception:  # noqa: BLE001  # no PortAudio: no device
        return False


@pytest.fixture
def server() -> Iterator[EdgeServer]:
    with EdgeServer() as running, running.patched():
        yield running


@pytest.mark.skipif(online(), reason="checks the offline path; this machine reaches the service")
def test_offline_say_with_edge_falls_back_and_writes_the_wav_saying_why_once(tmp_path: Path):
    out = tmp_path / "x.wav"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "voiceloop", "say", "--tts", "edge", "hello", "-o", str(out)],
        check=False,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200"},
        timeout=60,
    )
    assert time.monotonic() - started < 15
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and f"cannot resolve {SERVICE_HOST} (offline?)" in notes[0]
    assert "Speaking with espeak instead" in notes[0]
    audio, rate = soundfile.read(out)
    assert rate == 16_000 and 0.3 < len(audio) / rate < 3.0


def test_say_writes_what_espeak_says_to_a_wav(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "hello.wav"
    result = runner.invoke(app, ["say", "hello there", "--tts", "espeak", "-o", str(out)], env=ENV)
    assert result.exit_code == 0, result.output
    audio, rate = soundfile.read(out, dtype="float32")
    assert rate == 16_000 and audio.ndim == 1 and len(audio) > 8_000
    assert f"wrote {out}" in result.stderr


def test_say_streams_from_edge_with_the_default_profile(server: EdgeServer, tmp_path: Path) -> None:
    out = tmp_path / "nihao.wav"
    result = runner.invoke(app, ["say", "你好，今天天气很好。", "-c", "default", "-o", str(out)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "note:" not in result.stderr  # Edge answered: no fallback
    (request,) = server.requests
    assert request.voice.endswith("(zh-CN, XiaoxiaoNeural)") and request.text == "你好，今天天气很好。"
    audio, rate = soundfile.read(out)
    assert rate == 16_000 and len(audio) / rate > 1.0


def test_say_with_edge_refused_falls_back_with_one_note(server: EdgeServer, tmp_path: Path) -> None:
    from voiceloop.testing.edge_server import EdgeFault

    server.fail_always(EdgeFault(status=403))
    out = tmp_path / "fallback.wav"
    result = runner.invoke(app, ["say", "hello", "--tts", "edge", "-o", str(out)], env=ENV)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("note:") == 1 and "HTTP 403" in result.stderr
    assert out.stat().st_size > 1000


@pytest.mark.skipif(has_output_device(), reason="this machine has an output device")
def test_say_without_a_device_says_so_and_suggests_a_file() -> None:
    result = runner.invoke(app, ["say", "hello", "--tts", "espeak"], env=ENV)
    assert result.exit_code == 2
    assert "no audio output device" in result.stderr and "-o" in result.stderr


def test_voices_lists_the_services_voices_for_a_language(server: EdgeServer) -> None:
    result = runner.invoke(app, ["voices", "--lang", "zh"], env=ENV)
    assert result.exit_code == 0, result.output
    for name in ("zh-CN-XiaoxiaoNeural", "zh-CN-YunxiNeural", "zh-TW-HsiaoChenNeural", "zh-HK-HiuGaaiNeural"):
        assert name in result.stdout
    assert "en-US" not in result.stdout and server.voice_list_requests == 1

    only_mainland = runner.invoke(app, ["voices", "--lang", "zh-CN"], env=ENV)
    assert "zh-CN-YunxiNeural" in only_mainland.stdout and "zh-TW" not in only_mainland.stdout


def test_voices_offline_says_so_and_points_at_espeak(monkeypatch) -> None:
    import edge_tts.voices

    monkeypatch.setattr(edge_tts.voices, "VOICE_LIST", "https://edge-tts.invalid/voices/list?x=y")
    result = runner.invoke(app, ["voices"], env=ENV)
    assert result.exit_code == 1
    assert "cannot get the Edge-TTS voice list" in result.stderr and "(offline?)" in result.stderr
    assert "voiceloop voices --tts espeak" in result.stderr

    espeak = runner.invoke(app, ["voices", "--tts", "espeak", "--lang", "zh"], env=ENV)
    assert espeak.exit_code == 0 and "cmn" in espeak.stdout.split()
