"""The paraformer adapter on FunASR's real AutoModel code path, with tiny random-init models.

The models (SeACo-Paraformer, Paraformer, fsmn-vad, ct-punc) are built once per session from
FunASR's own classes (voiceloop/testing/tiny_funasr.py) and loaded through `AutoModel` from a
directory, as a downloaded model would be. They are untrained, so their text is arbitrary
characters from a small vocabulary: the tests check what flows through, not what is said.
"""

from __future__ import annotations

import shutil
import threading
import time
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import script
from voiceloop.asr import models
from voiceloop.asr.base import AsrError, SpeechRecognizer
from voiceloop.asr.funasr_model import pick_device
from voiceloop.asr.paraformer import ParaformerRecognizer
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.build import build_adapter
from voiceloop.config import load_settings
from voiceloop.demo import run_demo
from voiceloop.session.log import read_session
from voiceloop.testing.tiny_funasr import TinyModels, build_once, vocabulary
from voiceloop.tts.espeak import render

SEACO_ID = models.ALIASES["paraformer-zh"]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_once(tmp_path_factory.getbasetemp() / "tiny-funasr")


@pytest.fixture(scope="module")
def seaco(tiny: TinyModels) -> ParaformerRecognizer:
    recognizer = ParaformerRecognizer(str(tiny.seaco), device="cpu", ncpu=1)
    recognizer.warm_up()
    return recognizer


def room_noise(samples: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(samples) * 10 ** (-55 / 20)).astype(np.float32)


