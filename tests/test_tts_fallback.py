"""The fallback voice: generic over two adapters, and the Edge voice falling back to espeak
when the (loopback) service refuses, stalls, cuts or answers 403, in and out of the loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests.conftest import script
from voiceloop.build import build_voice
from voiceloop.config import ConfigError, Settings, load_settings
from voiceloop.demo import run_demo
from voiceloop.session.log import read_session
from voiceloop.testing.edge_server import EdgeFault, EdgeServer
from voiceloop.testing.faults import FaultyVoice
from voiceloop.testing.llm_server import unused_port
from voiceloop.tts import espeak
from voiceloop.tts.base import TtsError
from voiceloop.tts.edge import EdgeVoice
from voiceloop.tts.espeak import EspeakVoice
from voiceloop.tts.fallback import FallbackVoice

TEXT = "The weather is fine today, and tomorrow looks sunny too."


class Clock:
    """Time that moves only when told, for the primary's rest period."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def speak(voice: FallbackVoice, text: str = TEXT) -> np.ndarray:
    chunks = [chunk async for chunk in voice.synthesize(text)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


# -- the generic wrapper, over real espeak voices with injected faults ----------------------------


async def test_a_failed_primary_is_replaced_for_the_piece_and_rests_then_is_tried_again() -> None:
    primary = FaultyVoice(EspeakVoice("en-us+f3"), {0: "error", 2: "error"})
    notes: list[str] = []
    clock = Clock()
    voice = FallbackVoice(primary, EspeakVoice("en-us"), retry_after_s=60, notify=notes.append, clock=clock)

    audio = await speak(voice)
    assert np.array_equal(audio, espeak.render(TEXT, "en-us"))  # the secondary said it all
    assert notes == [
        "injected voice failure on call 0. Speaking with espeak instead; faulty-espeak is tried again after 60 s."
    ]

    await speak(voice, "Second piece.")
    assert primary.calls == 1  # resting: not asked again yet
    clock.now += 61
    await speak(voice, "Third piece.")  # tried again (call 1), and it works
    assert primary.calls == 2 and voice.fallback_pieces == 2

    clock.now += 1
    await speak(voice, "Fourth piece.")  # call 2 fails: fallback, but no second notice
    assert voice.failures == 2 and len(notes) == 1


async def test_a_primary_cut_mid_piece_without_saying_where_gets_the_whole_piece_repeated() -> None:
    primary = FaultyVoice(EspeakVoice("en-us+f3"), {0: "cut"})
    voice = FallbackVoice(primary, EspeakVoice("en-us"), notify=lambda _: None)
    chunks = [chunk async for chunk in voice.synthesize(TEXT)]
    assert len(chunks) == 2 and np.array_equal(chunks[1], espeak.render(TEXT, "en-us"))


async def test_when_both_voices_fail_the_error_names_both() -> None:
    voice = FallbackVoice(
        FaultyVoice(EspeakVoice(), {0: "error"}),
        FaultyVoice(EspeakVoice(), {0: "error"}),
        notify=lambda _: None,
    )
    with pytest.raises(TtsError, match="call 0; the fallback faulty-espeak failed too: injected"):
        await speak(voice)


async def test_a_cancelled_piece_is_not_a_failure() -> None:
    voice = FallbackVoice(FaultyVoice(EspeakVoice(), {0: "stall"}), EspeakVoice())
    task = asyncio.create_task(speak(voice))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert voice.failures == 0 and voice.fallback_pieces == 0


def test_the_builder_wraps_any_voice_from_settings() -> None:
    settings = load_settings("default")  # tts.name = "edge", voice zh-CN-XiaoxiaoNeural, fallback espeak
    edge = build_voice(settings)
    assert isinstance(edge, FallbackVoice) and edge.name == "edge|espeak"
    assert isinstance(edge.primary, EdgeVoice) and edge.primary.voice == "zh-CN-XiaoxiaoNeural"
    assert isinstance(edge.secondary, EspeakVoice) and edge.secondary.voice == "cmn"

    wrapper = build_voice(load_settings("default", tts={"fallback_voice": "cmn+f2"}))
    assert isinstance(wrapper.primary, EdgeVoice) and wrapper.secondary.voice == "cmn+f2"

    # derived: Edge's usual voice for espeak's en-us
    reverse = build_voice(
        load_settings("default", tts={"name": "espeak", "fallback": "edge", "voice": "en-us"})
    )
    assert (
        isinstance(reverse.primary, EspeakVoice) and reverse.secondary.voice == "en-US-EmmaMultilingualNeural"
    )

    assert isinstance(build_voice(load_settings("default", tts={"fallback": None})), EdgeVoice)
    with pytest.raises(ConfigError, match="tts.name = 'fallback' is gone"):
        load_settings("default", tts={"name": "fallback"})


# -- Edge with espeak behind it, against the loopback service ------------------------------------


@pytest.fixture
def server() -> Iterator[EdgeServer]:
    with EdgeServer(chunk_interval_s=0.005) as running, running.patched():
        yield running


def edge_with_fallback() -> Settings:
    return Settings(
        # its espeak counterpart: en-us
        tts={
            "name": "edge",
            "voice": "en-US-EmmaMultilingualNeural",
            "timeout_s": 5.0,
            "edge": {"first_audio_timeout_s": 0.5},
        }
    )


FAULTS = {
    "403": EdgeFault(status=403),
    "stall": EdgeFault(stall_s=30),
    "cut": EdgeFault(cut_after_chunks=2),
}


@pytest.mark.parametrize("fault", ["refused", *FAULTS])
async def test_the_fallback_speaks_within_the_configured_timeout(server: EdgeServer, monkeypatch, fault: str):
    if fault == "refused":
        import edge_tts.communicate

        monkeypatch.setattr(edge_tts.communicate, "WSS_URL", f"ws://127.0.0.1:{unused_port()}/edge/v1?x=y")
    else:
        server.fail_always(FAULTS[fault])
    settings = edge_with_fallback()
    voice = build_voice(settings)
    notes: list[str] = []
    voice.notify = notes.append

    started = time.perf_counter()
    async with asyncio.timeout(settings.tts.timeout_s):
        chunks = [chunk async for chunk in voice.synthesize(TEXT)]
    assert time.perf_counter() - started < settings.tts.timeout_s
    assert voice.failures == 1 and len(notes) == 1
    expected_reason = {
        "refused": "refused",
        "403": "HTTP 403",
        "stall": "no audio within",
        "cut": "mid-piece",
    }
    assert expected_reason[fault] in notes[0]

    fallback_audio = chunks[-1]  # espeak gives a piece as one chunk
    if fault == "cut":  # Edge's words stand, espeak says only the rest
        rests = [TEXT[i:].lstrip(" ,") for i in range(1, len(TEXT)) if TEXT[i - 1] in " ,"]
        said = [rest for rest in rests if np.array_equal(fallback_audio, espeak.render(rest, "en-us"))]
        assert said and len(chunks) > 1, "espeak should say exactly the words Edge did not"
    else:
        assert np.array_equal(fallback_audio, espeak.render(TEXT, "en-us"))


async def test_edge_speaks_again_once_the_service_recovers(server: EdgeServer) -> None:
    settings = edge_with_fallback()
    settings.tts.fallback_retry_s = 0
    voice = build_voice(settings)
    voice.notify = lambda _: None
    server.fail_next(EdgeFault(status=403), EdgeFault(status=403))
    await speak(voice, "First.")
    await speak(voice, "Second.")
    assert voice.failures == 1 and voice.fallback_pieces == 1
    assert [r.text for r in server.requests if r.completed] == ["Second."]


@pytest.mark.slow
async def test_the_loop_carries_on_through_edge_faults_in_the_virtual_room(room_settings, server: EdgeServer):
    room_settings.tts.name = "edge"
    room_settings.tts.voice = "en-US-EmmaMultilingualNeural"
    room_settings.tts.edge.first_audio_timeout_s = 0.5
    room_settings.tts.fallback_retry_s = 0  # try Edge on every piece, so both voices are heard
    # Edge greets; then the first reply's first piece meets a stalled service, its second a
    # 403 (edge-tts tries that twice itself). Everything after is answered normally.
    server.fail_next(EdgeFault(), EdgeFault(stall_s=30), EdgeFault(status=403), EdgeFault(status=403))
    voice = build_voice(room_settings)
    notes: list[str] = []
    voice.notify = notes.append
    user = script({"say": "what time is it", "pause_ms": 300}, {"say": "thank you"})

    result = await run_demo(room_settings, user, say=lambda _: None, tts=voice)

    turns = [line for line in read_session(result.session_dir / "session.jsonl") if line["event"] == "turn"]
    assert [t["transcript"] for t in turns] == ["what time is it", "thank you"]
    assert [t["outcome"] for t in turns] == ["answered", "answered"]
    assert all(not t["errors"] for t in turns)
    assert turns[0]["heard_text"].startswith("Sure thing, you asked me: what time is it.")
    assert voice.failures == 2 and len(notes) == 1  # said once, for the session
    assert any(r.completed for r in server.requests)  # and Edge spoke the pieces it could
    assert result.report["self_transcriptions"] == 0
