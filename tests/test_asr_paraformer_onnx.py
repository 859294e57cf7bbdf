"""`asr.name = "paraformer-onnx"`: FunASR's export to ONNX and funasr-onnx's real classes, on
tiny random-init models (voiceloop/testing/tiny_funasr_onnx.py) exported once per session.

The models are untrained, so their text is arbitrary characters from their vocabulary: the
tests check what flows through (audio, hotwords, punctuation, the loop), not what is said.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import script
from voiceloop.asr.base import AsrError, AsrInputError, SpeechRecognizer
from voiceloop.asr.onnx_export import OnnxModelMissing
from voiceloop.asr.paraformer_onnx import ParaformerOnnxRecognizer
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.build import build_adapter
from voiceloop.config import load_settings
from voiceloop.config.settings import AsrSettings
from voiceloop.demo import run_demo
from voiceloop.session.log import read_session
from voiceloop.testing.tiny_funasr import build_paraformer
from voiceloop.testing.tiny_funasr_onnx import TinyOnnxModels, build_and_export, cjk_vocabulary
from voiceloop.tts.espeak import render

pytest.importorskip("funasr_onnx", reason="funasr-onnx is not installed (scripts/setup.sh --test)")


@pytest.fixture(scope="session")
def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> TinyOnnxModels:
    return build_and_export(tmp_path_factory.getbasetemp() / "tiny-funasr-onnx")


@pytest.fixture(scope="module")
def seaco(onnx_models: TinyOnnxModels) -> ParaformerOnnxRecognizer:
    recognizer = ParaformerOnnxRecognizer(str(onnx_models.seaco), threads=1)
    recognizer.warm_up()
    return recognizer


def speech(text: str = "what time is it") -> np.ndarray:
    pad = np.zeros(SAMPLE_RATE // 2, np.float32)
    audio = np.concatenate([pad, render(text, "en-us"), pad])
    return audio + (np.random.default_rng(0).standard_normal(len(audio)) * 10 ** (-55 / 20)).astype(
        np.float32
    )


def test_the_export_command_writes_fp32_and_int8_files_that_funasr_onnx_loads(onnx_models, tmp_path: Path):
    model_dir = build_paraformer(tmp_path / "paraformer", seaco=False, tokens=cjk_vocabulary(), seed=1)
    with pytest.raises(OnnxModelMissing, match=rf"run `voiceloop models export {model_dir} --int8`"):
        ParaformerOnnxRecognizer(str(model_dir))

    result = subprocess.run(
        [sys.executable, "-m", "voiceloop", "models", "export", str(model_dir), "--int8"],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # FunASR's and the quantiser's chatter stay off stdout
    assert {"model.onnx", "model_quant.onnx"} <= {p.name for p in model_dir.iterdir()}
    vocabulary = set(cjk_vocabulary())
    for quantize in (False, True):
        recognizer = ParaformerOnnxRecognizer(str(model_dir), quantize=quantize, threads=1)
        text = recognizer.transcribe(speech()).text
        assert text and set(text) <= vocabulary


def test_transcribes_with_int8_and_fp32_and_per_token_timestamps(onnx_models, seaco):
    audio = speech()
    result = seaco.transcribe(audio)
    fp32 = ParaformerOnnxRecognizer(str(onnx_models.seaco), quantize=False, threads=1).transcribe(audio)

    assert isinstance(seaco, SpeechRecognizer)
    assert "int8" in seaco.description
    for heard in (result, fp32):
        assert heard.text and set(heard.text) <= set(cjk_vocabulary(8404))
        assert [unit for unit, _, _ in heard.timestamps] == list(heard.text)
        edges = [t for _, start, end in heard.timestamps for t in (start, end)]
        assert edges == sorted(edges) and edges[-1] <= heard.audio_s + 0.05
    assert result.audio_s == pytest.approx(len(audio) / SAMPLE_RATE) and result.elapsed_s > 0
    assert seaco.transcribe(np.zeros(100, np.float32)).text == ""


def test_hotwords_reach_the_seaco_onnx_bias_path(seaco: ParaformerOnnxRecognizer, monkeypatch):
    tokens = cjk_vocabulary(8404)
    embedder, backbone = seaco.model.ort_infer_eb, seaco.model.ort_infer_bb
    hotword_rows: list[list[list[int]]] = []
    bias_shapes: list[tuple[int, ...]] = []
    scores: list[np.ndarray] = []

    def embed(inputs, *args):  # records what the hotword-embedding session is given
        hotword_rows.append(inputs[0].tolist())
        return embedder(inputs, *args)

    def decode(inputs, *args):  # and the shape of the bias the backbone then gets
        bias_shapes.append(tuple(inputs[2].shape))
        outputs = backbone(inputs, *args)
        scores.append(outputs[0])
        return outputs

    monkeypatch.setattr(seaco.model, "ort_infer_eb", embed)
    monkeypatch.setattr(seaco.model, "ort_infer_bb", decode)
    audio = speech()
    seaco.transcribe(audio, ["魔搭", "阿里巴巴"])
    seaco.transcribe(audio, [])

    as_text = [[tokens[i] for i in row if i != 0] for row in hotword_rows[0]]  # 0 pads the rows
    assert as_text == [["魔", "搭"], ["阿", "里", "巴", "巴"], ["<s>"]]
    assert bias_shapes[0] == (1, 3, 512)  # one embedding per hotword, and <s> for "no hotword"
    assert bias_shapes[1] == (1, 2, 512)  # funasr-onnx's empty hotword, and <s>
    # The hotwords move the token scores (whether the untrained model's argmax moves is chance).
    assert scores[0].shape == scores[1].shape and not np.allclose(scores[0], scores[1], atol=1e-4)


def test_configured_hotwords_apply_until_a_call_says_otherwise(onnx_models, seaco):
    configured = ParaformerOnnxRecognizer(str(onnx_models.seaco), threads=1, hotwords=["魔搭"])
    audio = speech("turn on the lights")

    assert configured.transcribe(audio).text == seaco.transcribe(audio, ["魔搭"]).text
    assert configured.transcribe(audio, []).text == seaco.transcribe(audio, []).text


def test_hotwords_funasr_onnx_would_mangle_are_refused(onnx_models, seaco):
    with pytest.raises(AsrInputError, match="xyzzy") as error:
        seaco.transcribe(speech(), ["魔搭", "xyzzy"])
    assert "<unk>" in str(error.value) and "魔搭" not in str(error.value)
    with pytest.raises(AsrInputError, match="without spaces"):
        seaco.transcribe(speech(), ["开灯 音乐"])
    with pytest.raises(AsrInputError, match="longer than 10"):
        seaco.transcribe(speech(), ["阿里巴巴达摩院阿里巴巴达摩院"])
    with pytest.raises(AsrInputError, match="SeACo"):
        ParaformerOnnxRecognizer(str(onnx_models.paraformer), threads=1, hotwords=["魔搭"])


def test_punctuation_comes_from_the_onnx_ct_transformer(onnx_models: TinyOnnxModels):
    plain = ParaformerOnnxRecognizer(str(onnx_models.paraformer), threads=1)
    punctuated = ParaformerOnnxRecognizer(
        str(onnx_models.paraformer), punc_model=str(onnx_models.punc), threads=1
    )
    audio = speech("what is the weather like today")

    text, marked = plain.transcribe(audio).text, punctuated.transcribe(audio).text
    marks = set("，。？、")
    assert marks & set(marked) and "<" not in marked
    assert marked.translate({ord(m): None for m in marks}) == text


def test_a_missing_onnx_file_names_the_export_command(onnx_models: TinyOnnxModels, tmp_path: Path):
    copy = tmp_path / "seaco"
    shutil.copytree(onnx_models.seaco, copy, ignore=shutil.ignore_patterns("*_quant.onnx", "model.pt"))
    (copy / "model.pt").touch()  # a complete FunASR dir as far as the weights go

    with pytest.raises(OnnxModelMissing) as error:
        ParaformerOnnxRecognizer(str(copy))
    message = str(error.value)
    assert "\n" not in message
    assert f"`voiceloop models export {copy} --int8`" in message
    assert "model_quant.onnx, model_eb_quant.onnx" in message
    assert not (copy / "model_quant.onnx").exists()  # nothing exported behind the user's back
    assert ParaformerOnnxRecognizer(str(copy), quantize=False, threads=1).transcribe(speech()).text

    settings = load_settings(
        "default", asr={"name": "paraformer-onnx", "paraformer-onnx": {"model": str(copy)}}
    )
    with pytest.raises(AsrError, match="voiceloop models export"):
        build_adapter(settings, "asr", "paraformer-onnx")


def test_the_options_table_is_validated_like_any_adapters():
    with pytest.raises(Exception, match="paraformer-onnx.threads"):
        load_settings("default", asr={"paraformer-onnx": {"threads": 0}})
    with pytest.raises(Exception, match="paraformer-onnx.quantise"):
        load_settings("default", asr={"paraformer-onnx": {"quantise": True}})


# -- in the loop ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_the_loop_runs_two_turns_on_paraformer_onnx_in_the_virtual_room(room_settings, onnx_models):
    room_settings.asr = AsrSettings.model_validate(
        {
            "name": "paraformer-onnx",
            "hotwords": ["魔搭"],
            "paraformer-onnx": {"model": str(onnx_models.seaco), "threads": 1},
        }
    )
    room_settings.audio.room.speed = 3.0  # the tiny model keeps up; the loop's logic is what is tested
    room_settings.loop.greeting = ""
    user = script({"say": "what time is it", "pause_ms": 300}, {"say": "tell me a joke"})

    result = await run_demo(room_settings, user, say=lambda _: None)

    turns = [line for line in read_session(result.session_dir / "session.jsonl") if line["event"] == "turn"]
    assert len(turns) == 2
    for turn in turns:
        assert turn["transcript"]  # arbitrary characters: the model is untrained
        assert turn["outcome"] == "answered"
        assert turn["heard_text"].startswith(f"Sure thing, you asked me: {turn['transcript']}")
