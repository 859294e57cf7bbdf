"""Edge-TTS: Microsoft's read-aloud voices, streamed per piece, decoded while they arrive.

Each piece opens one websocket through edge-tts's async `Communicate(...).stream()` (its sync
API runs a private event loop in a thread and hangs forever when the network does). MP3
chunks go through `Mp3StreamDecoder` as they land, so the first words are queued for
playback while the rest still streams.

Time limits, because the edge-tts defaults (10 s to connect, 60 s per read) are far longer
than anyone waits for a voice:
- `connect_timeout_s` covers DNS, TCP and TLS: it is measured by the connector edge-tts is
  given, so "cannot reach the service" and "reached it, no answer" are told apart.
- `first_audio_timeout_s` runs from the connection to the first audio message, and then
  bounds every gap between messages: a stream that stalls mid-piece counts as cut.

One retry, only where a second try can help and costs little: a refused or reset connection,
a 5xx handshake, or a connection closed before any audio. Never after audio was yielded (the
words would be said twice), never after a timeout (the time is already spent; the fallback
should speak now), never on a DNS failure (offline) or a 4xx: a 403 means the service changed
its token scheme, which only an edge-tts upgrade fixes, and edge-tts has already retried it
once itself with its clock-skew correction.

edge-tts 7.x ends its stream quietly when the connection drops mid-piece, exactly as if the
piece were complete. The end of a piece is its `turn.end` message, which edge-tts does not
pass on but does account for: it adds the piece's audio bytes to `state["cumulative_audio_bytes"]`
only on `turn.end`. A stream whose audio bytes were never accounted for was cut.

Word boundaries: `boundaries` holds the current piece's (offset_s, duration_s, text) events
as they arrive, and `on_boundary` (optional) is called with each; offsets are seconds into
the piece's audio as yielded (give or take the MP3 decoder's ~25 ms delay). `split_heard`
turns them and a number of seconds played into the words heard and the words not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.tts.base import PartialSpeech, TtsError
from voiceloop.tts.mp3 import Mp3StreamDecoder

if TYPE_CHECKING:
    from voiceloop.config.settings import TtsSettings
    from voiceloop.tts.options import EdgeOptions

log = logging.getLogger("voiceloop.tts.edge")

EDGE_VOICE = re.compile(r"^([a-z]{2,})-([A-Z]{2,})-(.+Neural)$")
SERVICE_HOST = "speech.platform.bing.com"
RETRY_DELAY_S = 0.2
TICKS_PER_SECOND = 10_000_000

# An espeak-style voice asked of Edge: the service's usual voice for that language.
EDGE_VOICE_FOR_LANGUAGE = {
    "en": "en-US-EmmaMultilingualNeural",
    "en-us": "en-US-EmmaMultilingualNeural",
    "en-gb": "en-GB-SoniaNeural",
    "cmn": "zh-CN-XiaoxiaoNeural",
    "zh": "zh-CN-XiaoxiaoNeural",
    "yue": "zh-HK-HiuGaaiNeural",
    "de": "de-DE-KatjaNeural",
    "fr": "fr-FR-DeniseNeural",
    "es": "es-ES-ElviraNeural",
    "it": "it-IT-ElsaNeural",
    "ja": "ja-JP-NanamiNeural",
    "ko": "ko-KR-SunHiNeural",
    "pt": "pt-BR-FranciscaNeural",
    "ru": "ru-RU-SvetlanaNeural",
}
# The other way, for the offline fallback: Edge locale → espeak voice.
ESPEAK_VOICE_FOR_LOCALE = {"zh-CN": "cmn", "zh-TW": "cmn", "zh-HK": "yue", "zh": "cmn", "en-GB": "en"}


@dataclass(frozen=True)
class Boundary:
    """A word (or sentence) and when it is said, in seconds into the piece's audio."""

    offset_s: float
    duration_s: float
    text: str

    @property
    def end_s(self) -> float:
        return self.offset_s + self.duration_s


