"""`voiceloop serve`'s HTTP API on loopback: real uvicorn, real recogniser (pocketsphinx with
the offline phrases), real voice (espeak), real OpenAI client where the API claims OpenAI's
shape."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from voiceloop.config import Settings, load_settings
from voiceloop.testing.clips import encoded, spoken_clip
from voiceloop.testing.serve import running_server

PHRASE = "what time is it"


@pytest.fixture(scope="module")
def clip_wav() -> bytes:
    return encoded(spoken_clip(PHRASE, seconds=3.0))


def offline_settings(tmp_path: Path) -> Settings:
    settings = load_settings("offline")
    settings.log.dir = tmp_path / "runs"
    return settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, allowed: Path):
    settings = offline_settings(tmp_path_factory.mktemp("serve"))
    settings.serve.allowed_dir = allowed
    settings.serve.max_upload_mb = 1.0
    settings.serve.max_audio_s = 30.0
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def transcribe(client: httpx.Client, data: bytes, name: str = "clip.wav", **form: str) -> httpx.Response:
    return client.post("/v1/audio/transcriptions", files={"file": (name, data)}, data=form)


def assert_error(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and "Traceback" not in error["message"]
    for word in words:
        assert word in error["message"]
    return error


# -- transcription in each format ---------------------------------------------------------------


def test_json_is_the_default_format(server: httpx.Client, clip_wav: bytes) -> None:
    response = transcribe(server, clip_wav)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"text": PHRASE}


def test_text_format_is_the_bare_transcript(server: httpx.Client, clip_wav: bytes) -> None:
    response = transcribe(server, clip_wav, response_format="text")

    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == PHRASE


def test_srt_has_numbered_timed_cues(server: httpx.Client, clip_wav: bytes) -> None:
    response = transcribe(server, clip_wav, response_format="srt")

    lines = response.text.strip().splitlines()
    assert lines[0] == "1"
    start, arrow, end = lines[1].split(" ")
    assert arrow == "-->" and start.startswith("00:00:0") and "," in end
    assert start < end
    assert lines[2] == PHRASE


def test_vtt_is_webvtt(server: httpx.Client, clip_wav: bytes) -> None:
    response = transcribe(server, clip_wav, response_format="vtt")

    assert response.text.startswith("WEBVTT\n")
    assert " --> " in response.text and PHRASE in response.text


def test_verbose_json_has_duration_segments_and_word_times(server: httpx.Client, clip_wav: bytes) -> None:
    body = transcribe(server, clip_wav, response_format="verbose_json", language="en").json()

    assert (
        body["text"] == PHRASE
        and body["language"] == "en"
        and body["duration"] == pytest.approx(3.0, abs=0.01)
    )
    assert [w["word"] for w in body["words"]] == PHRASE.split()
    # The words start after the half second of room tone the clip begins with.
    assert 0.3 < body["words"][0]["start"] < body["words"][-1]["end"] < 3.0
    assert body["segments"][0]["text"] == PHRASE


def test_verbose_json_says_the_configured_language_when_not_asked_for_one(
    server: httpx.Client, clip_wav: bytes
) -> None:
    """pocketsphinx detects no language: the one it is configured for (asr.language) is it."""
    assert transcribe(server, clip_wav, response_format="verbose_json").json()["language"] == "en"


def test_verbose_json_says_the_language_a_remote_recogniser_heard(tmp_path: Path, clip_wav: bytes) -> None:
    from voiceloop.asr.pocketsphinx import PocketsphinxRecognizer
    from voiceloop.testing.asr_server import AsrServer

    settings = offline_settings(tmp_path)
    settings.asr.language = "auto"  # the server is left to detect it
    with AsrServer(PocketsphinxRecognizer(phrases=settings.asr.pocketsphinx.phrases)) as backend:
        settings.asr.name = "openai"
        settings.asr.openai.base_url = backend.base_url
        with running_server(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
            undetected = transcribe(client, clip_wav, response_format="verbose_json").json()
            backend.detected_language = "en"
            detected = transcribe(client, clip_wav, response_format="verbose_json").json()
            asked = transcribe(client, clip_wav, response_format="verbose_json", language="de").json()
    assert backend.requests[-2].field("language") is None
    assert (undetected["language"], detected["language"], asked["language"]) == ("", "en", "de")
    assert detected["text"] == PHRASE


def openai_client(server: httpx.Client) -> openai.OpenAI:
    return openai.OpenAI(base_url=str(server.base_url).rstrip("/") + "/v1", api_key="unused", max_retries=0)


def test_the_openai_client_transcribes_through_the_api(server: httpx.Client, clip_wav: bytes) -> None:
    result = openai_client(server).audio.transcriptions.create(
        model="paraformer", file=("clip.wav", clip_wav)
    )

    assert result.text == PHRASE


def test_a_streamed_transcription_is_openais_delta_then_done_events(
    server: httpx.Client, clip_wav: bytes
) -> None:
    """pocketsphinx gives no partials: the whole text arrives as one delta, then done."""
    events = list(
        openai_client(server).audio.transcriptions.create(
            model="paraformer", file=("clip.wav", clip_wav), stream=True, language="en"
        )
    )

    assert [type(e).__name__ for e in events] == ["TranscriptionTextDeltaEvent", "TranscriptionTextDoneEvent"]
    assert events[0].delta == PHRASE and events[1].text == PHRASE
    assert [lang.code for lang in events[1].languages or []] == ["en"]


def test_a_streamed_transcription_is_sent_as_server_sent_events(
    server: httpx.Client, clip_wav: bytes
) -> None:
    response = transcribe(server, clip_wav, stream="true", response_format="text")

    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.splitlines() if line]
    assert [json.loads(line.removeprefix("data: "))["type"] for line in lines] == [
        "transcript.text.delta",
        "transcript.text.done",
    ]
    assert_error(transcribe(server, clip_wav, stream="true", response_format="srt"), 400, "json or text")


def test_a_streamed_transcription_of_a_bad_upload_is_a_plain_http_error(server: httpx.Client) -> None:
    """Everything that can be judged before recognising is judged before the stream starts."""
    assert_error(transcribe(server, b"not audio at all", stream="true"), 400)


def test_deltas_carry_only_what_a_growing_hypothesis_adds() -> None:
    from voiceloop.server.sse import DeltaTracker

    tracker = DeltaTracker()
    # A revision ("what tim" -> "what dime") sends nothing: the done event's text is the answer.
    hypotheses = ["what", "what", "what tim", "what time is", "what dime", "what time is it"]
    assert [tracker.delta(h) for h in hypotheses] == ["what", "", " tim", "e is", "", " it"]


@pytest.mark.parametrize("fmt", ["FLAC", "OGG", "MP3"])
def test_compressed_uploads_are_decoded(server: httpx.Client, fmt: str) -> None:
    audio = spoken_clip("turn off the lights")
    response = transcribe(server, encoded(audio, fmt), name=f"clip.{fmt.lower()}")

    assert response.json() == {"text": "turn off the lights"}


def test_an_odd_rate_upload_is_resampled(server: httpx.Client) -> None:
    from voiceloop.audio.frames import resample

    audio = resample(spoken_clip("play some music"), 16_000, 44_100)
    response = transcribe(server, encoded(audio, "WAV", rate=44_100))

    assert response.json() == {"text": "play some music"}


# -- speech in each format ----------------------------------------------------------------------


def speech(client: httpx.Client, **body: object) -> httpx.Response:
    return client.post("/v1/audio/speech", json={"input": "hello there", **body})


def test_speech_as_wav_is_16_bit_pcm_speech(server: httpx.Client) -> None:
    response = speech(server, response_format="wav")

    assert response.headers["content-type"] == "audio/wav"
    audio, rate = sf.read(io.BytesIO(response.content), dtype="float32")
    info = sf.info(io.BytesIO(response.content))
    assert rate == 16_000 and info.subtype == "PCM_16"
    assert 0.4 < len(audio) / rate < 3.0 and np.abs(audio).max() > 0.1


def test_speech_as_mp3_decodes_to_the_same_length(server: httpx.Client) -> None:
    from voiceloop.tts.mp3 import decode_mp3

    wav = sf.read(io.BytesIO(speech(server, response_format="wav").content), dtype="float32")[0]
    response = speech(server, response_format="mp3")

    assert response.headers["content-type"] == "audio/mpeg"
    decoded = decode_mp3(response.content)
    assert abs(len(decoded) - len(wav)) / len(wav) < 0.1 and np.abs(decoded).max() > 0.1


def test_speech_as_pcm_is_openais_24khz_16_bit(server: httpx.Client) -> None:
    wav = sf.read(io.BytesIO(speech(server, response_format="wav").content), dtype="float32")[0]
    response = speech(server, response_format="pcm")

    assert response.headers["x-sample-rate"] == "24000"
    samples = np.frombuffer(response.content, dtype="<i2")
    assert len(samples) == pytest.approx(len(wav) * 1.5, rel=0.01)
    assert np.abs(samples).max() > 3000


def duration_of(data: bytes) -> float:
    """Seconds of audio in an encoded stream, decoded by FFmpeg (PyAV)."""
    import av

    with av.open(io.BytesIO(data)) as container:
        rate = container.streams.audio[0].rate
        return sum(frame.samples for frame in container.decode(audio=0)) / rate


@pytest.mark.parametrize(
    ("fmt", "media_type", "magic"), [("opus", "audio/ogg", b"OggS"), ("aac", "audio/aac", b"\xff\xf1")]
)
def test_speech_as_opus_and_aac_decodes_to_the_same_length(
    server: httpx.Client, fmt: str, media_type: str, magic: bytes
) -> None:
    wav = sf.read(io.BytesIO(speech(server, response_format="wav").content), dtype="float32")[0]
    response = speech(server, response_format=fmt)

    assert response.headers["content-type"] == media_type and response.content.startswith(magic)
    assert duration_of(response.content) == pytest.approx(len(wav) / 16_000, abs=0.1)


def test_speech_as_sse_is_openais_audio_delta_events_then_done(server: httpx.Client) -> None:
    text = "Hello there. Turn on the lights."
    whole = speech(server, input=text, response_format="mp3").content
    with openai_client(server).audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format="mp3", stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line.removeprefix("data: ")) for line in response.iter_lines() if line]

    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1) and len(events) > 2
    assert events[-1]["type"] == "speech.audio.done" and events[-1]["usage"]["input_tokens"] == len(text)
    import base64

    assert b"".join(base64.b64decode(e["audio"]) for e in events[:-1]) == whole


class HeldVoice:
    """espeak that says `first` at once and holds every other sentence until the client says
    it has audio: a server that held the audio back until synthesis ended would leave the
    client with nothing (the hold gives up after a minute, and the order of events shows it)."""

    def __init__(self, first: str) -> None:
        import threading

        from voiceloop.tts.espeak import EspeakVoice

        self.inner = EspeakVoice("en-us")
        self.name = "espeak"
        self.first = first
        self.log: list[str] = []
        self.client_has_audio = threading.Event()

    async def synthesize(self, text: str):
        if text != self.first:
            await asyncio.to_thread(self.client_has_audio.wait, 60)
        self.log.append(f"synthesised: {text}")
        async for chunk in self.inner.synthesize(text):
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "wav", "pcm"])
def test_speech_streams_the_first_sentence_before_the_rest_is_synthesised(tmp_path: Path, fmt: str) -> None:
    sentences = ["Hello there.", "This is the second sentence.", "And this is the third."]
    voice = HeldVoice(first=sentences[0])
    with running_server(offline_settings(tmp_path), tts=voice) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=" ".join(sentences), response_format=fmt
        ) as response:
            chunks = []
            for chunk in response.iter_bytes():
                if not chunks:
                    voice.log.append("client got audio")
                    voice.client_has_audio.set()
                chunks.append(chunk)

    assert voice.log == [
        f"synthesised: {sentences[0]}",
        "client got audio",
        f"synthesised: {sentences[1]}",
        f"synthesised: {sentences[2]}",
    ]
    assert len(chunks) > 1
    if fmt not in ("pcm", "wav"):
        assert duration_of(b"".join(chunks)) > 2.0


def test_a_client_that_leaves_mid_stream_frees_its_voice_slot(tmp_path: Path) -> None:
    voice = HeldVoice(first="Hello there.")  # the second sentence waits: the stream stays open
    settings = offline_settings(tmp_path)
    settings.serve.tts_concurrency = 1
    settings.serve.queue = 0
    body = {"input": "Hello there. This is the second sentence.", "response_format": "pcm"}
    try:
        with running_server(settings, tts=voice) as url, httpx.Client(base_url=url, timeout=30) as client:
            with client.stream("POST", "/v1/audio/speech", json=body) as first:
                audio = first.iter_bytes()  # held open: a dropped iterator closes the response
                assert next(audio)  # the first sentence, then the stream waits
                assert_error(client.post("/v1/audio/speech", json=body), 503, "busy")
            # The first client has gone: its slot comes back (the server notices the closed
            # connection), though its second sentence was never synthesised.
            for _ in range(100):
                again = client.post("/v1/audio/speech", json={**body, "input": "Hello there."})
                if again.status_code != 503:
                    break
                time.sleep(0.1)
            assert again.status_code == 200 and again.content
        assert "synthesised: This is the second sentence." not in voice.log
    finally:
        voice.client_has_audio.set()  # lets the held synthesis thread end


def test_speech_the_server_makes_is_recognised_by_it(server: httpx.Client) -> None:
    """Round trip: the API's own voice through its own recogniser."""
    audio = sf.read(
        io.BytesIO(speech(server, input="turn on the lights", response_format="wav").content), dtype="float32"
    )[0]
    padded = np.concatenate([np.zeros(8000, np.float32), audio, np.zeros(8000, np.float32)])
    padded += (np.random.default_rng(1).standard_normal(len(padded)) * 10 ** (-50 / 20)).astype(np.float32)

    assert transcribe(server, encoded(padded)).json() == {"text": "turn on the lights"}


