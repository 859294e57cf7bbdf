"""Kiosk mode's rules, to the frame, on the stepped clock (voiceloop/testing/stepped.py).

The real Conversation, dispatcher, machine and wake gate run; the wake-word stage fires at
scripted times (`ScriptedWake`), as the user's tone is speech to the scripted VAD. The same
rules with the real model and espeak voices are in test_wake_room.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from voiceloop.config import Settings
from voiceloop.llm.base import ChatMessage
from voiceloop.testing.scripted import (
    Heard,
    ScriptedChat,
    ScriptedRecognizer,
    ScriptedVoice,
    ScriptedWake,
    quote_the_user,
)
from voiceloop.testing.soak import lost_turns
from voiceloop.testing.stepped import Speech, SteppedRoom, SteppedRun, run_stepped, stepped_settings

FRAME = 0.01


def frame_end(t: float) -> float:
    return math.ceil(round(t / FRAME, 6)) * FRAME


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = stepped_settings(tmp_path)
    settings.vad.stop_ms = 200
    settings.vad.speculate_ms = 0
    settings.loop.attention_s = 3.0
    settings.loop.wake_confirm = "none"
    return settings


async def kiosk(
    settings: Settings,
    speech: list[Speech],
    seconds: float,
    heard: list[Heard],
    wake_at: tuple[float, ...] = (),
    pushes: tuple[float, ...] = (),
    chat: dict | None = None,
) -> tuple[SteppedRun, ScriptedRecognizer, ScriptedChat, SteppedRoom]:
    room = SteppedRoom(speech, duration_s=seconds)
    asr = ScriptedRecognizer(*heard)
    llm = ScriptedChat(room.clock, **(chat or {}))
    run = await run_stepped(
        settings,
        room,
        asr=asr,
        llm=llm,
        tts=ScriptedVoice(room.clock),
        wake=ScriptedWake(*wake_at),
        pushes=pushes,
    )
    assert lost_turns(run.log) == []
    return run, asr, llm, room


async def test_asleep_speech_is_ignored_and_the_word_wakes_the_loop_for_the_question(settings: Settings):
    passer_by = Speech(0.5, 1.0)
    word, question = Speech(2.5, 0.6), Speech(3.6, 1.0)
    run, asr, llm, _ = await kiosk(
        settings, [passer_by, word, question], 8.0, [Heard("what time is it")], wake_at=(3.255,)
    )
    (turn,) = run.turns
    assert turn.outcome == "answered" and turn.transcript == "what time is it"
    assert len(asr.calls) == 1 and len(llm.requests) == 1  # the passer-by never reached ASR
    # Only the question was transcribed (pre-roll, speech, stop window): not the word before it.
    assert asr.calls[0] < 0.3 + question.seconds + 0.2 + 0.1
    assert turn.speech_end_at == pytest.approx(question.end, abs=1e-6)
    assert run.attention[0][1:] == ("asleep", "start")
    assert run.attention[1] == (pytest.approx(frame_end(3.255)), "awake", "okay_nabu")
    (wake,) = run.events("wake")
    assert wake["by"] == "okay_nabu" and wake["was_asleep"] and wake["restart"]
    assert [line["state"] for line in run.events("attention")] == ["asleep", "awake"]
    assert [state for _, state in run.states][0] == "user_speaking"  # nothing before the word


async def test_follow_ups_need_no_word_inside_the_attention_window_and_do_after_it(settings: Settings):
    word, question = Speech(0.5, 0.6), Speech(1.4, 1.0)
    follow_up = Speech(5.5, 0.8)  # ~1.4 s after the first reply ends: inside the 3 s window
    too_late = Speech(12.0, 0.8)  # >3 s after the second reply: asleep again
    run, asr, _, _ = await kiosk(
        settings,
        [word, question, follow_up, too_late],
        15.0,
        [Heard("what time is it"), Heard("and the date")],
        wake_at=(1.2,),
    )
    first, second = run.turns
    assert first.playback_end_at is not None and first.playback_end_at < follow_up.at
    assert follow_up.at - first.playback_end_at < settings.loop.attention_s
    assert (first.outcome, second.outcome) == ("answered", "answered")
    assert second.transcript == "and the date"
    assert len(asr.calls) == 2  # the line after the window was never transcribed
    asleep = [t for t, state, why in run.attention if state == "asleep" and why == "attention_expired"]
    assert len(asleep) == 1 and second.playback_end_at is not None
    # The window runs from the end of the last reply, renewed by it, to the frame.
    assert 0 <= asleep[0] - (second.playback_end_at + settings.loop.attention_s) <= FRAME + 1e-9
    assert asleep[0] < too_late.at


async def test_the_window_expires_if_nobody_speaks_after_the_word(settings: Settings):
    late = Speech(5.0, 0.8)
    run, asr, _, _ = await kiosk(settings, [Speech(0.5, 0.6), late], 7.0, [], wake_at=(1.2,))
    assert run.turns == [] and asr.calls == []
    assert [(state, why) for _, state, why in run.attention] == [
        ("asleep", "start"),
        ("awake", "okay_nabu"),
        ("asleep", "attention_expired"),
    ]
    assert run.attention[2][0] == pytest.approx(frame_end(1.2) + 3.0, abs=FRAME + 1e-9)


def long_first_answer(messages: list[ChatMessage]) -> str:
    if messages[-1].content == "tell me a story":
        return "Once upon a time. " * 12
    return quote_the_user(messages)


async def test_the_word_during_a_reply_interrupts_it_and_the_next_question_is_answered(settings: Settings):
    # The word alone is too short to barge in: the wake word is what stops the reply.
    settings.loop.barge_in_min_ms = 1500
    word, question = Speech(0.5, 0.6), Speech(1.4, 1.0)
    word_again, next_question = Speech(4.5, 0.6), Speech(5.6, 1.0)
    run, asr, llm, room = await kiosk(
        settings,
        [word, question, word_again, next_question],
        12.0,
        [Heard("tell me a story"), Heard("what time is it")],
        wake_at=(1.2, 5.255),
        chat={"reply": long_first_answer},
    )
    story, answer = run.turns
    assert story.outcome == "interrupted"
    assert story.barge_in_at == pytest.approx(frame_end(5.255))
    assert story.playback_start_at is not None and story.playback_start_at < word_again.at
    # Playback stopped on the frame the word was heard; nothing of the story after it.
    assert max(t for t in room.audible if t < next_question.at) < frame_end(5.255) + FRAME
    assert answer.outcome == "answered" and answer.transcript == "what time is it"
    assert len(asr.calls) == 2  # the word itself was never transcribed as a turn
    assert [line["by"] for line in run.events("wake")] == ["okay_nabu", "okay_nabu"]
    assert not run.events("wake")[1]["was_asleep"]


async def test_push_to_talk_opens_a_turn_without_the_word(settings: Settings):
    passer_by, question = Speech(0.2, 0.5), Speech(1.3, 1.0)
    run, asr, _, _ = await kiosk(settings, [passer_by, question], 5.0, [Heard("hello there")], pushes=(1.0,))
    (turn,) = run.turns
    assert turn.outcome == "answered" and turn.transcript == "hello there"
    assert len(asr.calls) == 1
    assert run.attention[1] == (pytest.approx(1.0), "awake", "push_to_talk")


async def test_the_chime_confirms_the_word_before_the_question(settings: Settings):
    settings.loop.wake_confirm = "chime"
    word, question = Speech(0.5, 0.6), Speech(1.6, 1.0)
    run, _, _, room = await kiosk(
        settings, [word, question], 6.0, [Heard("what time is it")], wake_at=(1.205,)
    )
    (turn,) = run.turns
    assert turn.outcome == "answered"
    chimed = [t for t in room.audible if t < question.at]
    assert chimed and chimed[0] == pytest.approx(frame_end(1.205))  # from the next frame on
    assert 0.15 < len(chimed) * FRAME < 0.3  # a short chime, then quiet until the reply