def split_heard(text: str, boundaries: Sequence[Boundary], played_s: float) -> tuple[str, str]:
    """(heard, not yet heard): `text` cut after the last word that ended within `played_s`.

    Words are found in `text` in order, so repeated words line up; if a boundary's text is
    not found (the service normalised it), nothing after it is claimed as heard.
    """
    cursor = 0
    for boundary in boundaries:
        if boundary.end_s > played_s:
            break
        found = text.find(boundary.text, cursor)
        if found < 0:
            break
        cursor = found + len(boundary.text)
    return text[:cursor].strip(), text[cursor:].strip()


class _Phase:
    """Where an attempt is, and the deadline that applies there."""

    CONNECT = "connect"
    FIRST_AUDIO = "first audio"
    STREAMING = "streaming"


class EdgeVoice:
    """The SpeechSynthesizer adapter for Edge-TTS (no fallback: see voiceloop.build.voices)."""

    name = "edge"

    def __init__(
        self,
        voice: str = "en-US-EmmaMultilingualNeural",
        *,
        rate: str = "+0%",
        volume: str = "+0%",
        pitch: str = "+0Hz",
        boundary: Literal["word", "sentence"] = "word",
        connect_timeout_s: float = 3.0,
        first_audio_timeout_s: float = 3.0,
        on_boundary: Callable[[Boundary], None] | None = None,
    ) -> None:
        from edge_tts.data_classes import TTSConfig

        self.boundary_kind = "WordBoundary" if boundary == "word" else "SentenceBoundary"
        try:  # edge-tts checks voice and prosody only when a piece is spoken: check at startup
            TTSConfig(voice, rate, volume, pitch, self.boundary_kind)  # type: ignore[arg-type]
        except ValueError as exc:
            raise TtsError(f"edge-tts: {exc} (voices: `voiceloop voices`)") from None
        self.voice, self.rate, self.volume, self.pitch = voice, rate, volume, pitch
        self.connect_timeout_s = connect_timeout_s
        self.first_audio_timeout_s = first_audio_timeout_s
        self.on_boundary = on_boundary
        self.boundaries: list[Boundary] = []  # the piece being (or last) spoken
        self.retries = 0

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        if not text.strip():
            return
        for attempt in (1, 2):
            self.boundaries = []
            voiced = [0]  # samples yielded by this attempt
            try:
                async with contextlib.aclosing(self._attempt(text, voiced)) as stream:
                    async for pcm in stream:
                        yield pcm
                return
            except _Failure as failure:
                played_s = voiced[0] / SAMPLE_RATE
                if voiced[0]:
                    _, unspoken = split_heard(text, self.boundaries, played_s)
                    raise PartialSpeech(f"edge-tts: {failure.reason}", unspoken) from None
                if not failure.retry or attempt == 2:
                    raise TtsError(f"edge-tts: {failure.reason}") from None
                self.retries += 1
                log.debug("edge-tts: %s; retrying once", failure.reason)
                await asyncio.sleep(RETRY_DELAY_S)

    async def _attempt(self, text: str, voiced: list[int]) -> AsyncGenerator[np.ndarray, None]:
        import edge_tts

        loop = asyncio.get_running_loop()
        phase = [_Phase.CONNECT]
        deadline = [loop.time() + self.connect_timeout_s]

        def connected() -> None:  # the connector reached the service: the audio clock starts
            if phase[0] == _Phase.CONNECT:
                phase[0] = _Phase.FIRST_AUDIO
                deadline[0] = loop.time() + self.first_audio_timeout_s
                if timer is not None:
                    timer.reschedule(deadline[0])

        timer: asyncio.Timeout | None = None
        connector = _connector(connected)
        communicate = edge_tts.Communicate(
            text,
            self.voice,
            rate=self.rate,
            volume=self.volume,
            pitch=self.pitch,
            boundary=self.boundary_kind,  # type: ignore[arg-type]
            connector=connector,
            connect_timeout=max(1, math.ceil(self.connect_timeout_s)),  # whole seconds only
            receive_timeout=max(1, math.ceil(self.connect_timeout_s + self.first_audio_timeout_s)),
        )
        decoder = Mp3StreamDecoder()
        received = 0
        stream = communicate.stream()
        try:
            while True:
                if phase[0] == _Phase.STREAMING:  # from now: not after the consumer took its time
                    deadline[0] = loop.time() + self.first_audio_timeout_s
                try:
                    async with asyncio.timeout_at(deadline[0]) as timer:
                        message = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise _Failure(self._timeout_reason(phase[0]), retry=False) from None
                except Exception as exc:  # noqa: BLE001  # sorted into retry or not, one line each
                    raise _classify(exc, self.voice) from None
                if message["type"] == "audio":
                    data = message["data"]  # type: ignore[typeddict-item]
                    received += len(data)
                    phase[0] = _Phase.STREAMING
                    pcm = decoder.feed(data)
                    if pcm.size:
                        voiced[0] += pcm.size
                        yield pcm
                else:
                    self._record(message)
            tail = decoder.flush()
            if tail.size:
                voiced[0] += tail.size
                yield tail
        except TtsError as exc:  # the decoder's: the service sent something that is not MP3
            raise _Failure(str(exc), retry=False) from None
        finally:
            await stream.aclose()
            await connector.shutdown()
        accounted = communicate.state.get("cumulative_audio_bytes")  # see the module docstring
        if isinstance(accounted, int) and accounted < received:
            raise _Failure("the connection dropped mid-piece (no turn.end)", retry=False)

    def _record(self, message: Any) -> None:
        boundary = Boundary(
            message["offset"] / TICKS_PER_SECOND, message["duration"] / TICKS_PER_SECOND, message["text"]
        )
        self.boundaries.append(boundary)
        if self.on_boundary is not None:
            self.on_boundary(boundary)

    def _timeout_reason(self, phase: str) -> str:
        if phase == _Phase.CONNECT:
            return f"no connection to {SERVICE_HOST} within {self.connect_timeout_s:g} s"
        if phase == _Phase.FIRST_AUDIO:
            return f"connected, but no audio within {self.first_audio_timeout_s:g} s"
        return f"the audio stream stalled mid-piece for {self.first_audio_timeout_s:g} s"

    async def aclose(self) -> None:
        """Nothing held between pieces: each piece has its own connection."""


