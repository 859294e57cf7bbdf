"""The fault soak, CI-sized, and one focused run per fault kind showing how the loop recovers.

Everything runs in the virtual room at 4x speed with the real adapters; the faults are
injected at the edges: the local LLM server, the voice, the recogniser, the room itself.
How the loop recovers from a failed voice or recogniser is the engine's rule, tested with the
same injectors on a stepped clock in test_runtime_timing.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import script
from voiceloop.build import build_adapter
from voiceloop.demo import run_demo
from voiceloop.session.log import read_session
from voiceloop.testing.faults import FaultyRecognizer, FaultyVoice
from voiceloop.testing.llm_server import LlmServer
from voiceloop.testing.soak import PHRASES, ScheduledChat, lost_turns, run_soak, soak_settings

pytestmark = pytest.mark.slow


async def test_a_ci_sized_soak_loses_nothing_and_leaks_nothing(tmp_path: Path):
    report = await run_soak(turns=40, seed=7, out_dir=tmp_path, speed=4.0)
    assert report.crashes == 0
    assert report.lost_turns == 0
    assert report.unspoken_in_history == 0
    # Back to baseline (or below it: something open before the soak may have closed since).
    assert report.tasks_left <= 0 and report.fds_left <= 0
    assert sum(report.faults.values()) >= 10  # it really was a fault soak
    assert report.completed >= report.turns * 0.8


async def session(
    tmp_path: Path,
    turns: list[dict],
    llm: list[str | None] | None = None,
    tts: dict | None = None,
    asr: dict | None = None,
):
    """One short session with chosen faults; returns (turn lines of the session log, result)."""
    settings = soak_settings(tmp_path, speed=4.0)
    with LlmServer() as server:
        settings.llm.base_url = server.base_url
        chat = ScheduledChat(settings, server, llm or [None])
        server.reply = chat.reply_for
        result = await run_demo(
            settings,
            script(*turns),
            say=lambda _: None,
            llm=chat,
            asr=FaultyRecognizer(build_adapter(settings, "asr", "pocketsphinx"), asr or {}),
            tts=FaultyVoice(build_adapter(settings, "tts", "espeak"), tts or {}),
        )
    log = read_session(result.session_dir / "session.jsonl")
    assert lost_turns(log) == []
    return [line for line in log if line["event"] == "turn"], result


ASK = {"say": "what time is it", "pause_ms": 500, "reply_timeout_ms": 5000}
THEN = {"say": "tell me a joke", "reply_timeout_ms": 8000}


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("refused", "cannot reach the language model"),
        ("stall", "did not answer within 3 s"),
        ("429", "rate limited"),
        ("500", "HTTP 500"),
        ("cut", "cut off"),
        ("malformed", "cut off"),
    ],
)
async def test_an_llm_fault_is_said_and_the_next_turn_is_answered(tmp_path: Path, kind: str, said: str):
    # The room runs 4x: a 3 s LLM stall is 12 s of room time, so the user waits longer
    # (a line's reply_timeout_ms is how long the user waits for the previous reply).
    turns, _ = await session(tmp_path, [ASK, {**THEN, "reply_timeout_ms": 20_000}], llm=[kind, None])
    assert turns[0]["outcome"] == "error" and said in turns[0]["errors"][0]
    assert (
        turns[0]["playback_start_at"] is not None
    )  # something was said: the apology, or the words that arrived
    assert turns[-1]["outcome"] == "answered" and turns[-1]["transcript"] == "tell me a joke"


async def test_a_very_long_reply_is_spoken_until_the_user_talks_over_it(tmp_path: Path):
    turns, result = await session(
        tmp_path, [ASK, {"say": "stop", "interrupt_after_ms": 3000}], llm=["long_reply", None]
    )
    assert turns[0]["outcome"] == "interrupted"
    assert result.history[0][1] == turns[0]["heard_text"]  # only what was played is remembered


@pytest.mark.parametrize(
    "trouble",
    [
        {"noise_ms": 700, "pause_ms": 500, "reply_timeout_ms": 2500},
        {"drop_ms": 3000, "pause_ms": 300, "reply_timeout_ms": 1500},
    ],
    ids=["noise_burst", "device_drop"],
)
async def test_trouble_before_a_question_does_not_stop_it_being_answered(tmp_path: Path, trouble: dict):
    turns, _ = await session(tmp_path, [ASK, trouble, THEN])
    assert turns[-1]["transcript"] == "tell me a joke" and turns[-1]["outcome"] == "answered"


async def test_clipped_input_is_still_heard(tmp_path: Path):
    turns, _ = await session(tmp_path, [{**ASK, "clipped": True}, THEN])
    assert turns[0]["transcript"] == "what time is it" and turns[0]["outcome"] == "answered"


async def test_a_minute_of_silence_then_the_user_is_heard(tmp_path: Path):
    turns, _ = await session(tmp_path, [ASK, {**THEN, "pause_ms": 60_000}])
    assert [t["outcome"] for t in turns] == ["answered", "answered"]


async def test_a_cough_over_the_reply_leaves_no_dead_end(tmp_path: Path):
    turns, _ = await session(
        tmp_path, [ASK, {"cough_ms": 200, "interrupt_after_ms": 600, "reply_timeout_ms": 3000}, THEN]
    )
    assert turns[-1]["transcript"] == "tell me a joke" and turns[-1]["outcome"] == "answered"


async def test_the_user_who_talks_over_every_reply_is_answered_in_the_end(tmp_path: Path):
    over = [{"say": phrase, "interrupt_after_ms": 500} for phrase in PHRASES[:3]]
    turns, _ = await session(
        tmp_path, [ASK, *over, {"say": "thank you", "pause_ms": 800, "reply_timeout_ms": 8000}]
    )
    assert sum(t["outcome"] == "interrupted" for t in turns) >= 3
    assert turns[-1]["outcome"] == "answered"
