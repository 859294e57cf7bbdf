"""Errors a newcomer meets in the first minutes each name the way forward (issue 20): the
offline profile when the default one's models are missing, the key that lets pocketsphinx run,
what to do about an LLM that does not answer, the command that lists voices; and libmpg123's
own notes about damaged MP3 frames stay off the terminal."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from voiceloop.audio.native_notes import mpg123_notes_dropped
from voiceloop.tts.espeak import render

VOICELOOP = [sys.executable, "-m", "voiceloop"]


def voiceloop(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(home), "COLUMNS": "80", "MODELSCOPE_CACHE": str(home / "ms")}
    if "PYTHONPATH" in os.environ:
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [*VOICELOOP, *args], capture_output=True, text=True, env={**base, **env}, timeout=120, check=False
    )


def one_line(text: str) -> str:
    return " ".join(text.split())


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spoken_wav(path: Path, text: str = "what time is it") -> Path:
    sf.write(path, render(text, "en-us"), 16000)
    return path


def test_transcribe_without_the_default_models_names_the_download_and_the_offline_profile(tmp_path: Path):
    result = voiceloop("transcribe", str(spoken_wav(tmp_path / "a.wav")), home=tmp_path)
    assert result.returncode == 1
    message = one_line(result.stderr)
    assert "voiceloop models download paraformer-zh fsmn-vad ct-punc" in message
    assert "-c offline" in message


def test_serve_without_the_default_models_names_the_offline_profile(tmp_path: Path):
    result = voiceloop("serve", "--port", str(unused_port()), home=tmp_path)
    assert result.returncode == 1
    assert "not downloaded" in one_line(result.stderr) and "-c offline" in one_line(result.stderr)


def test_serve_with_pocketsphinx_on_the_mandarin_profile_names_the_key_to_set(tmp_path: Path):
    result = voiceloop("serve", "--asr", "pocketsphinx", "--port", str(unused_port()), home=tmp_path)
    assert result.returncode == 1
    message = one_line(result.stderr)
    assert "asr.language = 'zh'" in message and "VOICELOOP_ASR__LANGUAGE=en" in message

    # ... and that fix is enough: the file is recognised with it.
    fixed = voiceloop(
        "transcribe",
        "--asr",
        "pocketsphinx",
        str(spoken_wav(tmp_path / "a.wav")),
        home=tmp_path,
        VOICELOOP_ASR__LANGUAGE="en",
    )
    assert fixed.returncode == 0, fixed.stderr


def test_doctor_on_an_unreachable_llm_says_how_to_point_elsewhere_or_do_without(tmp_path: Path):
    down = f"http://127.0.0.1:{unused_port()}/v1"
    result = voiceloop("doctor", home=tmp_path, COLUMNS="200", VOICELOOP_LLM__BASE_URL=down)
    assert result.returncode == 1
    report = one_line(result.stdout)
    assert "cannot reach the language model" in report
    assert "VOICELOOP_LLM__BASE_URL=http://HOST:PORT/v1" in report and "voiceloop doctor --llm echo" in report

    without = voiceloop("doctor", "--llm", "echo", home=tmp_path, COLUMNS="200", VOICELOOP_LLM__BASE_URL=down)
    assert "cannot reach the language model" not in without.stdout
    assert "llm adapter 'echo'" in without.stdout or "(echo)" in without.stdout


def test_an_unknown_espeak_voice_points_at_the_voices_command(tmp_path: Path):
    result = voiceloop(
        "say", "hello", "--tts", "espeak", "--voice", "zz", "-o", str(tmp_path / "x.wav"), home=tmp_path
    )
    assert result.returncode == 1
    message = one_line(result.stderr)
    assert "no voice named 'zz'" in message and "voiceloop voices --tts espeak" in message
    assert "list_voices()" not in message


def test_a_damaged_mp3_is_transcribed_without_libmpg123_notes_on_the_terminal(tmp_path: Path):
    clean = tmp_path / "clean.mp3"
    sf.write(clean, render("what time is it", "en-us"), 16000, format="MP3")
    data = clean.read_bytes()
    damaged = tmp_path / "damaged.mp3"  # 300 bytes of garbage mid-stream: libmpg123 resyncs
    damaged.write_bytes(data[:2000] + np.random.default_rng(2).bytes(300) + data[2000:])

    result = voiceloop("transcribe", "-c", "offline", str(damaged), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "what time is it"
    for note in ("Illegal Audio-MPEG-Header", "resync", "libmpg123", "Xing"):
        assert note not in result.stderr


def test_other_stderr_written_while_an_mp3_decodes_still_arrives(capfd) -> None:  # noqa: ANN001
    with mpg123_notes_dropped():
        os.write(2, b"Note: Illegal Audio-MPEG-Header 0x0 at offset 1.\nanother thread's line\n")
        os.write(2, b"[src/libmpg123/parse.c:do_readahead():1083] warning: one-frame stream?\n")
    assert capfd.readouterr().err == "another thread's line\n"
