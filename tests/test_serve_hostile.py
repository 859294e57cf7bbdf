"""What a hostile page, a careless config, a lying file or a rude client does to `voiceloop serve`.

Each case gets a 4xx in OpenAI's error shape, is never logged as a server error, and leaves the
connection (and the server) as it was. The raw-socket cases speak HTTP/1.1 through h11 so that
"the same keep-alive connection" means exactly that.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import h11
import httpx
import pytest
import websockets

from voiceloop.config import ConfigError, Settings, load_settings
from voiceloop.server.auth import AccessGate
from voiceloop.server.origins import OriginPolicy
from voiceloop.testing.clips import encoded, spoken_clip, webm_silence
from voiceloop.testing.serve import running_server

PHRASE = "what time is it"
MAX_AUDIO_S = 10.0


def offline_settings(tmp_path: Path) -> Settings:
    settings = load_settings("offline")
    settings.log.dir = tmp_path / "runs"
    return settings


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, allowed: Path) -> Iterator[str]:
    settings = offline_settings(tmp_path_factory.mktemp("serve"))
    settings.serve.allowed_dir = allowed
    settings.serve.max_upload_mb = 1.0
    settings.serve.max_audio_s = MAX_AUDIO_S
    with running_server(settings) as base:
        yield base


@pytest.fixture()
def server(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture()
def server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """What the server logged as an error while the test ran (a request's fault is not one)."""
    caplog.set_level(logging.WARNING)
    found: list[logging.LogRecord] = []
    yield found
    found.extend(r for r in caplog.records if r.levelno >= logging.ERROR)


def assert_error(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and "Traceback" not in error["message"]
    for word in words:
        assert word in error["message"], error["message"]
    return error


class Connection:
    """One TCP connection to the server, spoken to with h11: requests go where we say."""

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.host_header = f"{host}:{port}"
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.h11 = h11.Connection(h11.CLIENT)

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        given = {"host": self.host_header, **(headers or {})}
        if body:
            given["content-length"] = str(len(body))
        self.sock.sendall(
            self.h11.send(h11.Request(method=method, target=path, headers=list(given.items())))
            + (self.h11.send(h11.Data(data=body)) if body else b"")
            + self.h11.send(h11.EndOfMessage())
        )
        status, response_headers, chunks = 0, {}, []
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                response_headers = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the server closed the connection without an answer")
        self.h11.start_next_cycle()  # raises if either side meant to close
        return status, response_headers, b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


# -- a careless config ------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", "   "])
def test_an_empty_token_is_a_config_error_not_an_open_door(
    monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    monkeypatch.setenv("VOICELOOP_SERVE__TOKEN", blank)
    with pytest.raises(ConfigError, match="serve.token") as caught:
        load_settings("offline")
    assert "empty" in str(caught.value) and len(str(caught.value).splitlines()) == 1


def test_the_gate_itself_refuses_an_empty_token() -> None:
    with pytest.raises(ValueError, match="empty token"):
        AccessGate(None, token=" ", max_body_bytes=1, origins=OriginPolicy.for_bind("127.0.0.1"))


def test_a_wrong_token_value_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICELOOP_SERVE__TOKEN", " s3cret-but-padded ")
    with pytest.raises(ConfigError) as caught:
        load_settings("offline")
    assert "s3cret" not in str(caught.value)


def test_a_short_token_is_warned_about(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from voiceloop.cli.app import app

    monkeypatch.setenv("VOICELOOP_SERVE__TOKEN", "abc12")
    monkeypatch.setenv("VOICELOOP_LOG__DIR", str(tmp_path))
    with socket.socket() as taken:  # the port is taken, so serve stops right after its checks
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = CliRunner().invoke(app, ["serve", "-c", "offline", "--port", str(taken.getsockname()[1])])
    assert "serve.token is 5 characters long" in result.output
    assert "abc12" not in result.output
    assert result.exit_code != 0


# -- a file whose header lies ---------------------------------------------------------------------


def test_a_webm_whose_header_claims_one_second_is_cut_off_at_the_limit(server: httpx.Client) -> None:
    lying = webm_silence(60.0, claimed_s=1.0)  # 75 kB, 60 s of audio, "1 s" in its header

    error = assert_error(
        server.post("/v1/audio/transcriptions", files={"file": ("rec.webm", lying)}),
        413,
        f"longer than the {MAX_AUDIO_S:g} s limit",
        "serve.max_audio_s",
        "header says 1.0 s",
    )
    assert error["code"] == "audio_too_long"


def test_a_header_that_lies_is_refused_long_before_the_limit(tmp_path: Path) -> None:
    """With the default 600 s limit, decoding all of it costs seconds; a file that declares 1 s
    and keeps going past twice that plus 30 s is refused there, as the lie it is."""
    from voiceloop.asr.batch import DecodeError, decode

    lying, honest = tmp_path / "lying.webm", tmp_path / "honest.webm"
    lying.write_bytes(webm_silence(60.0, claimed_s=1.0))
    honest.write_bytes(webm_silence(40.0))
    with pytest.raises(DecodeError, match=r"more audio than its header says \(1\.0 s\)"):
        decode(lying, 16_000, max_seconds=600.0)
    assert abs(decode(honest, 16_000, max_seconds=600.0).size / 16_000 - 40.0) < 0.2


def test_a_browser_recording_with_no_duration_is_bounded_too(server: httpx.Client) -> None:
    endless = webm_silence(60.0, with_duration=False)
    assert_error(server.post("/v1/audio/transcriptions", files={"file": ("rec.webm", endless)}), 413)

    short = webm_silence(3.0, with_duration=False)
    response = server.post("/v1/audio/transcriptions", files={"file": ("rec.webm", short)})
    assert response.status_code == 200 and response.json() == {"text": ""}


def test_a_flac_whose_length_is_unknown_is_decoded_not_refused(server: httpx.Client) -> None:
    """Streaming FLAC encoders leave the length open; libsndfile then reports 2^63 frames."""
    flac = bytearray(encoded(spoken_clip(PHRASE, seconds=3.0), "FLAC"))
    # STREAMINFO's 36-bit total-samples field (the low nibble of byte 21, bytes 22..25): 0 = unknown.
    flac[21] &= 0xF0
    flac[22:26] = b"\0\0\0\0"
    response = server.post("/v1/audio/transcriptions", files={"file": ("stream.flac", bytes(flac))})
    assert response.status_code == 200, response.text
    assert response.json() == {"text": PHRASE}


# -- a body too big for its (missing) length ---------------------------------------------------------


def test_a_chunked_upload_with_no_length_is_cut_off_at_the_size_limit(url: str) -> None:
    """A 400 MB body with no Content-Length: the server answers 413 once 1 MB (the limit) has
    arrived, without reading the rest; we stop sending as soon as the answer is there."""
    host, port = url.removeprefix("http://").split(":")
    boundary = "hostile"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    chunk = b"\0" * 65536
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            (
                f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
            + f"{len(head):x}\r\n".encode()
            + head
            + b"\r\n"
        )
        sock.settimeout(0.0)
        answer = b""
        while sent < 400 * 2**20 and b"\r\n\r\n" not in answer:
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.01)  # the server stopped reading: its answer is on the way
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            except ConnectionResetError:
                break
        sock.settimeout(10)
        while b"\r\n\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"serve.max_upload_mb" in answer or b"\r\n\r\n" in answer
    # What was sent before the answer came: the limit plus what the sockets buffer, not 400 MB.
    assert sent < 64 * 2**20, f"{sent / 2**20:.0f} MB were sent before the server refused"


def test_an_oversize_upload_is_refused_before_it_is_read(server: httpx.Client) -> None:
    big = encoded(spoken_clip(PHRASE, seconds=40.0))  # 1.3 MB > 1 MB

    response = server.post("/v1/audio/transcriptions", files={"file": ("clip.wav", big)})
    assert assert_error(response, 413, "serve.max_upload_mb")["code"] == "file_too_large"


# -- other sites' pages and DNS rebinding --------------------------------------------------------------


def test_a_host_header_naming_another_site_is_refused(server: httpx.Client) -> None:
    """DNS rebinding: attacker.example resolves to 127.0.0.1 after the page loaded, so the page
    is "same-origin" with us; only the Host header tells."""
    for path in ("/info", "/health", "/"):
        error = assert_error(server.get(path, headers={"host": "attacker.example"}), 400, "attacker.example")
        assert error["code"] == "bad_host"
    assert_error(
        server.post("/asr", json={"filename": "command.wav"}, headers={"host": "attacker.example:7860"}), 400
    )
    port = str(server.base_url.port)
    for good in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert server.get("/health", headers={"host": good}).status_code == 200


async def test_a_page_on_another_origin_cannot_read_the_feed_or_start_a_session(url: str) -> None:
    ws = url.replace("http", "ws")
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(ws + "/v1/session/events", origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(ws + "/v1/session/talk", origin="null"):
            pass
    # The server's own page may.
    async with websockets.connect(ws + "/v1/session/events", origin=url) as feed:
        assert json.loads(await feed.recv())["type"] == "snapshot"

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        cross = await client.post(
            "/v1/session", json={"source": "demo"}, headers={"origin": "http://evil.example"}
        )
        assert_error(cross, 403, "evil.example", "serve.allowed_origins")
        # A form post needs no CORS preflight; it is not JSON, so it starts nothing.
        form = await client.post("/v1/session", data={"source": "demo"})
        assert_error(form, 415, "application/json")
        plain = await client.post(
            "/v1/audio/speech", content=b'{"input": "hi"}', headers={"content-type": "text/plain"}
        )
        assert_error(plain, 415)
        assert (await client.get("/v1/session")).json()["running"] is False


async def test_allowed_origins_and_hosts_are_configurable(tmp_path: Path) -> None:
    settings = offline_settings(tmp_path)
    settings.serve.allowed_origins = ["https://kiosk.example"]
    settings.serve.allowed_hosts = ["assistant.lan"]
    with running_server(settings) as base:
        async with websockets.connect(
            base.replace("http", "ws") + "/v1/session/events", origin="https://kiosk.example"
        ) as feed:
            assert json.loads(await feed.recv())["type"] == "snapshot"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            assert (await client.get("/health", headers={"host": "assistant.lan:7860"})).status_code == 200
            assert (await client.get("/health", headers={"host": "other.lan"})).status_code == 400


# -- names and text no file system or voice can hold ---------------------------------------------------


def test_a_nul_in_a_filename_is_a_400_and_the_connection_survives(url: str, server_errors: list) -> None:
    connection = Connection(url)
    try:
        status, _, body = connection.request(
            "POST",
            "/asr",
            json.dumps({"filename": "x\u0000.wav"}).encode(),
            {"content-type": "application/json"},
        )
        assert status == 400 and json.loads(body)["error"]["code"] == "bad_filename"
        status, _, _ = connection.request("GET", "/health")  # same socket: it was not reset
        assert status == 200
    finally:
        connection.close()
    assert server_errors == []


def test_a_lone_surrogate_to_speak_is_a_400_and_the_connection_survives(
    url: str, server_errors: list
) -> None:
    connection = Connection(url)
    try:
        status, _, body = connection.request(
            "POST",
            "/v1/audio/speech",
            b'{"input": "hello \\ud800 there"}',
            {"content-type": "application/json"},
        )
        assert status == 400 and "surrogate" in json.loads(body)["error"]["message"]
        status, _, _ = connection.request("GET", "/health")
        assert status == 200
    finally:
        connection.close()
    assert server_errors == []


def test_non_utf8_upload_names_are_still_transcribed(url: str) -> None:
    boundary = b"b0und"
    body = (
        b'--b0und\r\nContent-Disposition: form-data; name="file"; filename="\xff\xfeclip.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n" + encoded(spoken_clip(PHRASE, seconds=3.0)) + b"\r\n--b0und--\r\n"
    )
    connection = Connection(url)
    try:
        status, _, answer = connection.request(
            "POST",
            "/v1/audio/transcriptions",
            body,
            {"content-type": f"multipart/form-data; boundary={boundary.decode()}"},
        )
    finally:
        connection.close()
    assert status == 200 and json.loads(answer) == {"text": PHRASE}


def test_asr_refuses_paths_outside_the_allowed_folder_without_naming_it(
    server: httpx.Client, allowed: Path
) -> None:
    assert_error(server.post("/asr", json={"filename": "/etc/passwd"}), 403, "outside")
    assert_error(server.post("/asr", json={"filename": f"{allowed}/../outside/secret.wav"}), 403, "outside")
    # A symlink inside the folder pointing out of it is judged by where it really leads.
    assert_error(server.post("/asr", json={"filename": str(allowed / "escape.wav")}), 403, "outside")
    escape = assert_error(server.post("/asr", json={"filename": "escape.wav"}), 403, "outside")
    missing = assert_error(server.post("/asr", json={"filename": "missing.wav"}), 404, "missing.wav")
    for error in (escape, missing):
        assert str(allowed) not in error["message"] and str(allowed.parent) not in error["message"]


def test_corrupt_empty_and_unlisted_uploads_are_refused(server: httpx.Client) -> None:
    clip = encoded(spoken_clip(PHRASE, seconds=3.0))

    def transcribe(data: bytes, name: str = "clip.wav", **form: str) -> httpx.Response:
        return server.post("/v1/audio/transcriptions", files={"file": (name, data)}, data=form)

    assert_error(transcribe(os.urandom(5000), name="noise.wav"), 400, "noise.wav", "not audio")
    assert_error(transcribe(clip[:44] + b"\0" * 3, name="cut.mp3"), 400, "cut.mp3")
    assert_error(transcribe(b"", name="empty.wav"), 400, "empty")
    assert_error(transcribe(clip, name="clip.exe"), 415, ".exe", "serve.formats")
    assert_error(transcribe(clip, response_format="docx"), 400, "docx")
    assert_error(server.post("/v1/audio/transcriptions", data={"model": "x"}), 400, "file")
    # The server is still fine afterwards.
    assert transcribe(clip).json() == {"text": PHRASE}


async def test_websocket_garbage_is_answered_and_forgotten(url: str) -> None:
    ws = url.replace("http", "ws")
    for first in (b"\x00\xff" * 100, "not json", json.dumps({"type": "start", "sample_rate": "fast"})):
        async with websockets.connect(ws + "/v1/session/talk") as talk:
            await talk.send(first)
            refusal = json.loads(await talk.recv())
            assert refusal["type"] == "error"
    async with websockets.connect(ws + "/v1/session/events") as feed:
        assert json.loads(await feed.recv())["type"] == "snapshot"
        await feed.send(b"\x00" * 10_000)  # a one-way feed ignores what it is sent
        await feed.send("{{{{")
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        assert (await client.get("/v1/session")).json()["running"] is False


# -- connections under load ---------------------------------------------------------------------------


def test_an_idle_connection_outlives_the_clients_own_keep_alive(url: str) -> None:
    """httpx, the openai client and uvicorn's default all use 5 s: a server that closes idle
    connections at the same moment a client decides to reuse one drops that request. The
    server keeps them longer than its clients do."""
    connection = Connection(url)
    try:
        assert connection.request("GET", "/health")[0] == 200
        time.sleep(6.0)
        status, headers, _ = connection.request("GET", "/health")
        assert status == 200 and headers.get("connection", "").lower() != "close"
    finally:
        connection.close()
