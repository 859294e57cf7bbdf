"""The `openai` recogniser against a local `/v1/audio/transcriptions` server.

The server (voiceloop/testing/asr_server.py) answers with real recognisers: pocketsphinx for
exact English transcripts, and Paraformer on tiny FunASR models to show the audio arrives
intact. Requests go through real HTTP, real multipart uploads and the official `openai` SDK.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import script
from voiceloop.asr.base import AsrError, SpeechRecognizer
from voiceloop.asr.openai_transcribe import OpenAITranscriber
from voiceloop.asr.paraformer import ParaformerRecognizer
from voiceloop.asr.pocketsphinx import PocketsphinxRecognizer
from voiceloop.audio.frames import SAMPLE_RATE, to_float32, to_int16
from voiceloop.build import build_adapter
from voiceloop.config import load_settings
from voiceloop.demo import run_demo
from voiceloop.session.log import read_session
from voiceloop.testing.asr_server import AsrServer
from voiceloop.testing.llm_server import unused_port
from voiceloop.testing.tiny_funasr import TinyModels, build_once
from voiceloop.tts.espeak import render

PHRASES = ["what time is it", "turn on the lights", "tell me a joke", "thank you"]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_once(tmp_path_factory.getbasetemp() / "tiny-funasr")


@pytest.fixture(scope="module")
def server():
    with AsrServer(PocketsphinxRecognizer(phrases=PHRASES), api_key="sk-test-secret") as running:
        yield running


@pytest.fixture
def remote(server: AsrServer) -> OpenAITranscriber:
    server.verbose_json = True
    return OpenAITranscriber(base_url=server.base_url, api_key="sk-test-secret", language="en-US")


def spoken(text: str) -> np.ndarray:
    pad = np.zeros(SAMPLE_RATE // 2, np.float32)
    audio = np.concatenate([pad, render(text, "en-us"), pad])
    return audio + (np.random.default_rng(0).standard_normal(len(audio)) * 10 ** (-50 / 20)).astype(
        np.float32
    )


def test_speech_goes_up_and_the_transcript_with_word_timestamps_comes_back(remote, server):
    audio = spoken("turn on the lights")
    result = remote.transcribe(audio, ["lights", "kitchen"])

    assert isinstance(remote, SpeechRecognizer)
    assert result.text == "turn on the lights"
    assert [w for w, _, _ in result.timestamps] == ["turn", "on", "the", "lights"]
    assert result.audio_s == pytest.approx(len(audio) / SAMPLE_RATE) and result.elapsed_s > 0
    assert result.language == "en"  # what verbose_json says it heard

    sent = server.last_request
    assert sent.model == "paraformer" and sent.filename == "audio.wav"
    assert sent.field("language") == "en"  # ISO-639-1, as the API wants
    assert sent.field("prompt") == "lights kitchen"  # hotwords travel as the prompt
    assert sent.field("response_format") == "verbose_json"
    assert sent.audio_bytes == 44 + 2 * len(audio)  # 16-bit 16 kHz WAV


def test_a_server_without_verbose_json_still_transcribes_and_is_asked_plainly_after(remote, server):
    server.verbose_json = False
    first = remote.transcribe(spoken("what time is it"))
    asked = [r.field("response_format") for r in server.requests[-2:]]
    second = remote.transcribe(spoken("thank you"))

    assert (first.text, second.text) == ("what time is it", "thank you")
    assert asked == ["verbose_json", "json"] and server.last_request.field("response_format") == "json"
    assert first.timestamps == []


def test_a_batch_is_sent_concurrently_and_comes_back_in_order(remote):
    phrases = ["tell me a joke", "what time is it", "thank you", "turn on the lights", "what time is it"]
    results = remote.transcribe_batch([spoken(p) for p in phrases])

    assert [r.text for r in results] == phrases


def test_failures_are_one_clear_line_that_never_echoes_the_key(server, remote):
    server.fail_next(500)
    with pytest.raises(AsrError, match=r"failed \(HTTP 500\)"):
        remote.transcribe(spoken("thank you"))

    wrong_model = OpenAITranscriber(base_url=server.base_url, api_key="sk-test-secret", model="nope")
    with pytest.raises(AsrError, match="has no model 'nope'"):
        wrong_model.transcribe(spoken("thank you"))

    wrong_key = OpenAITranscriber(base_url=server.base_url, api_key="sk-wrong-key")
    with pytest.raises(AsrError, match="rejected the API key") as error:
        wrong_key.transcribe(spoken("thank you"))
    assert "sk-wrong-key" not in str(error.value)

    nobody = OpenAITranscriber(base_url=f"http://127.0.0.1:{unused_port()}/v1")
    with pytest.raises(AsrError, match="cannot reach the transcription server"):
        nobody.warm_up()


def test_through_the_server_paraformer_hears_what_it_hears_locally(tiny: TinyModels):
    local = ParaformerRecognizer(str(tiny.seaco), device="cpu", ncpu=1)
    audio = to_float32(to_int16(spoken("what time is it")))  # what a 16-bit WAV carries
    with AsrServer(local) as paraformer_server:
        remote = OpenAITranscriber(base_url=paraformer_server.base_url)
        plain, biased = remote.transcribe(audio), remote.transcribe(audio, ["魔搭"])

    assert plain.text == local.transcribe(audio, []).text
    assert biased.text == local.transcribe(audio, ["魔搭"]).text != plain.text
    assert [w for w, _, _ in plain.timestamps] == list(plain.text)


def test_settings_build_it_through_the_registry(server):
    settings = load_settings(
        "offline",
        asr={
            "name": "openai",
            "language": "en",
            "openai": {"base_url": server.base_url, "api_key": "sk-test-secret", "model": "whisper-1"},
        },
    )
    recognizer = build_adapter(settings, "asr", "openai")
    recognizer.warm_up()

    assert recognizer.transcribe(spoken("tell me a joke")).text == "tell me a joke"
    assert server.last_request.model == "whisper-1"
    assert "sk-test-secret" not in str(settings.masked())


@pytest.mark.slow
async def test_the_loop_hears_through_a_shared_transcription_server(room_settings, server):
    room_settings.asr.name = "openai"
    room_settings.asr.openai.base_url = server.base_url
    room_settings.asr.openai.api_key = "sk-test-secret"
    room_settings.audio.room.speed = 3.0
    room_settings.loop.greeting = ""
    user = script({"say": "what time is it", "pause_ms": 300}, {"say": "tell me a joke"})

    result = await run_demo(room_settings, user, say=lambda _: None)

    turns = [line for line in read_session(result.session_dir / "session.jsonl") if line["event"] == "turn"]
    assert [t["transcript"] for t in turns] == ["what time is it", "tell me a joke"]
    assert all(t["outcome"] == "answered" for t in turns)


def test_the_model_asked_for_is_one_the_server_has() -> None:
    from voiceloop.asr.server_probe import ServerFacts

    funasr = ServerFacts(models=("fun-asr-nano", "sensevoice", "paraformer", "custom"), loaded=("custom",))
    assert funasr.choose_model(None) == "custom" and funasr.parallel == 1
    assert funasr.choose_model("paraformer") == "paraformer"  # asked for by name: it is listed (warned)
    vllm = ServerFacts(models=("Qwen/Qwen3-ASR-0.6B",), loaded=None)
    assert vllm.choose_model(None) == "Qwen/Qwen3-ASR-0.6B" and vllm.parallel > 1
    openai_like = ServerFacts(models=("gpt-4o-transcribe", "whisper-1", "tts-1"), loaded=None)
    assert openai_like.choose_model(None) == "whisper-1"
    assert ServerFacts(models=None, loaded=None).choose_model(None) == "paraformer"
    with pytest.raises(LookupError, match="gpt-4o-transcribe, whisper-1"):
        openai_like.choose_model("paraformer")


def test_a_model_the_server_does_not_list_is_refused_before_audio_goes_up(server) -> None:
    before = len(server.requests)
    remote = OpenAITranscriber(base_url=server.base_url, api_key="sk-test-secret", model="large-v3")

    with pytest.raises(AsrError, match=r"has no model 'large-v3' \(it lists: paraformer, whisper-1\)"):
        remote.warm_up()
    assert len(server.requests) == before
