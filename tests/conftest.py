"""Shared fixtures. Heavy parts (uvicorn and Starlette for the stand-in LLM, the PulseAudio
helpers, the script model) are imported inside the fixtures that need them, so a pure test
collects without the whole server stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import numpy as np

    from voiceloop.audio.headroom import SpeakerHeadroom
    from voiceloop.audio.playback import PlaybackQueue
    from voiceloop.audio.script import UserScript
    from voiceloop.config import Settings
    from voiceloop.engine.listener import Listener
    from voiceloop.testing.llm_server import LlmServer

# Tests on a real sound server (a private PulseAudio) run in real time, and this host's CPU is
# shared: measured here, 6-12 % of it stolen by other guests while idle, and now and then a
# 100-140 ms pause in which PortAudio's callbacks stall, the speaker underruns and ALSA may even
# end the stream. One such pause fails a test whose logic is sound, so these tests get two more
# tries (pytest-rerunfailures; the summary counts them as "rerun" and, with pyproject's
# --rerun-show-tracebacks, prints why the first try failed, so a test that leans on its reruns
# shows in the CI log). The loop's per-frame logic
# is tested without any device, in the virtual room, where no rerun is allowed.
SOUND_SERVER_FIXTURES = {"pulse", "on_pulse"}
SOUND_SERVER_RERUNS = 2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SOUND_SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.flaky(reruns=SOUND_SERVER_RERUNS, reruns_delay=1))


def listener_on_the_mic(
    playback: PlaybackQueue,
    log_dir: Path,
    emit: Any = lambda _: None,
    headroom: SpeakerHeadroom | None = None,
    aec: Any = None,
) -> Listener:
    """The real listener (silero, the default endpointer) on a mic taken as it is (or through
    `aec`): what it hands on besides the canceller's work (the words sounded, the speaker's
    volume)."""
    from voiceloop.aec.passthrough import PassthroughCanceller
    from voiceloop.engine.listener import Listener
    from voiceloop.session.log import SessionLog
    from voiceloop.vad.endpointer import Endpointer
    from voiceloop.vad.silero import SileroVad

    session = SessionLog(log_dir, record_wav=False)
    vad, endpointer = SileroVad(), Endpointer()
    return Listener(
        PassthroughCanceller() if aec is None else aec,
        vad,
        endpointer,
        playback,
        session,
        emit=emit,
        muted=lambda: False,
        headroom=headroom,
    )


def queue_whole_reply(queue: PlaybackQueue, audio: np.ndarray, text: str = "A reply.", turn: int = 1) -> None:
    """A reply's whole audio in the playback queue as one piece, the turn closed behind it."""
    queue.open_turn(turn)
    piece = queue.begin_piece(turn, text)
    assert piece is not None
    queue.append(turn, piece, audio)
    queue.end_piece(turn, piece)
    queue.close_turn(turn)


def reply_for(messages: list[dict]) -> str:
    """The test LLM: two sentences that quote the user, so a test can tell replies apart."""
    user = str(messages[-1]["content"])
    return f"Sure thing, you asked me: {user}. Here is a second sentence that takes a while to say."


@pytest.fixture
def llm_server() -> Iterator[LlmServer]:
    from voiceloop.testing.llm_server import LlmServer

    with LlmServer(reply=reply_for, first_token_delay_s=0.02, token_interval_s=0.005) as server:
        yield server


@pytest.fixture
def room_settings(tmp_path: Path, llm_server: LlmServer) -> Settings:
    from voiceloop.config import load_settings

    settings = load_settings("offline")
    settings.llm.base_url = llm_server.base_url
    settings.llm.model = "voiceloop-test"
    settings.llm.fallback_to_echo = False
    settings.log.dir = tmp_path / "runs"
    return settings


def script(*turns: dict, tail_ms: int = 1200) -> UserScript:
    from voiceloop.audio.script import UserScript

    return UserScript.model_validate(
        {"voice": "en-us+m3", "rate_wpm": 165, "tail_ms": tail_ms, "turns": list(turns)}
    )