def speech(text: str = "what time is it") -> np.ndarray:
    pad = np.zeros(SAMPLE_RATE // 2, np.float32)
    audio = np.concatenate([pad, render(text, "en-us"), pad])
    return audio + room_noise(len(audio))


def test_transcribes_to_text_and_per_token_timestamps(seaco: ParaformerRecognizer):
    audio = speech()
    result = seaco.transcribe(audio)

    assert isinstance(seaco, SpeechRecognizer)
    assert result.text and set(result.text) <= set(vocabulary())
    assert [unit for unit, _, _ in result.timestamps] == list(result.text)  # one per character
    edges = [t for _, start, end in result.timestamps for t in (start, end)]
    assert edges == sorted(edges) and 0 <= edges[0] and edges[-1] <= result.audio_s + 0.05
    assert result.audio_s == pytest.approx(len(audio) / SAMPLE_RATE)
    assert result.elapsed_s > 0 and result.rtf == pytest.approx(result.elapsed_s / result.audio_s)


def test_a_hotword_reaches_the_seaco_bias_path_and_changes_the_output(seaco: ParaformerRecognizer):
    audio = speech()
    tokens = vocabulary()
    seen: list[list[list[int]]] = []
    # The decoder's embedding is used only to encode hotwords for SeACo's bias decoder.
    hook = seaco.automodel.model.decoder.embed.register_forward_pre_hook(
        lambda _module, args: seen.append(args[0].tolist())
    )
    try:
        biased = seaco.transcribe(audio, ["魔搭", "阿里巴巴"])
        hotword_rows = seen.pop()
        plain = seaco.transcribe(audio, [])
    finally:
        hook.remove()

    as_text = [[tokens[i] for i in row if i != 0] for row in hotword_rows]  # 0 pads the rows
    assert as_text == [["魔", "搭"], ["阿", "里", "巴", "巴"], ["<s>"]]
    assert seen == []  # no hotwords, no bias path
    assert biased.text != plain.text


def test_configured_hotwords_apply_until_a_call_says_otherwise(tiny: TinyModels, seaco):
    configured = ParaformerRecognizer(str(tiny.seaco), device="cpu", ncpu=1, hotwords=["魔搭"])
    audio = speech("turn on the lights")

    assert configured.transcribe(audio).text == seaco.transcribe(audio, ["魔搭"]).text
    assert configured.transcribe(audio, []).text == seaco.transcribe(audio, []).text


def test_a_hotword_phrase_with_spaces_stays_one_hotword(seaco: ParaformerRecognizer):
    tokens = vocabulary()
    seen: list[list[list[int]]] = []
    hook = seaco.automodel.model.decoder.embed.register_forward_pre_hook(
        lambda _module, args: seen.append(args[0].tolist())
    )
    try:
        seaco.transcribe(speech(), ["开灯 音乐", "魔搭"])
    finally:
        hook.remove()

    as_text = [[tokens[i] for i in row if i != 0] for row in seen[0]]
    assert as_text == [["开", "灯", "音", "乐"], ["魔", "搭"], ["<s>"]]


def test_hotwords_the_model_cannot_spell_are_refused_not_ignored(seaco: ParaformerRecognizer):
    with pytest.raises(AsrError, match="xyzzy") as error:
        seaco.transcribe(speech(), ["魔搭", "xyzzy"])
    assert "<unk>" in str(error.value) and "魔搭" not in str(error.value)

    with pytest.raises(AsrError, match="longer than 10 tokens"):
        seaco.transcribe(speech(), ["阿里巴巴达摩院阿里巴巴达摩院"])


def test_hotwords_on_a_model_without_a_bias_path_are_refused(tiny: TinyModels):
    with pytest.raises(AsrError, match="SeACo"):
        ParaformerRecognizer(str(tiny.paraformer), device="cpu", ncpu=1, hotwords=["魔搭"])

    plain = ParaformerRecognizer(str(tiny.paraformer), device="cpu", ncpu=1)
    assert plain.transcribe(speech()).text  # without hotwords it transcribes
    with pytest.raises(AsrError, match="would ignore them"):
        plain.transcribe(speech(), ["魔搭"])


def test_the_vad_splits_a_file_at_its_silence(tiny: TinyModels, seaco: ParaformerRecognizer):
    first, second = render("hello there", "en-us"), render("turn on the lights", "en-us")
    gap = np.zeros(int(2.5 * SAMPLE_RATE), np.float32)
    lead = np.zeros(SAMPLE_RATE // 2, np.float32)
    audio = np.concatenate([lead, first, gap, second, lead])
    audio += room_noise(len(audio))
    silence = (
        (len(lead) + len(first)) / SAMPLE_RATE + 0.3,
        (len(lead) + len(first) + len(gap)) / SAMPLE_RATE - 0.3,
    )

    with_vad = ParaformerRecognizer(str(tiny.seaco), vad_model=str(tiny.vad), device="cpu", ncpu=1)
    segmented = with_vad.transcribe(audio)
    whole = seaco.transcribe(audio)

    def in_silence(stamps: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
        return [s for s in stamps if silence[0] < (s[1] + s[2]) / 2 < silence[1]]

    assert segmented.text
    assert in_silence(segmented.timestamps) == []  # nothing decoded from the gap...
    assert any(end <= silence[0] for _, _, end in segmented.timestamps)  # ...speech either side
    assert any(start >= silence[1] for _, start, _ in segmented.timestamps)
    assert in_silence(whole.timestamps)  # without the VAD the untrained model "hears" the gap


def test_punctuation_restores_marks_and_timestamps_keep_the_raw_units(tiny: TinyModels):
    recognizer = ParaformerRecognizer(str(tiny.seaco), punc_model=str(tiny.punc), device="cpu", ncpu=1)
    result = recognizer.transcribe(speech("what is the weather like today"))

    units = "".join(unit for unit, _, _ in result.timestamps)
    marks = set("，。？、,.?")  # ct-punc writes ASCII marks after ASCII tokens
    assert marks & set(result.text)
    assert "<" not in result.text
    assert result.text.translate({ord(m): None for m in marks}) == units


def test_a_batch_gives_each_clip_its_own_result_in_order(seaco: ParaformerRecognizer):
    hello, joke = speech("hello there"), speech("tell me a joke and make it a long one")
    clips = [hello, joke, np.zeros(100, np.float32), hello]

    batched = seaco.transcribe_batch(clips)
    single = [seaco.transcribe(clip) for clip in clips]

    assert [r.audio_s for r in batched] == [len(c) / SAMPLE_RATE for c in clips]
    assert batched[2].text == "" and batched[2].timestamps == []
    assert batched[0].text == batched[3].text  # the same clip, wherever it sits in the batch
    for result in batched:
        assert all(end <= result.audio_s + 0.05 for _, _, end in result.timestamps)
    # Padding to the longest clip nudges an untrained model by a token here and there.
    for one, alone in zip(batched, single, strict=True):
        assert SequenceMatcher(None, one.text, alone.text).ratio() >= 0.8


def test_two_threads_at_once_get_their_own_results(seaco: ParaformerRecognizer):
    clips = [speech("hello there"), speech("play some music")] * 3
    heard = [""] * len(clips)

    def work(indices: range) -> None:
        for i in indices:
            heard[i] = seaco.transcribe(clips[i], ["魔搭"] if i % 2 else []).text

    expected = [seaco.transcribe(c, ["魔搭"] if i % 2 else []).text for i, c in enumerate(clips)]
    threads = [threading.Thread(target=work, args=(range(k, len(clips), 2),)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert heard == expected


# -- models: ids, directories, the cache -----------------------------------------------------


def test_a_model_id_is_found_in_modelscopes_cache(tiny: TinyModels, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    snapshot = tmp_path / "models" / SEACO_ID.replace("/", "--") / "snapshots" / "master"
    shutil.copytree(tiny.seaco, snapshot)

    assert models.resolve("paraformer-zh") == snapshot
    assert models.resolve(SEACO_ID) == snapshot
    recognizer = ParaformerRecognizer("paraformer-zh", device="cpu", ncpu=1)
    assert recognizer.model_dir == snapshot and recognizer.transcribe(speech()).text


def test_older_modelscope_cache_layouts_are_found_too(tiny: TinyModels, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    owner, name = models.ALIASES["fsmn-vad"].split("/")
    legacy = tmp_path / "hub" / "models" / owner / name
    shutil.copytree(tiny.vad, legacy)

    assert models.resolve("fsmn-vad") == legacy


def test_a_model_missing_from_the_cache_fails_at_once_with_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    settings = load_settings(
        "default", asr={"paraformer": {"model": "paraformer-zh", "vad_model": "fsmn-vad", "punc_model": None}}
    )

    start = time.perf_counter()
    with pytest.raises(models.ModelNotAvailable) as error:
        build_adapter(settings, "asr", "paraformer")
    assert time.perf_counter() - start < 2.0

    message = str(error.value)
    assert "voiceloop models download paraformer-zh fsmn-vad" in message
    assert SEACO_ID in message and str(tmp_path) in message
    assert "not registered" not in message


def test_an_incomplete_download_is_named_as_such(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    partial = tmp_path / "models" / SEACO_ID.replace("/", "--") / "snapshots" / "master"
    partial.mkdir(parents=True)
    (partial / "config.yaml").write_text("model: SeacoParaformer\n")

    with pytest.raises(models.ModelNotAvailable, match=r"incomplete \(missing model.pt\)"):
        ParaformerRecognizer("paraformer-zh")


def test_a_local_path_that_does_not_exist_is_reported_as_a_path(tmp_path: Path):
    with pytest.raises(AsrError, match="model directory not found: ./no/such/model"):
        ParaformerRecognizer("./no/such/model")
    with pytest.raises(AsrError, match="not a FunASR model: missing config.yaml, model.pt"):
        ParaformerRecognizer(str(tmp_path))


@pytest.mark.skipif(pick_device("auto") != "cpu", reason="this machine has a GPU")
def test_device_auto_means_cpu_here_and_an_explicit_gpu_fails_clearly(tiny: TinyModels):
    assert pick_device("auto") == "cpu"
    with pytest.raises(AsrError, match="torch sees no CUDA device"):
        ParaformerRecognizer(str(tiny.seaco), device="cuda")
    with pytest.raises(AsrError, match="fp16 needs a CUDA device"):
        ParaformerRecognizer(str(tiny.seaco), device="cpu", fp16=True)
    with pytest.raises(AsrError, match="unknown asr.device"):
        pick_device("tpu")


# -- in the loop ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_the_loop_runs_turns_with_paraformer_in_the_virtual_room(room_settings, tiny: TinyModels):
    room_settings.asr.name = "paraformer"
    room_settings.asr.paraformer.model = str(tiny.seaco)
    room_settings.asr.paraformer.vad_model = str(tiny.vad)
    room_settings.asr.hotwords = ["魔搭"]
    room_settings.asr.paraformer.ncpu = 1
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