def test_openai_voice_names_mean_the_configured_voice(server: httpx.Client) -> None:
    audio = openai_client(server).audio.speech.create(
        model="tts-1", voice="alloy", input="hello there", response_format="wav"
    )

    assert audio.content == speech(server, response_format="wav").content


def test_speech_errors_are_clear(server: httpx.Client) -> None:
    assert_error(speech(server, voice="xx-nope"), 400, "xx-nope")
    assert_error(speech(server, input="  "), 400, "empty")
    assert_error(speech(server, response_format="aiff"), 400, "response_format")
    assert_error(speech(server, input="x" * 5000), 400, "4096")
    assert_error(speech(server, speed=2.0), 400, "speed")


# -- models --------------------------------------------------------------------------------------


def test_models_lists_the_recogniser_the_voice_engine_and_its_voices(server: httpx.Client) -> None:
    client = openai_client(server)
    models = client.models.list().data
    settings = load_settings("offline")

    ids = [m.id for m in models]
    assert ids[:3] == ["pocketsphinx", "espeak", settings.tts.voice]
    assert {"en-us", "cmn"} <= set(ids) and len(ids) == len(set(ids))
    assert all(
        m.object == "model" and m.owned_by == "voiceloop" and m.created > 1_600_000_000 for m in models
    )
    raw = server.get("/v1/models").json()
    assert raw["object"] == "list" and set(raw["data"][0]) == {"id", "object", "created", "owned_by", "kind"}
    assert [m["kind"] for m in raw["data"][:3]] == ["transcription", "speech", "voice"]

    assert client.models.retrieve("espeak").id == "espeak"
    with pytest.raises(openai.NotFoundError, match="no model 'whisper-1' here"):
        client.models.retrieve("whisper-1")


