"""The Edge voice: the real edge-tts client against a loopback service that speaks its protocol
(voiceloop.testing.edge_server), with the service's faults made on purpose."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import pytest

from voiceloop.audio.frames import SAMPLE_RATE, rms_dbfs
from voiceloop.build import build_adapter
from voiceloop.config import Settings
from voiceloop.testing.edge_server import MP3_RATE, EdgeFault, EdgeServer, encode_mp3
from voiceloop.testing.llm_server import unused_port
from voiceloop.tts import espeak
from voiceloop.tts.base import SpeechSynthesizer, TtsError
from voiceloop.tts.edge import Boundary, EdgeVoice, edge_voice_for, espeak_voice_for, split_heard
from voiceloop.tts.fallback import PartialSpeech
from voiceloop.tts.mp3 import Mp3StreamDecoder, decode_mp3

TEXT = "Hello there, this sentence comes from the loopback service."
VOICE = "en-US-EmmaMultilingualNeural"


@pytest.fixture
def server() -> Iterator[EdgeServer]:
    with EdgeServer(chunk_interval_s=0.005) as running, running.patched():
        yield running


def edge_settings(voice: str = VOICE, **edge: object) -> Settings:
    """`[tts.edge]` options as keywords; no fallback: these tests are about the Edge voice alone."""
    return Settings(
        tts={"name": "edge", "voice": voice, "fallback": None, "edge": {"first_audio_timeout_s": 0.5, **edge}}
    )


async def speak(voice: SpeechSynthesizer, text: str = TEXT) -> list[np.ndarray]:
    return [chunk async for chunk in voice.synthesize(text)]


# -- the MP3 decoder ------------------------------------------------------------------------------


def tone(seconds: float, rate: int = MP3_RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_mp3_fed_in_arbitrary_pieces_decodes_to_16khz_pcm_of_the_same_length() -> None:
    mp3 = encode_mp3(tone(2.0))
    decoder = Mp3StreamDecoder()
    pieces = [decoder.feed(mp3[i : i + 1000]) for i in range(0, len(mp3), 1000)]
    pieces.append(decoder.flush())
    pcm = np.concatenate(pieces)

    assert decoder.in_rate == MP3_RATE and pcm.dtype == np.float32
    # MP3 adds encoder and decoder delay and pads the last frame: under 3 frames of 24 ms.
    assert 2.0 <= pcm.size / SAMPLE_RATE < 2.08
    assert sum(piece.size > 0 for piece in pieces) > 10  # it came out as it went in
    assert abs(rms_dbfs(pcm[SAMPLE_RATE // 10 : -SAMPLE_RATE // 10]) - rms_dbfs(tone(1.0))) < 0.5
    # Feeding all at once gives the same samples: the stream resampler keeps its state.
    assert np.allclose(decode_mp3(mp3), pcm, atol=1e-4)


def test_a_partial_mp3_frame_waits_for_the_rest() -> None:
    mp3 = encode_mp3(tone(0.5))
    decoder = Mp3StreamDecoder()
    assert decoder.feed(mp3[:100]).size == 0  # less than one 144-byte frame
    assert decoder.feed(mp3[100:]).size > 0


# -- streaming from the service -------------------------------------------------------------------


async def test_a_piece_streams_from_the_service_as_16khz_speech(server: EdgeServer) -> None:
    voice = build_adapter(edge_settings(rate="+10%", volume="-5%", pitch="+2Hz"), "tts", "edge")
    chunks = await speak(voice)
    audio = np.concatenate(chunks)

    assert voice.name == "edge" and isinstance(voice, SpeechSynthesizer)
    assert len(chunks) > 5 and all(c.dtype == np.float32 and c.ndim == 1 for c in chunks)
    # The service spoke espeak's rendering of the text: same length and level, as MP3 allows.
    original = espeak.render(TEXT, "en-us")
    assert abs(audio.size - original.size) / SAMPLE_RATE < 0.1
    assert abs(rms_dbfs(audio) - rms_dbfs(original)) < 1.0

    (request,) = server.requests
    assert request.text == TEXT and request.completed
    assert request.voice == "Microsoft Server Speech Text to Speech Voice (en-US, EmmaMultilingualNeural)"
    assert (request.rate, request.volume, request.pitch) == ("+10%", "-5%", "+2Hz")
    assert request.word_boundaries and request.output_format == "audio-24khz-48kbitrate-mono-mp3"


async def test_the_first_audio_is_out_before_the_last_chunk_is_even_sent(server: EdgeServer) -> None:
    server.release_last_chunk.clear()  # the service holds its last audio message back
    voice = build_adapter(edge_settings(), "tts", "edge")
    stream = voice.synthesize(TEXT)
    first = await anext(stream)

    assert first.size > 0 and server.last_chunk_sent_at is None
    server.release_last_chunk.set()
    rest = [chunk async for chunk in stream]
    assert rest and server.last_chunk_sent_at is not None


async def test_word_boundaries_are_kept_for_the_piece_and_tell_what_was_heard(server: EdgeServer) -> None:
    seen: list[Boundary] = []
    voice = build_adapter(edge_settings(), "tts", "edge", on_boundary=seen.append)
    audio = np.concatenate(await speak(voice))

    words = [b.text for b in voice.boundaries]
    assert words == ["Hello", "there", "this", "sentence", "comes", "from", "the", "loopback", "service"]
    assert seen == voice.boundaries
    offsets = [b.offset_s for b in voice.boundaries]
    assert offsets == sorted(offsets) and voice.boundaries[-1].end_s <= audio.size / SAMPLE_RATE

    halfway = voice.boundaries[4].end_s  # "comes" has been said
    assert split_heard(TEXT, voice.boundaries, halfway) == (
        "Hello there, this sentence comes",
        "from the loopback service.",
    )

    await speak(voice, "Short one.")
    assert [b.text for b in voice.boundaries] == ["Short", "one"]  # per piece, not accumulated


async def test_sentence_boundaries_when_configured(server: EdgeServer) -> None:
    voice = build_adapter(edge_settings(boundary="sentence"), "tts", "edge")
    await speak(voice)
    assert [b.text for b in voice.boundaries] == [TEXT]
    assert not server.requests[0].word_boundaries


def test_split_heard_follows_repeated_words_and_stops_at_unknown_ones() -> None:
    words = [Boundary(0.0, 0.2, "no"), Boundary(0.3, 0.2, "no"), Boundary(0.6, 0.2, "yes")]
    assert split_heard("no, no, yes.", words, 0.55) == ("no, no", ", yes.")
    assert split_heard("no, no, yes.", words, 0.0) == ("", "no, no, yes.")
    assert split_heard("twenty one", [Boundary(0.0, 0.2, "21")], 1.0) == ("", "twenty one")


# -- faults: one clear TtsError, within the configured time, retried only where it helps ----------


async def test_a_refused_connection_is_retried_once_then_fails_clearly(monkeypatch) -> None:
    import edge_tts.communicate

    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", f"ws://127.0.0.1:{unused_port()}/edge/v1?x=y")
    voice = build_adapter(edge_settings(), "tts", "edge")
    with pytest.raises(TtsError, match="cannot connect to 127.0.0.1:.*refused"):
        await speak(voice)
    assert voice.retries == 1


async def test_an_unresolvable_host_fails_at_once_without_a_retry(monkeypatch) -> None:
    import edge_tts.communicate

    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", "wss://edge-tts.invalid/edge/v1?x=y")
    voice = build_adapter(edge_settings(), "tts", "edge")
    with pytest.raises(TtsError, match=r"cannot resolve .*\(offline\?\)"):
        await speak(voice)
    assert voice.retries == 0


async def test_a_403_handshake_says_to_upgrade_and_is_not_retried(server: EdgeServer) -> None:
    server.fail_always(EdgeFault(status=403))
    voice = build_adapter(edge_settings(), "tts", "edge")
    with pytest.raises(TtsError, match=r"HTTP 403.*upgrading edge-tts"):
        await speak(voice)
    # edge-tts itself retries a 403 once (after correcting its clock); we add nothing to that.
    assert server.connections == 2 and voice.retries == 0


async def test_a_5xx_handshake_is_retried_once_and_the_retry_speaks(server: EdgeServer) -> None:
    server.fail_next(EdgeFault(status=503))
    voice = build_adapter(edge_settings(), "tts", "edge")
    audio = np.concatenate(await speak(voice))
    assert audio.size > SAMPLE_RATE and voice.retries == 1 and server.connections == 2


async def test_a_service_that_accepts_and_stalls_fails_after_the_first_audio_timeout(
    server: EdgeServer,
) -> None:
    server.fail_next(EdgeFault(stall_s=30))
    voice = build_adapter(edge_settings(first_audio_timeout_s=0.4), "tts", "edge")
    started = time.perf_counter()
    with pytest.raises(TtsError, match="connected, but no audio within 0.4 s"):
        await speak(voice)
    assert time.perf_counter() - started < 5  # bounded by the timeout, not by the stall
    assert server.connections == 1  # the time is spent: no retry


async def test_a_stream_cut_mid_piece_is_not_taken_for_the_end(server: EdgeServer) -> None:
    server.fail_next(EdgeFault(cut_after_chunks=3))
    voice = build_adapter(edge_settings(), "tts", "edge")
    chunks: list[np.ndarray] = []
    with pytest.raises(PartialSpeech, match="dropped mid-piece") as raised:
        async for chunk in voice.synthesize(TEXT):
            chunks.append(chunk)
    assert chunks  # what arrived was yielded
    unspoken = raised.value.unspoken
    assert unspoken and TEXT.endswith(unspoken) and len(unspoken) < len(TEXT) - 10
    assert server.connections == 1  # words already out are never said twice


async def test_a_stream_that_stalls_mid_piece_counts_as_cut(server: EdgeServer) -> None:
    server.fail_next(EdgeFault(stall_s=30, stall_after_chunks=4))
    voice = build_adapter(edge_settings(first_audio_timeout_s=0.3), "tts", "edge")
    chunks: list[np.ndarray] = []
    with pytest.raises(PartialSpeech, match="stalled mid-piece for 0.3 s") as raised:
        async for chunk in voice.synthesize(TEXT):
            chunks.append(chunk)
    assert chunks and TEXT.endswith(raised.value.unspoken)


async def test_a_slow_listener_is_not_taken_for_a_stalled_stream(server: EdgeServer) -> None:
    # The service renders a text once (espeak + LAME, slower than 0.2 s on a loaded machine):
    # render it first, so the tight limit below times only the stream's gaps.
    async for _ in build_adapter(edge_settings(first_audio_timeout_s=5.0), "tts", "edge").synthesize(TEXT):
        pass
    voice = build_adapter(edge_settings(first_audio_timeout_s=0.2), "tts", "edge")
    chunks = []
    async for chunk in voice.synthesize(TEXT):  # a consumer slower than the gap limit
        chunks.append(chunk)
        if len(chunks) <= 3:
            await asyncio.sleep(0.25)
    assert server.requests[-1].completed and len(chunks) > 3


async def test_a_barge_in_closes_the_stream_and_the_connection(server: EdgeServer) -> None:
    server.release_last_chunk.clear()
    voice = build_adapter(edge_settings(), "tts", "edge")

    async def consume() -> None:
        async for _ in voice.synthesize(TEXT):
            pass

    task = asyncio.create_task(consume())
    while not server.requests or not server.requests[0].audio_messages:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    server.release_last_chunk.set()
    assert not server.requests[0].completed


# -- voices ---------------------------------------------------------------------------------------


def test_a_bad_voice_or_prosody_fails_at_startup_not_at_the_first_reply() -> None:
    with pytest.raises(TtsError, match="Invalid rate"):
        EdgeVoice(VOICE, rate="fast")
    with pytest.raises(TtsError, match="not an Edge voice"):
        build_adapter(edge_settings(voice="klingon"), "tts", "edge")


def test_voice_names_map_between_edge_and_espeak() -> None:
    assert edge_voice_for("zh-CN-YunxiNeural") == "zh-CN-YunxiNeural"
    assert edge_voice_for("en-us") == "en-US-EmmaMultilingualNeural"
    assert edge_voice_for("cmn") == "zh-CN-XiaoxiaoNeural"
    known = espeak.list_voices()
    assert espeak_voice_for("zh-CN-XiaoxiaoNeural", known) == "cmn"
    assert espeak_voice_for("zh-HK-HiuGaaiNeural", known) == "yue"
    assert espeak_voice_for("en-US-EmmaMultilingualNeural", known) == "en-us"
    assert espeak_voice_for("en-GB-SoniaNeural", known) == "en"
    assert espeak_voice_for("en-us+f3", known) == "en-us+f3"