class _Failure(Exception):
    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def _classify(exc: Exception, voice: str) -> _Failure:
    """One line saying what went wrong, and whether a second try could help."""
    import aiohttp
    from edge_tts import exceptions as edge_errors

    detail = _one_line(exc)
    dns_error = getattr(aiohttp, "ClientConnectorDNSError", ())  # aiohttp >= 3.10
    if isinstance(exc, dns_error) or (
        isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, socket.gaierror)
    ):
        return _Failure(f"cannot resolve {SERVICE_HOST} (offline?): {_os_reason(exc)}", retry=False)
    if isinstance(exc, aiohttp.ClientResponseError):  # the websocket handshake was answered
        status = exc.status
        if status in (401, 403):
            return _Failure(
                f"the service refused the request (HTTP {status}); it changes its client token "
                "now and then, and upgrading edge-tts (pip install -U edge-tts) usually fixes it",
                retry=False,
            )
        return _Failure(f"the service answered HTTP {status} to the handshake", retry=status >= 500)
    if isinstance(exc, aiohttp.ServerTimeoutError):  # edge-tts's own (whole-second) limits
        return _Failure(f"timed out talking to {SERVICE_HOST}: {detail}", retry=False)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _Failure(f"cannot connect to {exc.host}:{exc.port}: {_os_reason(exc)}", retry=True)
    if isinstance(exc, aiohttp.ClientConnectionError | ConnectionError | edge_errors.WebSocketError):
        return _Failure(f"the connection failed: {detail}", retry=True)
    if isinstance(exc, edge_errors.SkewAdjustmentError):
        return _Failure(f"the service refused the request (HTTP 403) and sent no date: {detail}", retry=False)
    if isinstance(exc, edge_errors.NoAudioReceived):
        return _Failure(
            f"the service closed without sending audio (is '{voice}' a voice it has? `voiceloop voices`)",
            retry=True,
        )
    if isinstance(exc, edge_errors.EdgeTTSException):
        return _Failure(f"unexpected answer from the service: {detail}", retry=False)
    return _Failure(f"{type(exc).__name__}: {detail}", retry=False)


