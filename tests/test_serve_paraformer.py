"""The server around FunASR's Paraformer: a tiny random-init SeACo model loaded through the
real AutoModel. Its words are arbitrary characters (the model is untrained), so these tests
check what flows through: batching of concurrent requests on the one model, OpenAI's `prompt`
reaching the SeACo bias path as hotwords, per-token timestamps, and the model's own hotword
check becoming a 400."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from voiceloop.asr.paraformer import ParaformerRecognizer
from voiceloop.config import load_settings
from voiceloop.testing.clips import encoded, spoken_clip
from voiceloop.testing.serve import running_server
from voiceloop.testing.tiny_funasr import TinyModels, build_once, vocabulary

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_once(tmp_path_factory.getbasetemp() / "tiny-funasr")


@pytest.fixture(scope="module")
def served(tiny: TinyModels, tmp_path_factory: pytest.TempPathFactory):
    settings = load_settings("offline")
    settings.log.dir = tmp_path_factory.mktemp("runs")
    settings.asr.name = "paraformer"
    settings.asr.paraformer.model = str(tiny.seaco)
    settings.asr.paraformer.device = "cpu"
    settings.asr.paraformer.ncpu = 1
    settings.serve.batch_max = 8
    with running_server(settings) as url:
        yield url


@pytest.fixture(scope="module")
def direct(tiny: TinyModels) -> ParaformerRecognizer:
    recognizer = ParaformerRecognizer(str(tiny.seaco), device="cpu", ncpu=1)
    recognizer.warm_up()
    return recognizer


@pytest.fixture(scope="module")
def clip() -> bytes:
    return encoded(spoken_clip("what time is it", seconds=3.0))


def decoded(wav: bytes):
    return sf.read(io.BytesIO(wav), dtype="float32")[0]


async def test_concurrent_requests_share_one_model_in_batches(served: str, clip: bytes, direct) -> None:
    expected = direct.transcribe(decoded(clip)).text
    async with httpx.AsyncClient(base_url=served, timeout=120) as client:

        async def one() -> httpx.Response:
            return await client.post("/v1/audio/transcriptions", files={"file": ("c.wav", clip)})

        first = await one()  # the model is busy with this one while the rest queue up
        responses = await asyncio.gather(*(one() for _ in range(12)))
        info = (await client.get("/info")).json()

    assert first.json()["text"] == expected and set(expected) <= set(vocabulary())
    assert [r.status_code for r in responses] == [200] * 12
    assert [r.json()["text"] for r in responses] == [expected] * 12
    assert info["queue"]["largest_batch"] >= 2  # some waited together and went through as one batch
    assert info["asr"]["name"] == "paraformer" and info["device"] == "cpu"


def test_the_prompt_is_used_as_hotwords(served: str, clip: bytes, direct) -> None:
    audio = decoded(clip)
    with_hotwords = direct.transcribe(audio, ["魔搭", "阿里巴巴"]).text
    plain = direct.transcribe(audio, []).text
    assert with_hotwords != plain  # the bias path changes this model's output

    response = httpx.post(
        f"{served}/v1/audio/transcriptions",
        files={"file": ("c.wav", clip)},
        data={"prompt": "魔搭, 阿里巴巴"},
    )
    assert response.json()["text"] == with_hotwords
    spaced = httpx.post(
        f"{served}/v1/audio/transcriptions", files={"file": ("c.wav", clip)}, data={"prompt": "魔搭 阿里巴巴"}
    )
    assert spaced.json()["text"] == with_hotwords


def test_a_hotword_the_model_cannot_use_is_a_400(served: str, clip: bytes) -> None:
    response = httpx.post(
        f"{served}/v1/audio/transcriptions", files={"file": ("c.wav", clip)}, data={"prompt": "Zebra"}
    )

    assert response.status_code == 400
    assert (
        "Zebra" in response.json()["error"]["message"] and "vocabulary" in response.json()["error"]["message"]
    )


def test_verbose_json_carries_paraformers_token_times(served: str, clip: bytes) -> None:
    body = httpx.post(
        f"{served}/v1/audio/transcriptions",
        files={"file": ("c.wav", clip)},
        data={"response_format": "verbose_json"},
    ).json()

    assert [w["word"] for w in body["words"]] == list(body["text"].replace(" ", ""))
    ends = [w["end"] for w in body["words"]]
    assert ends == sorted(ends) and ends[-1] <= body["duration"] + 0.05


def test_the_paraformer_server_fails_fast_on_a_missing_model(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from voiceloop.cli.app import app

    result = CliRunner().invoke(
        app,
        ["serve", "-c", "offline", "--asr", "paraformer", "--port", "7861"],
        env={"VOICELOOP_ASR__PARAFORMER__MODEL": str(tmp_path / "nope")},
    )
    assert result.exit_code == 1
    assert "nope" in result.output and "Traceback" not in result.output