def bench_room(settings: Settings, name: str, *turns: dict) -> Any:
    """A VirtualRoom of the benches' scenario `name` (voiceloop.audio.rooms), its echo drifting
    or changing as there, with the profile's drift-compensated speex canceller."""
    from voiceloop.audio.rooms import all_scenarios
    from voiceloop.audio.virtual import VirtualRoom, room_as_configured

    scenario = all_scenarios()[name]
    settings.audio.room = scenario.room
    settings.aec.speex.drift_compensation = True
    return VirtualRoom(script(*turns), room_as_configured(settings), conditions=scenario.conditions)


def check_chunk_by_chunk(streamer: Any, audio: Any) -> None:
    """What every streaming runtime promises: text chunk by chunk that only grows, whole chunks
    decoded as they come, and a cache per stream (the same audio in a fresh stream reads the
    same)."""
    import numpy as np

    from voiceloop.audio.frames import SAMPLE_RATE
    from voiceloop.testing.tiny_funasr_onnx import cjk_vocabulary

    CHUNK_SAMPLES = streamer.chunk_samples  # asr.streaming_chunk_ms
    stream = streamer.start()
    seen = []
    for start in range(0, len(audio), CHUNK_SAMPLES // 2):  # half chunks: it buffers the rest
        stream.feed(audio[start : start + CHUNK_SAMPLES // 2])
        seen.append(stream.text)
    whole_chunks = len(audio) // CHUNK_SAMPLES
    assert stream.decoded_s == pytest.approx(whole_chunks * CHUNK_SAMPLES / SAMPLE_RATE)
    stream.feed(np.zeros(0, np.float32), final=True)

    assert stream.text and set(stream.text) <= set(cjk_vocabulary())
    assert len(set(seen)) >= 2  # the text grew as the audio came
    assert all(later.startswith(earlier) for earlier, later in zip(seen, seen[1:], strict=False))
    again = streamer.start()
    again.feed(audio, final=True)
    assert again.text == stream.text


async def two_questions_on_2pass(room_settings: Any, asr: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Two questions in the virtual room on `paraformer-onnx` with a streaming model beside it
    (`asr`: the rest of `[asr]`): the turns, and the partial transcripts of the first one."""
    from voiceloop.config.settings import AsrSettings
    from voiceloop.demo import run_demo
    from voiceloop.session.log import read_session

    room_settings.asr = AsrSettings.model_validate({"name": "paraformer-onnx", "streaming": True, **asr})
    room_settings.loop.greeting = ""
    user = script({"say": "what time is it in the city of London right now"}, {"say": "tell me a joke"})
    result = await run_demo(room_settings, user, say=lambda _: None)
    lines = read_session(result.session_dir / "session.jsonl")
    turns = [line for line in lines if line["event"] == "turn"]
    partials = [line for line in lines if line["event"] == "partial_transcript" and line["utterance"] == 1]
    return turns, partials


@pytest.fixture
def pulse() -> Iterator[Any]:
    """A private PulseAudio daemon whose null sinks stand in for a sound card (as root)."""
    from voiceloop.testing.pulse import missing_parts, private_pulse

    if (reason := missing_parts()) is not None:
        pytest.skip(f"no PulseAudio to stand in for a sound card: {reason}")
    with private_pulse() as server:
        yield server


@pytest.fixture(scope="session")
def allowed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """serve.allowed_dir for `/asr {"filename"}`: one file inside, and a symlink in it that leads
    to a file outside (which must be refused by where it really leads)."""
    from voiceloop.testing.clips import encoded, spoken_clip

    folder = tmp_path_factory.mktemp("allowed")
    (folder / "command.wav").write_bytes(encoded(spoken_clip("turn on the lights")))
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.wav").write_bytes(encoded(spoken_clip("never mind")))
    (folder / "escape.wav").symlink_to(outside / "secret.wav")
    return folder