def _connector(on_connected: Callable[[], None]) -> Any:
    """An aiohttp connector that reports when DNS, TCP and TLS are done; one per attempt.

    edge-tts hands it to a ClientSession per connection, which closes it on the way out, and
    then reuses it for its own retry after a 403: a closed connector fails that retry with
    "Session is closed". So the session's close is ignored and `shutdown()` really closes it.
    """
    import aiohttp

    class ReportingConnector(aiohttp.TCPConnector):
        async def connect(self, *args: Any, **kwargs: Any) -> Any:
            connection = await super().connect(*args, **kwargs)
            on_connected()
            return connection

        def close(self, *args: Any, **kwargs: Any) -> Any:
            return asyncio.sleep(0)  # the session awaits this; the connections are its own to close

        async def shutdown(self) -> None:
            await super().close()

    return ReportingConnector()


def _os_reason(exc: Any) -> str:
    """'Connection refused', 'Name or service not known': aiohttp's own text names the SSL
    context object and the whole address tuple."""
    error = getattr(exc, "os_error", None)
    if isinstance(error, socket.gaierror) and error.strerror:
        return error.strerror
    if isinstance(error, OSError) and error.errno and error.errno > 0:
        return os.strerror(error.errno)
    return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


# -- voices ---------------------------------------------------------------------------------------


def edge_voice_for(voice: str) -> str:
    """`voice` if it is an Edge voice, else the service's usual voice for that espeak voice's
    language ("en-us" → en-US-EmmaMultilingualNeural, "cmn" → zh-CN-XiaoxiaoNeural)."""
    if EDGE_VOICE.match(voice) or voice.startswith("Microsoft Server Speech"):
        return voice
    base = voice.split("+", 1)[0].lower()
    for key in (base, base.split("-", 1)[0]):
        if key in EDGE_VOICE_FOR_LANGUAGE:
            return EDGE_VOICE_FOR_LANGUAGE[key]
    raise TtsError(f"tts.voice '{voice}' is not an Edge voice; pick one from `voiceloop voices`")


def espeak_voice_for(voice: str, known: Sequence[str]) -> str:
    """The espeak voice for an Edge voice's locale (zh-CN-XiaoxiaoNeural → cmn), from `known`
    espeak voices; anything not Edge-shaped is taken to be an espeak voice already."""
    match = EDGE_VOICE.match(voice)
    if match is None:
        return voice
    language, region = match.group(1), match.group(2)
    locale = f"{language}-{region}"
    for candidate in (
        ESPEAK_VOICE_FOR_LOCALE.get(locale),
        locale.lower(),
        ESPEAK_VOICE_FOR_LOCALE.get(language),
        language,
    ):
        if candidate and candidate in known:
            return candidate
    log.info("espeak has no voice for %s; the fallback speaks en-us", locale)
    return "en-us"


async def list_voices(timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """The service's voice list (ShortName, Locale, Gender, VoiceTag...); TtsError when it
    cannot be had within `timeout_s`."""
    import edge_tts

    try:
        async with asyncio.timeout(timeout_s):
            return [dict(voice) for voice in await edge_tts.list_voices()]
    except TimeoutError:
        raise TtsError(f"the Edge-TTS voice list did not arrive within {timeout_s:g} s") from None
    except Exception as exc:  # noqa: BLE001
        raise TtsError(f"cannot get the Edge-TTS voice list: {_classify(exc, '').reason}") from None


def create(options: EdgeOptions, tts: TtsSettings, **kwargs: Any) -> EdgeVoice:
    """The `[tts] voice` (an espeak-style voice becomes the service's usual one for its
    language) with `[tts.edge]`'s prosody and time limits; keyword arguments override. Never
    wrapped: the fallback is `voiceloop.build.voices`' business."""
    settings: dict[str, Any] = {"voice": tts.voice, **options.model_dump(), **kwargs}
    settings["voice"] = edge_voice_for(settings["voice"])
    return EdgeVoice(**settings)
