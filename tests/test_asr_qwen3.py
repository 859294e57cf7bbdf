"""Qwen3-ASR through qwen-asr's real loading and inference code, on a tiny random-init model
built with its own classes (voiceloop/testing/tiny_qwen3.py) and loaded with from_pretrained.

The model is untrained: it emits arbitrary characters of its small vocabulary. What the tests
prove is that audio, batches, the language hint, the context and the aligner reach the model
and come back through voiceloop's contract.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import script
from voiceloop.asr import models, qwen3_languages
from voiceloop.asr.base import AsrError, SpeechRecognizer
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.build import build_adapter
from voiceloop.config import load_settings
from voiceloop.tts.espeak import render

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("qwen_asr") is None,
    reason="qwen-asr is not installed (pip install 'voiceloop[qwen3]', or scripts/setup.sh)",
)
QWEN3_ID = models.ALIASES["qwen3-asr"]
NEW_TOKENS = 8  # the tiny vocabulary never emits EOS: every answer is this long


@pytest.fixture(scope="session")
def tiny_qwen3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from voiceloop.testing.tiny_qwen3 import build_once

    return build_once(tmp_path_factory.getbasetemp() / "tiny-qwen3")


@pytest.fixture(scope="session")
def tiny_aligner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from voiceloop.testing.tiny_qwen3 import build_once

    return build_once(tmp_path_factory.getbasetemp() / "tiny-qwen3", aligner=True)


def recognizer(model: Path, **kwargs):
    from voiceloop.asr.qwen3 import Qwen3Recognizer

    options = {"device": "cpu", "max_new_tokens": NEW_TOKENS, "language": "auto", **kwargs}
    return Qwen3Recognizer(str(model), **options)


@pytest.fixture(scope="module")
def qwen3(tiny_qwen3: Path):
    loaded = recognizer(tiny_qwen3)
    loaded.warm_up()
    return loaded


def speech(text: str = "what time is it") -> np.ndarray:
    pad = np.zeros(SAMPLE_RATE // 2, np.float32)
    audio = np.concatenate([pad, render(text, "en-us"), pad])
    noise = np.random.default_rng(0).standard_normal(len(audio)) * 10 ** (-55 / 20)
    return (audio + noise).astype(np.float32)


def vocabulary() -> set[str]:
    from voiceloop.testing.tiny_qwen3 import build_tokenizer

    return {token for token in build_tokenizer().get_vocab() if len(token) == 1}


def test_one_clip_comes_back_as_text_of_the_models_vocabulary(qwen3):
    audio = speech()
    result = qwen3.transcribe(audio)

    assert isinstance(qwen3, SpeechRecognizer)
    assert 0 < len(result.text) <= NEW_TOKENS and set(result.text) <= vocabulary()
    assert result.audio_s == pytest.approx(len(audio) / SAMPLE_RATE)
    assert result.elapsed_s > 0 and result.timestamps == []
    assert qwen3.description.startswith("qwen3 ") and "on cpu (float32)" in qwen3.description


def test_a_batch_gives_each_clip_its_own_result_in_order(qwen3):
    clips = [speech("what time is it"), speech("turn on the lights please"), speech("hello")]
    singles = [qwen3.transcribe(clip).text for clip in clips]

    batch = qwen3.transcribe_batch(clips)

    assert [r.text for r in batch] == singles
    assert len(set(singles)) > 1  # different audio, different answers: each clip reached the model
    assert [r.audio_s for r in batch] == pytest.approx([len(c) / SAMPLE_RATE for c in clips])


def test_empty_and_very_short_clips_in_a_batch_answer_empty_without_the_model(qwen3):
    results = qwen3.transcribe_batch([np.zeros(0, np.float32), speech(), np.zeros(400, np.float32)])

    assert [bool(r.text) for r in results] == [False, True, False]
    assert results[1].text == qwen3.transcribe(speech()).text


def test_the_language_hint_reaches_the_prompt_and_comes_back(tiny_qwen3: Path):
    audio = speech()
    chinese = recognizer(tiny_qwen3, language="zh").transcribe(audio)
    english = recognizer(tiny_qwen3, language="en-US").transcribe(audio)
    detected = recognizer(tiny_qwen3, language="auto").transcribe(audio)

    assert (chinese.language, english.language) == ("zh", "en")
    assert len({chinese.text, english.text, detected.text}) == 3  # the forced prefix changes the answer


def test_language_names_map_both_ways_and_unknown_ones_fail_naming_the_choices():
    assert qwen3_languages.hint("zh") == "Chinese" and qwen3_languages.hint("English") == "English"
    assert qwen3_languages.hint("auto") is None and qwen3_languages.hint(None) is None
    assert qwen3_languages.codes("Chinese,English") == "zh,en"
    assert qwen3_languages.codes("") == ""
    with pytest.raises(AsrError, match="does not know the language 'xx'.*zh, en, yue"):
        qwen3_languages.hint("xx")


def test_hotwords_go_into_the_context_and_change_the_output(qwen3):
    audio = speech()
    plain = qwen3.transcribe(audio, []).text
    biased = qwen3.transcribe(audio, ["魔搭", "阿里巴巴"]).text

    assert biased != plain
    assert qwen3.transcribe_batch([audio, audio], ["魔搭", "阿里巴巴"])[1].text == biased


def test_configured_hotwords_apply_until_a_call_says_otherwise(tiny_qwen3: Path, qwen3):
    audio = speech()
    configured = recognizer(tiny_qwen3, hotwords=["魔搭", "阿里巴巴"])

    assert configured.transcribe(audio).text == qwen3.transcribe(audio, ["魔搭", "阿里巴巴"]).text
    assert configured.transcribe(audio, []).text == qwen3.transcribe(audio, []).text


def test_the_forced_aligner_gives_each_unit_a_time_inside_the_clip(tiny_qwen3: Path, tiny_aligner: Path):
    aligned = recognizer(tiny_qwen3, aligner=str(tiny_aligner), language="zh")
    audio = speech()

    result = aligned.transcribe(audio)

    # CJK characters are units of their own, other scripts' words are
    assert result.text and "".join(unit for unit, _, _ in result.timestamps) == result.text.replace(" ", "")
    starts = [start for _, start, _ in result.timestamps]
    assert starts == sorted(starts)
    assert all(0 <= start <= end <= result.audio_s for _, start, end in result.timestamps)
    assert "with forced aligner" in aligned.description


def test_the_adapter_is_built_from_settings_with_the_shared_language_and_hotwords(tiny_qwen3: Path):
    settings = load_settings(
        "default",
        asr={
            "name": "qwen3",
            "language": "zh",
            "hotwords": ["魔搭"],
            "qwen3": {"model": str(tiny_qwen3), "device": "cpu", "max_new_tokens": NEW_TOKENS},
        },
    )
    built = build_adapter(settings, "asr")

    assert built.name == "qwen3" and built.language == "Chinese" and built.hotwords == ["魔搭"]
    assert built.transcribe(speech()).language == "zh"


# -- models ----------------------------------------------------------------------------------


def test_a_missing_model_fails_at_once_with_the_download_command(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    settings = load_settings(
        "default", asr={"name": "qwen3", "qwen3": {"model": "qwen3-asr", "aligner": "qwen3-aligner"}}
    )

    start = time.perf_counter()
    with pytest.raises(models.ModelNotAvailable) as error:
        build_adapter(settings, "asr")
    assert time.perf_counter() - start < 2.0

    message = str(error.value)
    assert "run `voiceloop models download qwen3-asr`" in message and QWEN3_ID in message
    assert str(tmp_path) in message and "\n" not in message


def test_a_missing_aligner_is_named_with_its_own_download_command(tiny_qwen3: Path, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    with pytest.raises(models.ModelNotAvailable, match="`voiceloop models download qwen3-aligner`"):
        recognizer(tiny_qwen3, aligner="qwen3-aligner")


def test_a_downloaded_model_is_found_in_modelscopes_cache(tiny_qwen3: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    cached = tmp_path / "models" / QWEN3_ID.replace("/", "--") / "snapshots" / "master"
    shutil.copytree(tiny_qwen3, cached)

    assert models.resolve("qwen3-asr") == cached
    (cached / "model.safetensors").unlink()
    with pytest.raises(models.ModelNotAvailable, match=r"incomplete \(missing model.safetensors\)"):
        models.resolve("qwen3-asr")


def test_a_local_directory_that_is_not_a_qwen3_model_says_what_it_lacks(tmp_path: Path):
    with pytest.raises(AsrError, match="is not a Qwen3-ASR model: missing config.json, preprocessor"):
        recognizer(tmp_path)
    with pytest.raises(AsrError, match="model directory not found: no/such/qwen3"):
        recognizer(Path("./no/such/qwen3"))


def test_models_download_fetches_the_configured_qwen3_models_and_says_why_offline(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from voiceloop.cli.app import app

    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    monkeypatch.setenv("MODELSCOPE_DOMAIN", "modelscope.invalid")
    result = CliRunner().invoke(
        app,
        ["models", "download", "-c", "default"],
        env={
            "VOICELOOP_ASR__NAME": "qwen3",
            "VOICELOOP_ASR__QWEN3__ALIGNER": "qwen3-aligner",
            "COLUMNS": "200",
        },
    )

    assert result.exit_code == 1
    assert "downloading qwen3-asr (Qwen/Qwen3-ASR-0.6B)" in result.output
    assert "downloading qwen3-aligner (Qwen/Qwen3-ForcedAligner-0.6B)" in result.output
    assert result.output.count("cannot reach modelscope.invalid") == 2


def test_models_list_shows_a_cached_qwen3_model(tiny_qwen3: Path, tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from voiceloop.cli.app import app

    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    shutil.copytree(tiny_qwen3, tmp_path / "models" / QWEN3_ID.replace("/", "--") / "snapshots" / "master")
    result = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert "│ yes" in rows["qwen3-asr"] and "│ no" in rows["qwen3-aligner"]


def test_device_auto_without_a_gpu_warns_once_that_the_cpu_is_slow(tiny_qwen3: Path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    recognizer(tiny_qwen3, device="auto")
    recognizer(tiny_qwen3, device="cpu")

    lines = [line for line in capsys.readouterr().err.splitlines() if "Qwen3-ASR" in line]
    assert len(lines) == 1 and "10x slower than Paraformer" in lines[0]


# -- in the loop and the CLI -------------------------------------------------------------------


def test_voiceloop_transcribe_runs_qwen3_over_files_as_a_batch(tiny_qwen3: Path, tmp_path: Path, qwen3):
    import json

    import soundfile as sf
    from typer.testing import CliRunner

    from voiceloop.cli.app import app

    clips = {"one.wav": speech("what time is it"), "two.wav": speech("hello")}
    for name, audio in clips.items():
        sf.write(tmp_path / name, audio, SAMPLE_RATE)
    result = CliRunner().invoke(
        app,
        ["transcribe", str(tmp_path), "--asr", "qwen3", "--asr-model", str(tiny_qwen3), "--language", "zh"]
        + ["--device", "cpu", "--format", "json", "-c", "default"],
        env={"VOICELOOP_ASR__QWEN3__MAX_NEW_TOKENS": str(NEW_TOKENS)},
    )

    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    chinese = recognizer(tiny_qwen3, language="zh")
    assert [r["text"] for r in records] == [chinese.transcribe(a).text for a in clips.values()]
    assert {r["language"] for r in records} == {"zh"}


@pytest.mark.slow
async def test_the_loop_runs_turns_with_qwen3_in_the_virtual_room(room_settings, tiny_qwen3: Path):
    from voiceloop.demo import run_demo
    from voiceloop.session.log import read_session

    room_settings.asr.name = "qwen3"
    room_settings.asr.qwen3.model = str(tiny_qwen3)
    room_settings.asr.qwen3.device = "cpu"
    room_settings.asr.qwen3.max_new_tokens = NEW_TOKENS
    room_settings.asr.hotwords = ["魔搭"]
    room_settings.audio.room.speed = 3.0  # the tiny model keeps up; the loop's logic is what is tested
    room_settings.loop.greeting = ""
    user = script({"say": "what time is it", "pause_ms": 300}, {"say": "tell me a joke"})

    result = await run_demo(room_settings, user, say=lambda _: None)

    turns = [line for line in read_session(result.session_dir / "session.jsonl") if line["event"] == "turn"]
    assert len(turns) == 2
    for turn in turns:
        assert turn["transcript"] and set(turn["transcript"]) <= vocabulary()
        assert turn["outcome"] == "answered"
        assert turn["heard_text"].startswith(f"Sure thing, you asked me: {turn['transcript']}")