# -- the /asr drop-in ---------------------------------------------------------------------------


def test_asr_reads_a_file_under_the_allowed_folder(server: httpx.Client, allowed: Path) -> None:
    assert server.post("/asr", json={"filename": str(allowed / "command.wav")}).json() == {
        "text": "turn on the lights"
    }
    assert server.post("/asr", json={"filename": "command.wav"}).json() == {"text": "turn on the lights"}


def test_asr_takes_an_upload_too(server: httpx.Client, clip_wav: bytes) -> None:
    assert server.post("/asr", files={"file": ("clip.wav", clip_wav)}).json() == {"text": PHRASE}


def test_asr_by_name_is_off_without_an_allowed_folder(tmp_path: Path) -> None:
    with running_server(offline_settings(tmp_path)) as url:
        response = httpx.post(f"{url}/asr", json={"filename": "/tmp/x.wav"})
    assert_error(response, 403, "serve.allowed_dir")


def test_asr_with_a_bad_body_is_a_400(server: httpx.Client) -> None:
    assert_error(server.post("/asr", content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert_error(server.post("/asr", json={"name": "x"}), 400)
    assert_error(server.post("/asr", content=b"x", headers={"content-type": "text/plain"}), 415)


# -- bad uploads: 4xx with a reason, never a 500 ---------------------------------------------------


def test_an_upload_over_the_duration_limit_is_refused(server: httpx.Client) -> None:
    long_flac = encoded(spoken_clip(PHRASE, seconds=45.0), "FLAC")  # small file, long audio

    error = assert_error(transcribe(server, long_flac, name="long.flac"), 413, "45.0 s", "serve.max_audio_s")
    assert error["code"] == "audio_too_long"


# -- health, info, schema ---------------------------------------------------------------------------


def test_health_and_info(server: httpx.Client) -> None:
    assert server.get("/health").json()["status"] == "ok"
    info = server.get("/info").json()

    assert info["device"] == "cpu" and info["asr"]["name"] == "pocketsphinx" and info["asr"]["loaded"]
    assert info["tts"]["name"] == "espeak"
    assert info["cuda"]["available"] is False
    assert 0 < info["memory"]["process_rss_mb"] < info["memory"]["system_total_mb"]
    assert {"voiceloop", "fastapi", "pocketsphinx"} <= set(info["versions"])
    assert info["limits"]["max_upload_mb"] == 1.0 and "wav" in info["limits"]["formats"]
    assert info["queue"]["workers"] == 1


def test_the_openapi_schema_documents_every_endpoint(server: httpx.Client) -> None:
    schema = server.get("/openapi.json").json()

    for path in (
        "/v1/audio/transcriptions",
        "/v1/audio/speech",
        "/v1/models",
        "/asr",
        "/health",
        "/info",
        "/v1/session",
    ):
        assert path in schema["paths"], path
    asr_body = schema["paths"]["/asr"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(asr_body)
    assert server.get("/docs").status_code == 200


def test_the_readme_api_table_lists_exactly_the_endpoints_served(server: httpx.Client) -> None:
    import re

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## An HTTP API and a web page", 1)[1].split("\n\n", 3)[2]
    listed: dict[str, set[str]] = {}
    for row in section.splitlines()[2:]:
        for entry in re.findall(r"`((?:[A-Z]+ )?/[^`]*)`", row.split("|")[1]):
            method, _, path = entry.rpartition(" ")
            listed.setdefault(re.sub(r"\{[^}]*\}", "{}", path), set()).update([method] if method else [])
    schema = server.get("/openapi.json").json()["paths"]
    served = {re.sub(r"\{[^}]*\}", "{}", path): {m.upper() for m in ops} for path, ops in schema.items()}
    websockets_ = {"/v1/session/events", "/v1/session/talk"}

    assert set(listed) == set(served) | websockets_ | {"/docs", "/redoc", "/openapi.json"}
    for path, methods in listed.items():
        assert methods - {"WS"} <= served.get(path, {"GET"}), path


def test_the_page_is_served(server: httpx.Client) -> None:
    page = server.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()


# -- the token --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory):
    settings = offline_settings(tmp_path_factory.mktemp("guarded"))
    settings.serve.token = "s3cret-token"
    with running_server(settings) as url:
        yield url


def test_every_request_needs_the_token(guarded: str, clip_wav: bytes) -> None:
    for path in ("/health", "/info", "/", "/static/app.js", "/openapi.json"):
        assert_error(httpx.get(f"{guarded}{path}"), 401, "token")
    assert_error(httpx.get(f"{guarded}/health", headers={"Authorization": "Bearer nope"}), 401, "wrong token")
    posted = httpx.post(f"{guarded}/v1/audio/transcriptions", files={"file": ("a.wav", clip_wav)})
    assert_error(posted, 401)

    ok = httpx.get(f"{guarded}/health", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200


def test_opening_the_page_with_the_token_sets_a_cookie_the_page_then_uses(guarded: str) -> None:
    with httpx.Client(base_url=guarded) as browser:
        page = browser.get("/?token=s3cret-token")
        assert page.status_code == 200
        assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Strict" in page.headers["set-cookie"]
        assert browser.get("/info").status_code == 200  # the cookie alone


async def test_websockets_need_the_token_too(guarded: str) -> None:
    import websockets

    ws_url = guarded.replace("http", "ws") + "/v1/session/events"
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(ws_url):
            pass
    async with websockets.connect(ws_url + "?token=s3cret-token") as socket_:
        snapshot = json.loads(await socket_.recv())
    assert snapshot["type"] == "snapshot"


def non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks a route
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_bound_beyond_localhost_the_token_is_required(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from voiceloop.cli.app import app

    refused = CliRunner().invoke(app, ["serve", "-c", "offline", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "token" in refused.output

    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to bind")
    settings = offline_settings(tmp_path)
    settings.serve.token = "lan-token"
    with running_server(settings, host=address) as url:
        assert url.startswith(f"http://{address}:")
        assert_error(httpx.get(f"{url}/info"), 401)
        assert httpx.get(f"{url}/info", headers={"Authorization": "Bearer lan-token"}).status_code == 200


# -- overload ----------------------------------------------------------------------------------------


async def test_overload_is_a_503_with_retry_after_and_the_server_recovers(tmp_path: Path) -> None:
    """In front of a shared recogniser that takes 1.5 s per clip (a busy GPU box behind the
    `openai` adapter: waiting on it leaves the server free to take and refuse requests)."""
    from voiceloop.asr.pocketsphinx import PocketsphinxRecognizer
    from voiceloop.testing.asr_server import AsrServer

    settings = offline_settings(tmp_path)
    settings.serve.queue = 1  # one recognition running, one waiting, the rest turned away
    clip = encoded(spoken_clip(PHRASE, seconds=2.0))
    with AsrServer(PocketsphinxRecognizer(phrases=settings.asr.pocketsphinx.phrases)) as backend:
        settings.asr.name = "openai"
        settings.asr.openai.base_url = backend.base_url
        with running_server(settings) as url:
            backend.delay_s = 1.5
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:

                async def one() -> httpx.Response:
                    return await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", clip)})

                holding = asyncio.create_task(one())
                while (await client.get("/health")).json()["queue"]["in_flight"] == 0:
                    await asyncio.sleep(0.02)
                responses = await asyncio.gather(*(one() for _ in range(6)))
                assert (await holding).json() == {"text": PHRASE}

                busy = [r for r in responses if r.status_code == 503]
                done = [r for r in responses if r.status_code == 200]
                assert len(busy) == 5 and len(done) == 1  # the one that found the waiting room empty
                assert all(
                    r.headers["retry-after"] == "1" and "busy" in r.json()["error"]["message"] for r in busy
                )
                assert done[0].json() == {"text": PHRASE}

                backend.delay_s = 0.0
                assert (await one()).json() == {"text": PHRASE}  # and it is back
                stats = (await client.get("/info")).json()["queue"]
                assert stats["rejected"] == 5 and stats["in_flight"] == 0 and stats["waiting"] == 0


def test_a_failing_recogniser_is_a_502_and_a_bad_request_stays_a_400(tmp_path: Path, clip_wav: bytes) -> None:
    """The server behind the `openai` recogniser answers 500 once: that is the recogniser's
    failure (502, said in our words), not the client's; the next request is fine."""
    from voiceloop.asr.pocketsphinx import PocketsphinxRecognizer
    from voiceloop.testing.asr_server import AsrServer

    settings = offline_settings(tmp_path)
    with AsrServer(PocketsphinxRecognizer(phrases=settings.asr.pocketsphinx.phrases)) as backend:
        settings.asr.name = "openai"
        settings.asr.openai.base_url = backend.base_url
        with running_server(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
            backend.fail_next(500)
            error = assert_error(transcribe(client, clip_wav), 502, "the recogniser failed")
            assert transcribe(client, clip_wav).json() == {"text": PHRASE}
    assert error["code"] == "asr_failed"
