"""`voiceloop serve` answering with Qwen3-ASR (a tiny random-init model through qwen-asr's real
code): one shared model behind the batching queue, the prompt as context, the language in
verbose_json, and a fast failure when the model is missing."""

from __future__ import annotations

import asyncio
import importlib.util
import io
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from voiceloop.config import load_settings
from voiceloop.testing.clips import encoded, spoken_clip
from voiceloop.testing.serve import running_server

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        importlib.util.find_spec("qwen_asr") is None,
        reason="qwen-asr is not installed (pip install 'voiceloop[qwen3]', or scripts/setup.sh)",
    ),
]
NEW_TOKENS = 8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from voiceloop.testing.tiny_qwen3 import build_once

    return build_once(tmp_path_factory.getbasetemp() / "tiny-qwen3")


@pytest.fixture(scope="module")
def direct(tiny: Path):
    from voiceloop.asr.qwen3 import Qwen3Recognizer

    recognizer = Qwen3Recognizer(str(tiny), device="cpu", language="zh", max_new_tokens=NEW_TOKENS)
    recognizer.warm_up()  # also imports qwen-asr before the server's start-up clock runs
    return recognizer


@pytest.fixture(scope="module")
def served(tiny: Path, direct, tmp_path_factory: pytest.TempPathFactory):
    settings = load_settings("offline")
    settings.log.dir = tmp_path_factory.mktemp("runs")
    settings.asr.name = "qwen3"
    settings.asr.language = "zh"
    settings.asr.qwen3.model = str(tiny)
    settings.asr.qwen3.device = "cpu"
    settings.asr.qwen3.max_new_tokens = NEW_TOKENS
    settings.serve.batch_max = 8
    with running_server(settings) as url:
        yield url


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

    assert expected and first.json()["text"] == expected
    assert [r.status_code for r in responses] == [200] * 12
    assert [r.json()["text"] for r in responses] == [expected] * 12
    assert info["queue"]["batches"] >= 1  # some waited together and went through as one batch
    assert info["asr"]["name"] == "qwen3" and info["device"] == "cpu"


def test_the_prompt_becomes_the_context(served: str, clip: bytes, direct) -> None:
    audio = decoded(clip)
    with_context = direct.transcribe(audio, ["魔搭", "阿里巴巴"]).text
    assert with_context != direct.transcribe(audio, []).text

    response = httpx.post(
        f"{served}/v1/audio/transcriptions",
        files={"file": ("c.wav", clip)},
        data={"prompt": "魔搭, 阿里巴巴"},
    )
    assert response.status_code == 200 and response.json()["text"] == with_context


def test_verbose_json_says_the_language_the_recogniser_used(served: str, clip: bytes) -> None:
    body = httpx.post(
        f"{served}/v1/audio/transcriptions",
        files={"file": ("c.wav", clip)},
        data={"response_format": "verbose_json"},
    ).json()

    assert body["language"] == "zh" and body["text"]
    assert body["duration"] == pytest.approx(3.0, abs=0.01)


def test_the_qwen3_server_fails_fast_naming_the_download_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from voiceloop.cli.app import app

    result = CliRunner().invoke(
        app,
        ["serve", "-c", "offline", "--asr", "qwen3", "--port", "7862"],
        env={"VOICELOOP_ASR__QWEN3__MODEL": "qwen3-asr", "MODELSCOPE_CACHE": str(tmp_path)},
    )
    assert result.exit_code == 1
    assert "voiceloop models download qwen3-asr" in result.output and "Traceback" not in result.output


def test_the_openai_recogniser_against_it_gets_the_text_and_the_language(
    served: str, clip: bytes, direct
) -> None:
    from voiceloop.asr.openai_transcribe import OpenAITranscriber

    remote = OpenAITranscriber(base_url=f"{served}/v1", model="qwen3", timeout_s=60)
    try:
        heard = remote.transcribe(decoded(clip))
    finally:
        remote.close()

    assert heard.text == direct.transcribe(decoded(clip)).text
    assert heard.language == "zh"
