"""A loopback Edge-TTS service: the read-aloud websocket protocol on 127.0.0.1, with faults.

The real `edge-tts` client talks to it unchanged once its two address constants point here
(`EdgeServer.patched()`), so tests and the benchmark exercise the client's own framing,
parsing, token and 403 handling rather than a mock of them. What the client sends is checked
the way the service would see it (endpoint path, TrustedClientToken, Sec-MS-GEC token,
speech.config then SSML), and recorded for assertions.

It answers as the service does (edge-tts 7.x framing): `turn.start`, `response`, binary
`audio` messages of raw MP3 (24 kHz mono 48 kbit/s, like audio-24khz-48kbitrate-mono-mp3)
split at arbitrary byte offsets, `audio.metadata` word (or sentence) boundaries in 100 ns
ticks, an empty audio message, then `turn.end`. The speech is espeak's, encoded with LAME
through PyAV; word timings are spread over the voiced span by character count, which is
close enough for anything that reads them.

Faults, per connection, in order (`fail_next`) or on every connection (`fail_always`):
`EdgeFault(status=403)` refuses the websocket handshake, `stall_s` accepts and then stays
silent (from the start, or after `stall_after_chunks` audio messages), `cut_after_chunks`
drops the TCP connection mid-stream. "Nothing listening" needs no
fault: point the client at `unused_port()` from voiceloop.testing.llm_server.

    with EdgeServer(chunk_interval_s=0.02) as server, server.patched():
        async for chunk in edge_tts.Communicate("Hello.", "en-US-EmmaMultilingualNeural").stream():
            ...

Standalone: `python -m voiceloop.testing.edge_server --port 8765`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import numpy as np

from voiceloop.testing.edge_protocol import (
    MP3_BITRATE,
    MP3_RATE,
    EdgeRequest,
    Rendered,
    audio_message,
    metadata_message,
    parse_text_message,
    read_ssml,
    render_speech,
    text_message,
)
from voiceloop.testing.threaded import Serving
from voiceloop.text.scripts import UNSPACED_CHAR
from voiceloop.tts.mp3 import encode_mp3

# Named here too: the tests and benches take them from the server they start.
__all__ = ["MP3_RATE", "EdgeFault", "EdgeRequest", "EdgeServer", "encode_mp3"]

HOST = "127.0.0.1"
SERVICE_PATH = "/consumer/speech/synthesize/readaloud"
START_TIMEOUT_S = 5.0
TRUSTED_CLIENT_TOKEN = "6A5AA1D4EAFF4E9FB37E23D68491D6F4"  # the one every edge-tts sends

VOICES: list[dict[str, Any]] = [
    {
        "Name": f"Microsoft Server Speech Text to Speech Voice ({locale}, {short.split('-')[-1]})",
        "ShortName": short,
        "Gender": gender,
        "Locale": locale,
        "SuggestedCodec": "audio-24khz-48kbitrate-mono-mp3",
        "FriendlyName": f"Microsoft {short.split('-')[-1][:-6]} Online (Natural) - {language}",
        "Status": "GA",
        "VoiceTag": {"ContentCategories": ["General"], "VoicePersonalities": personalities},
    }
    for short, gender, locale, language, personalities in (
        ("en-US-EmmaMultilingualNeural", "Female", "en-US", "English (United States)", ["Cheerful"]),
        ("en-GB-SoniaNeural", "Female", "en-GB", "English (United Kingdom)", ["Friendly"]),
        ("zh-CN-XiaoxiaoNeural", "Female", "zh-CN", "Chinese (Mainland)", ["Warm"]),
        ("zh-CN-YunxiNeural", "Male", "zh-CN", "Chinese (Mainland)", ["Lively", "Sunshine"]),
        ("zh-TW-HsiaoChenNeural", "Female", "zh-TW", "Chinese (Taiwan)", ["Friendly"]),
        ("zh-HK-HiuGaaiNeural", "Female", "zh-HK", "Cantonese (Traditional)", ["Friendly"]),
    )
]


@dataclass(frozen=True)
class EdgeFault:
    """What goes wrong with one connection; `EdgeFault()` is a normal answer."""

    status: int | None = None  # refuse the websocket handshake with this HTTP status
    stall_s: float = 0.0  # say nothing this long (or until hung up on)...
    stall_after_chunks: int = 0  # ...after this many audio messages (0: as soon as the SSML arrives)
    cut_after_chunks: int | None = None  # drop the connection after this many audio messages


@dataclass
class _Connection:
    fault: EdgeFault
    request: EdgeRequest


class EdgeServer(Serving):
    """Serves from a background thread with its own event loop; sync and async callers alike."""

    def __init__(
        self,
        *,
        chunk_bytes: int = 1440,
        chunk_interval_s: float = 0.0,
        first_audio_delay_s: float = 0.0,
        voice: str = "en-us",
        render: Callable[[str, str], np.ndarray] | None = None,
        port: int = 0,
    ) -> None:
        """`render(text, voice) -> 16 kHz float32` makes the speech (default: espeak);
        `chunk_interval_s` paces the audio messages, `first_audio_delay_s` is the service's
        synthesis latency before the first one."""
        if chunk_bytes <= 0:
            raise ValueError("chunk_bytes must be positive")
        self.chunk_bytes = chunk_bytes
        self.chunk_interval_s = chunk_interval_s
        self.first_audio_delay_s = first_audio_delay_s
        self.voice = voice
        self._render = render
        self.requests: list[EdgeRequest] = []
        self.connections = 0
        self.voice_list_requests = 0
        # Tests may clear this to hold the last audio message back until they set it again.
        self.release_last_chunk = threading.Event()
        self.release_last_chunk.set()
        self.last_chunk_sent_at: float | None = None  # time.perf_counter(), latest request
        self._faults: deque[EdgeFault] = deque()
        self._always: EdgeFault | None = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, bool], Rendered] = {}
        self._conn_faults: dict[int, _Connection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._bind_port = port
        self._port: int | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    # -- addresses ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("EdgeServer is not running")
        return self._port

    @property
    def wss_url(self) -> str:
        """What `edge_tts.communicate.WSS_URL` holds for this server (ws://, not wss://)."""
        return f"ws://{HOST}:{self.port}{SERVICE_PATH}/edge/v1?TrustedClientToken={TRUSTED_CLIENT_TOKEN}"

    @property
    def voice_list_url(self) -> str:
        """What `edge_tts.voices.VOICE_LIST` holds for this server."""
        return (
            f"http://{HOST}:{self.port}{SERVICE_PATH}/voices/list?trustedclienttoken={TRUSTED_CLIENT_TOKEN}"
        )

    @contextlib.contextmanager
    def patched(self) -> Iterator[Self]:
        """Points the installed edge-tts at this server (process-wide) and back afterwards."""
        import edge_tts.communicate
        import edge_tts.voices

        saved = edge_tts.communicate.WSS_URL, edge_tts.voices.VOICE_LIST
        edge_tts.communicate.WSS_URL = self.wss_url
        edge_tts.voices.VOICE_LIST = self.voice_list_url
        try:
            yield self
        finally:
            edge_tts.communicate.WSS_URL, edge_tts.voices.VOICE_LIST = saved

    # -- faults ---------------------------------------------------------------------------------

    def fail_next(self, *faults: EdgeFault) -> None:
        """The next connections get these faults, one each, in order; later ones are normal."""
        with self._lock:
            self._faults.extend(faults)

    def fail_always(self, fault: EdgeFault | None) -> None:
        """Every connection gets `fault` (after any queued by fail_next); None = stop."""
        with self._lock:
            self._always = fault

    def _next_fault(self) -> EdgeFault:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            return self._always or EdgeFault()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="edge-server", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S) or self._port is None:
            raise RuntimeError(f"EdgeServer did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None or self._stop is None:
            return
        self.release_last_chunk.set()
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=START_TIMEOUT_S)
        self._loop = self._thread = self._stop = None
        self._port = None

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001  # reported by start(), else it would just time out
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(
            self._handle, HOST, self._bind_port, process_request=self._process_request, max_size=2**20
        ) as server:
            self._port = server.sockets[0].getsockname()[1]
            self._started.set()
            await self._stop.wait()
            server.close(close_connections=True)

    # -- the handshake: plain HTTP (voice list, refusals) or the websocket upgrade ---------------

    def _process_request(self, connection: Any, request: Any) -> Any:
        url = urlsplit(request.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path == f"{SERVICE_PATH}/voices/list":
            self.voice_list_requests += 1
            if query.get("trustedclienttoken") != TRUSTED_CLIENT_TOKEN:
                return connection.respond(HTTPStatus.UNAUTHORIZED, "bad trustedclienttoken\n")
            response = connection.respond(HTTPStatus.OK, json.dumps(VOICES))
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json; charset=utf-8"
            return response
        if url.path != f"{SERVICE_PATH}/edge/v1":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        self.connections += 1
        fault = self._next_fault()
        if fault.status is not None:
            return connection.respond(fault.status, f"{HTTPStatus(fault.status).phrase}\n")
        missing = [
            key
            for key in ("TrustedClientToken", "ConnectionId", "Sec-MS-GEC", "Sec-MS-GEC-Version")
            if not query.get(key)
        ]
        if missing or query["TrustedClientToken"] != TRUSTED_CLIENT_TOKEN:
            return connection.respond(HTTPStatus.FORBIDDEN, f"missing or bad {', '.join(missing)}\n")
        headers = {key: value for key, value in request.headers.raw_items()}
        self._conn_faults[id(connection)] = _Connection(fault, EdgeRequest(query=query, headers=headers))
        return None

    # -- one synthesis connection -----------------------------------------------------------------

    async def _handle(self, connection: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        state = self._conn_faults.pop(id(connection))
        request = state.request
        self.requests.append(request)
        try:
            config = parse_text_message(await connection.recv())
            if config[0].get("Path") != "speech.config":
                await connection.close(1002, "expected speech.config first")
                return
            options = json.loads(config[1])["context"]["synthesis"]["audio"]
            request.word_boundaries = options["metadataoptions"]["wordBoundaryEnabled"] == "true"
            request.output_format = options["outputFormat"]
            headers, body = parse_text_message(await connection.recv())
            if headers.get("Path") != "ssml":
                await connection.close(1002, "expected ssml")
                return
            read_ssml(body, request)
            await self._answer(connection, headers.get("X-RequestId", uuid.uuid4().hex), request, state.fault)
        except ConnectionClosed:
            pass

    async def _answer(self, connection: Any, request_id: str, request: EdgeRequest, fault: EdgeFault) -> None:
        context = json.dumps({"context": {"serviceTag": uuid.uuid4().hex}})
        await connection.send(text_message("turn.start", context, request_id))
        if fault.stall_s > 0 and not fault.stall_after_chunks:  # accepted the text, went quiet
            await _go_quiet(connection, fault.stall_s)
            return
        await connection.send(text_message("response", context, request_id))
        if request.output_format != "audio-24khz-48kbitrate-mono-mp3":
            await connection.close(1007, f"unsupported output format {request.output_format}")
            return
        rendered = await asyncio.to_thread(self.rendered, request.text, request.word_boundaries)
        if self.first_audio_delay_s:
            await asyncio.sleep(self.first_audio_delay_s)
        chunks = [
            rendered.mp3[i : i + self.chunk_bytes] for i in range(0, len(rendered.mp3), self.chunk_bytes)
        ]
        words = deque(rendered.words)
        bytes_per_s = MP3_BITRATE / 8
        sent = 0
        for index, chunk in enumerate(chunks):
            # A boundary goes out just before the audio that reaches it, as the service does.
            chunk_end_s = (sent + len(chunk)) / bytes_per_s
            while words and words[0][1] < chunk_end_s:
                await connection.send(metadata_message(*words.popleft(), request, request_id))
            if index == len(chunks) - 1:
                while not self.release_last_chunk.is_set():
                    await asyncio.sleep(0.005)
                self.last_chunk_sent_at = time.perf_counter()
            elif index and self.chunk_interval_s:
                await asyncio.sleep(self.chunk_interval_s)
            if fault.stall_s > 0 and index == fault.stall_after_chunks:
                await _go_quiet(connection, fault.stall_s)
                return
            if fault.cut_after_chunks is not None and request.audio_messages >= fault.cut_after_chunks:
                connection.transport.abort()  # no close frame, no turn.end: a dropped connection
                return
            await connection.send(audio_message(chunk, request_id))
            request.audio_messages += 1
            sent += len(chunk)
        while words:
            await connection.send(metadata_message(*words.popleft(), request, request_id))
        await connection.send(audio_message(b"", request_id))
        await connection.send(text_message("turn.end", "{}", request_id))
        request.completed = True
        with contextlib.suppress(TimeoutError):  # the client hangs up after turn.end
            await asyncio.wait_for(connection.wait_closed(), 5.0)

    def rendered(self, text: str, word_boundaries: bool = True) -> Rendered:
        """What the service streams for `text`: its MP3 bytes, length and word timings (cached)."""
        voice = "cmn" if UNSPACED_CHAR.search(text) else self.voice
        key = (text, voice, word_boundaries)
        if key not in self._cache:
            self._cache[key] = render_speech(text, voice, word_boundaries, self._render)
        return self._cache[key]


async def _go_quiet(connection: Any, seconds: float) -> None:
    """Say nothing for `seconds`, or until the client hangs up."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(connection.wait_closed(), seconds)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback Edge-TTS service for tests and benchmarks.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--chunk-bytes", type=int, default=1440)
    parser.add_argument("--chunk-interval", type=float, default=0.0, help="seconds between audio messages")
    args = parser.parse_args(argv)
    server = EdgeServer(chunk_bytes=args.chunk_bytes, chunk_interval_s=args.chunk_interval, port=args.port)
    with server:
        print(f"edge-tts WSS_URL:    {server.wss_url}")
        print(f"edge-tts VOICE_LIST: {server.voice_list_url}")
        with contextlib.suppress(KeyboardInterrupt):
            for _ in itertools.count():
                time.sleep(3600)


if __name__ == "__main__":
    main()
