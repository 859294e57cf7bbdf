"""`voiceloop transcribe` and `voiceloop models` as a user meets them.

The recogniser is the paraformer adapter on tiny random-init FunASR models (SeACo-Paraformer +
fsmn-vad + ct-punc, loaded through AutoModel), configured by a TOML file as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from voiceloop.asr.batch import decode, expand_inputs
from voiceloop.audio.frames import resample
from voiceloop.cli.app import app
from voiceloop.testing.tiny_funasr import TinyModels, build_once
from voiceloop.tts.espeak import render

VOICELOOP = [sys.executable, "-m", "voiceloop"]
ESPEAK_RATE = 22050


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_once(tmp_path_factory.getbasetemp() / "tiny-funasr")


@pytest.fixture
def config(tmp_path: Path, tiny: TinyModels) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(
        "[asr]\n"
        'name = "paraformer"\n'
        "[asr.paraformer]\n"
        f'model = "{tiny.seaco}"\n'
        f'vad_model = "{tiny.vad}"\n'
        f'punc_model = "{tiny.punc}"\n'
        'device = "cpu"\n'
        "ncpu = 1\n",
        encoding="utf-8",
    )
    return path


def voice(text: str, rate: int = ESPEAK_RATE) -> np.ndarray:
    """espeak speech (22.05 kHz) at `rate`, with a little room noise either side."""
    speech = resample(render(text, "en-us"), 16000, rate)
    pad = np.zeros(rate // 2, np.float32)
    audio = np.concatenate([pad, speech, pad])
    return audio + (np.random.default_rng(0).standard_normal(len(audio)) * 10 ** (-55 / 20)).astype(
        np.float32
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A good WAV, an MP3 at 44.1 kHz, an empty file and a corrupt one."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sf.write(inbox / "good.wav", voice("what time is it"), ESPEAK_RATE)
    sf.write(inbox / "song.mp3", voice("turn on the lights", 44100), 44100, format="MP3")
    (inbox / "empty.wav").write_bytes(b"")
    (inbox / "corrupt.mp3").write_bytes(np.random.default_rng(1).bytes(4096))
    (inbox / "notes.txt").write_text("not audio, and not picked up from a folder")
    return inbox


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_a_folder_gives_two_results_two_clear_errors_and_a_partial_exit(folder, config, tmp_path):
    out = tmp_path / "out"
    code, _, stderr = run(
        "transcribe", str(folder), "--config", str(config), "--format", "json", "--out", str(out)
    )

    assert code == 3, stderr  # partial failure
    assert sorted(p.name for p in out.iterdir()) == ["good.json", "song.json"]
    for name, spoken_s in (
        ("good", voice("what time is it").size / ESPEAK_RATE),
        ("song", voice("turn on the lights", 44100).size / 44100),
    ):
        record = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        assert set(record) == {"file", "text", "timestamps", "duration_s", "elapsed_s"}
        assert record["file"].endswith(f"{name}.{'wav' if name == 'good' else 'mp3'}")
        assert record["text"] and record["elapsed_s"] > 0
        assert record["duration_s"] == pytest.approx(spoken_s, abs=0.1)  # decoded and resampled
        assert all(
            len(stamp) == 3 and stamp[1] <= stamp[2] <= record["duration_s"] + 0.05
            for stamp in record["timestamps"]
        )

    assert "empty.wav: empty file (0 bytes)" in stderr
    assert "corrupt.mp3: not audio that can be decoded" in stderr
    assert "notes.txt" not in stderr
    assert "2/4 files" in stderr and "2 failed" in stderr and "RTF" in stderr


def test_one_file_as_text_goes_to_stdout_alone(folder, config):
    code, stdout, stderr = run("transcribe", str(folder / "good.wav"), "--config", str(config))

    assert code == 0, stderr
    text = stdout.strip()
    assert text and "\n" not in text and "good.wav" not in text
    assert "1/1 files" in stderr


def test_json_to_stdout_is_one_object_per_line(folder, config):
    code, stdout, _ = run(
        "transcribe",
        str(folder / "good.wav"),
        str(folder / "song.mp3"),
        "--config",
        str(config),
        "-f",
        "json",
    )

    assert code == 0
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [Path(r["file"]).name for r in records] == ["good.wav", "song.mp3"]


def test_srt_cues_are_numbered_timed_and_inside_the_audio(folder, config, tmp_path):
    code, _, stderr = run(
        "transcribe", str(folder / "good.wav"), "--config", str(config), "-f", "srt", "--out", str(tmp_path)
    )

    assert code == 0, stderr
    blocks = (tmp_path / "good.srt").read_text(encoding="utf-8").strip().split("\n\n")
    assert blocks
    for number, block in enumerate(blocks, start=1):
        index, timing, text = block.split("\n")
        assert index == str(number) and text
        start, _, end = timing.partition(" --> ")
        assert start < end <= "00:00:03,000"  # good.wav lasts about 2.3 s


def test_hotwords_from_the_command_line_reach_the_model(folder, config):
    _, plain, _ = run("transcribe", str(folder / "good.wav"), "--config", str(config), "--hotwords", "")
    _, biased, _ = run(
        "transcribe", str(folder / "good.wav"), "--config", str(config), "--hotwords", "魔搭 阿里巴巴"
    )
    code, _, refused = run(
        "transcribe", str(folder / "good.wav"), "--config", str(config), "--hotwords", "xyzzy"
    )

    assert plain.strip() != biased.strip()
    assert code == 1 and "xyzzy" in refused and "vocabulary" in refused


# Runs the CLI and, at exit, writes which of the slow imports it made: importing FunASR (12 s)
# is where a missing model used to cost a 20-40 s hub look-up and a misleading message.
CLI_WITH_IMPORT_RECORD = (
    "import atexit, sys\n"
    "record_to = sys.argv.pop(1)\n"
    "def record():\n"
    "    with open(record_to, 'w') as out:\n"
    "        out.write(' '.join(m for m in ('funasr', 'modelscope') if m in sys.modules))\n"
    "atexit.register(record)\n"
    "from voiceloop.cli.app import main\n"
    "sys.argv[0] = 'voiceloop'\n"
    "main()\n"
)


def test_a_model_not_in_the_cache_fails_before_loading_funasr_naming_the_command(folder, tmp_path):
    """Fast because it never gets as far as FunASR or the hub: the cache is checked first (a
    wall-clock bound here would fail on a loaded machine without saying anything new)."""
    env = {**os.environ, "MODELSCOPE_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    imported = tmp_path / "imported.txt"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CLI_WITH_IMPORT_RECORD,
            str(imported),
            "transcribe",
            str(folder / "good.wav"),
            "--asr",
            "paraformer",
            "--asr-model",
            "paraformer-zh",
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )

    assert imported.read_text() == "", f"the CLI imported {imported.read_text()} before failing"
    assert result.returncode == 1
    assert "'paraformer-zh'" in result.stderr and "not in the local model cache" in result.stderr
    assert "voiceloop models download paraformer-zh" in result.stderr
    assert result.stdout == ""


def test_models_download_offline_says_why_without_hanging(tmp_path):
    env = {**os.environ, "MODELSCOPE_CACHE": str(tmp_path), "MODELSCOPE_DOMAIN": "modelscope.invalid"}
    result = subprocess.run(
        [*VOICELOOP, "models", "download", "fsmn-vad"],
        check=False,
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=30,
    )

    assert result.returncode == 1
    assert "cannot reach modelscope.invalid" in result.stderr


def test_models_list_shows_what_is_cached(tiny: TinyModels, tmp_path: Path, monkeypatch):
    import shutil

    from voiceloop.asr.models import ALIASES

    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    shutil.copytree(
        tiny.vad, tmp_path / "models" / ALIASES["fsmn-vad"].replace("/", "--") / "snapshots" / "master"
    )
    code, stdout, _ = run("models", "list")

    assert code == 0
    rows = {line.split("│")[1].strip(): line for line in stdout.splitlines() if line.count("│") > 3}
    assert "│ yes" in rows["fsmn-vad"] and "│ no" in rows["paraformer-zh"]


def test_other_formats_decode_through_ffmpeg_and_folders_pick_audio_only(tmp_path: Path):
    import av

    rate = 44100
    tone = (np.sin(np.arange(rate) * 2 * np.pi * 440 / rate) * 0.3).astype(np.float32)
    with av.open(str(tmp_path / "voice.m4a"), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    (tmp_path / "readme.md").write_text("hi")

    audio = decode(tmp_path / "voice.m4a")
    assert audio.dtype == np.float32 and abs(len(audio) / 16000 - 1.0) < 0.1
    assert expand_inputs([tmp_path]) == [tmp_path / "voice.m4a"]
