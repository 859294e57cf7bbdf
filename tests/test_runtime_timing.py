"""The runtime's timing rules, to the frame, on a stepped clock (voiceloop/testing/stepped.py).

The real Conversation runs; only the clock, the device and the stages are stand-ins, so each
case takes milliseconds of wall time and every figure below is exact to the 10 ms frame.
The same rules with real parts (silero, speex, pocketsphinx, espeak) are the virtual room's
end-to-end tests (test_e2e_room.py, test_e2e_echo.py).

The room's speech ends on the 8 ms grid the endpointer places the end of speech on, so the
VAD's estimate of the end equals the true end; and inside a 10 ms frame, so that a window
timed from it ends inside a frame too, never on a boundary where rounding could decide.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from voiceloop.config import Settings
from voiceloop.engine.events import Stage
from voiceloop.engine.messages import CUT_OFF_NOTICE, SPOKEN_ERRORS
from voiceloop.llm.base import ChatMessage
from voiceloop.testing.faults import FaultyRecognizer, FaultyVoice
from voiceloop.testing.scripted import Heard, ScriptedChat, ScriptedRecognizer, ScriptedVoice, quote_the_user
from voiceloop.testing.soak import lost_turns
from voiceloop.testing.stepped import (
    ConvergingCanceller,
    Speech,
    SteppedRoom,
    SteppedRun,
    run_stepped,
    stepped_settings,
)

FRAME = 0.01
CHUNK = 0.032  # one VAD chunk
ASK = Speech(0.512, 1.0)  # the user's question: ends at 1.512 s, inside a frame
ASKED_END = 1.512


def long_answer_to_the_time(messages: list[ChatMessage]) -> str:
    """Three seconds of reply to the first question, time to talk over it; short otherwise."""
    if messages[-1].content == "what time is it":
        return "It is noon. " * 10
    return quote_the_user(messages)


def frame_end(t: float) -> float:
    """The end of the frame in which `t` falls: when the loop can first act on it."""
    return math.ceil(round(t / FRAME, 6)) * FRAME


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = stepped_settings(tmp_path)
    settings.vad.stop_ms = 200
    settings.vad.speculate_ms = 0
    settings.loop.barge_in_min_ms = 250
    # These time the stop itself, to the frame; holding the reply at the first sound of speech
    # over it (and resuming after a backchannel) is timed in test_runtime_turns.py.
    settings.turn.pause_on_speech = False
    return settings


async def converse(
    settings: Settings,
    speech: list[Speech],
    seconds: float,
    heard: list[Heard],
    chat: dict | None = None,
    voice: dict | None = None,
    aec: ConvergingCanceller | None = None,
    faulty_asr: dict[int, str] | None = None,
    faulty_voice: dict[int, str] | None = None,
) -> tuple[SteppedRun, SteppedRoom, ScriptedRecognizer, ScriptedChat, ScriptedVoice]:
    """A conversation in a stepped room; `faulty_*` wrap a stage in the fault injectors the
    soak uses (voiceloop/testing/faults.py), call numbers from 0."""
    room = SteppedRoom(speech, duration_s=seconds)
    asr = ScriptedRecognizer(*heard)
    llm = ScriptedChat(room.clock, **(chat or {}))
    tts = ScriptedVoice(room.clock, **(voice or {}))
    run = await run_stepped(
        settings,
        room,
        asr=FaultyRecognizer(asr, faulty_asr) if faulty_asr else asr,
        llm=llm,
        tts=FaultyVoice(tts, faulty_voice) if faulty_voice else tts,
        aec=aec,
    )
    assert lost_turns(run.log) == []  # every turn that began was logged as a turn
    return run, room, asr, llm, tts


def approx(value: float) -> object:
    return pytest.approx(value, abs=1e-6)


async def test_a_turn_is_timed_to_the_frame(settings: Settings):
    run, room, _, llm, tts = await converse(settings, [ASK], 4.0, [Heard("what time is it", 0.1)])
    (turn,) = run.turns
    assert turn.outcome == "answered" and turn.transcript == "what time is it"
    assert turn.speech_end_at == approx(ASKED_END) and turn.speech_end_is_true
    assert turn.vad_speech_end_at == approx(ASKED_END)  # the loud-block estimate, exact here
    assert turn.endpoint_at == approx(frame_end(ASKED_END + 0.2))  # the stop window, to the frame
    assert turn.asr_done_at == approx(turn.endpoint_at + 0.1)
    assert turn.reply_started_at == approx(turn.asr_done_at)
    assert turn.llm_first_token_at == approx(turn.reply_started_at + 0.05)
    assert turn.tts_first_audio_at == approx(turn.first_sentence_at + 0.02)
    # The speaker takes the audio at the next frame boundary: the loop adds nothing more.
    assert turn.playback_start_at == approx(frame_end(turn.tts_first_audio_at))
    assert room.audible[0] == approx(turn.playback_start_at)
    assert turn.overhead_ms(200) is not None and 0 <= turn.overhead_ms(200) < FRAME * 1000
    # Every word of the reply was played, then the turn ended, and the history has it.
    assert turn.heard_text == turn.reply_text == llm.reply(llm.requests[0])
    assert turn.playback_end_at == approx(room.audible[-1] + FRAME)
    assert run.history == [("what time is it", turn.reply_text)]
    assert [state for _, state in run.states] == [
        "user_speaking",
        "transcribing",
        "thinking",
        "speaking",
        "listening",
    ]


async def test_speculative_asr_finished_inside_the_stop_window_is_used(settings: Settings):
    plain, *_ = await converse(settings, [ASK], 4.0, [Heard("what time is it", 0.08)])
    settings.vad.speculate_ms = 100
    early, _, asr, llm, _ = await converse(settings, [ASK], 4.0, [Heard("what time is it", 0.08)])
    (turn,) = early.turns
    assert len(asr.calls) == 1 and turn.speculative  # one recognition, started in the pause
    (speech,) = early.events("speech")
    assert speech["t"] == approx(frame_end(ASKED_END + 0.1))  # ...100 ms into the stop window
    assert turn.asr_done_at == approx(speech["t"] + 0.08)  # done before the endpoint
    assert turn.endpoint_at == approx(frame_end(ASKED_END + 0.2))
    assert turn.timings_ms()["asr"] == 0.0
    assert turn.reply_started_at == approx(turn.endpoint_at)  # the reply starts at the endpoint
    assert llm.requests[0][-1].content == "what time is it"
    # The whole recognition time is saved from voice-to-voice latency, no more and no less.
    saved = plain.turns[0].timings_ms()["voice_to_voice"] - turn.timings_ms()["voice_to_voice"]
    assert saved == pytest.approx(80.0, abs=0.2)


async def test_speculative_asr_is_discarded_when_the_user_speaks_on(settings: Settings):
    settings.vad.speculate_ms = 100
    # A 150 ms pause: longer than the speculation point, shorter than the stop window.
    resumed = Speech(ASKED_END + 0.152, 0.52)
    run, _, asr, llm, _ = await converse(
        settings,
        [ASK, resumed],
        4.5,
        [Heard("what time", 0.3), Heard("what time is it in paris", 0.08)],
    )
    (dropped,) = run.events("speculation_dropped")
    assert dropped["turn"] == 1
    # Dropped as soon as the first VAD chunk of the resumed speech is judged.
    assert resumed.at < dropped["t"] <= frame_end(resumed.at + 2 * CHUNK)
    assert asr.calls[1] > asr.calls[0] + resumed.seconds  # the second one has the whole utterance
    (turn,) = run.turns
    assert turn.turn_id == 1 and turn.outcome == "answered"  # the turn number was reused
    assert turn.transcript == "what time is it in paris" and turn.speculative
    assert turn.speech_started_at == approx(ASK.at) and turn.speech_end_at == approx(resumed.end)
    assert turn.endpoint_at == approx(frame_end(resumed.end + 0.2))
    assert [r[-1].content for r in llm.requests] == ["what time is it in paris"]


async def test_barge_in_during_speaking_stops_playback_within_a_frame(settings: Settings):
    # The reply plays from about 1.9 s for 3 s; the user talks over it at 2.8 s.
    interruption = Speech(2.8, 0.6)
    run, room, _, llm, _ = await converse(
        settings,
        [ASK, interruption],
        6.0,
        [Heard("what time is it", 0.1), Heard("never mind", 0.1)],
        chat={"reply": long_answer_to_the_time},
    )
    interrupted, answered = run.turns
    assert interrupted.outcome == "interrupted" and answered.outcome == "answered"
    # A barge-in needs 250 ms of speech: it is decided at the end of the VAD chunk that
    # brings the voiced time there (chunks are 32 ms, the onset's counted whole).
    assert 0.25 - CHUNK <= interrupted.barge_in_at - interruption.at <= 0.25 + CHUNK
    # The very next frame the speaker plays is silent.
    stopped_at = interrupted.playback_end_at
    assert stopped_at == approx(frame_end(interrupted.barge_in_at))
    reply_frames = [at for at in room.audible if at < answered.playback_start_at]
    assert reply_frames[-1] == approx(stopped_at - FRAME)
    # Only what was played is remembered; the interruption is answered in its own turn.
    assert interrupted.heard_text and interrupted.reply_text.startswith(interrupted.heard_text)
    assert interrupted.heard_text != interrupted.reply_text
    assert run.history[0] == ("what time is it", interrupted.heard_text)
    assert answered.transcript == "never mind" and answered.speech_started_at < interruption.at
    assert [r[-1].content for r in llm.requests] == ["what time is it", "never mind"]


async def test_barge_in_during_thinking_merges_the_words_into_the_next_turn(settings: Settings):
    # The LLM takes 2 s to its first word; 400 ms after the endpoint the user goes on.
    more = Speech(ASKED_END + 0.6, 0.52)
    run, room, _, llm, _ = await converse(
        settings,
        [ASK, more],
        8.0,
        [Heard("what is the weather", 0.1), Heard("like today", 0.1)],
        chat={"first_token_s": 2.0},
    )
    merged, answered = run.turns
    assert merged.outcome == "merged" and merged.barge_in_at is not None
    assert 0.25 - CHUNK <= merged.barge_in_at - more.at <= 0.25 + CHUNK
    assert merged.playback_start_at is None  # nothing of the stale reply was ever played
    assert room.audible[0] >= answered.playback_start_at
    assert answered.user_text == "what is the weather like today"
    assert [r[-1].content for r in llm.requests] == ["what is the weather", "what is the weather like today"]
    assert run.history == [("what is the weather like today", answered.heard_text)]


async def test_a_cough_that_gives_no_transcript_goes_back_to_listening(settings: Settings):
    cough = Speech(2.8, 0.3)  # long enough to stop the reply
    question = Speech(5.2, 0.8)
    run, *_ = await converse(
        settings,
        [ASK, cough, question],
        9.0,
        [Heard("what time is it"), Heard(""), Heard("tell me a joke")],
        chat={"reply": long_answer_to_the_time},
    )
    assert [t.outcome for t in run.turns] == ["interrupted", "no_speech", "answered"]
    no_speech = run.turns[1]
    assert no_speech.asr_done_at == approx(no_speech.endpoint_at + 0.1)
    listening = [at for at, state in run.states if state == "listening"]
    assert approx(no_speech.asr_done_at) in listening  # straight back, no dead end
    assert run.turns[2].transcript == "tell me a joke" and run.errors == []


async def test_the_watchdog_returns_to_listening_when_a_cough_is_never_transcribed(settings: Settings):
    settings.loop.watchdog_s = 2.005  # ends inside a frame (see the module's docstring)
    settings.asr.timeout_s = 60.0  # the recogniser hangs well past the watchdog
    cough = Speech(2.8, 0.3)
    question = Speech(6.4, 0.8)
    run, *_ = await converse(
        settings,
        [ASK, cough, question],
        10.0,
        [Heard("what time is it"), Heard("", delay_s=3600.0), Heard("tell me a joke")],
        chat={"reply": long_answer_to_the_time},
    )
    assert [t.outcome for t in run.turns] == ["interrupted", "timeout", "answered"]
    hung = run.turns[1]
    (error,) = run.events("error")
    assert error["stage"] == "audio" and "no progress for 2 s in transcribing" in error["message"]
    # No progress since the endpoint: the watchdog fires 2 s later, to the frame.
    assert error["t"] == approx(frame_end(hung.endpoint_at + 2.005))
    assert (approx(error["t"]), "listening") in run.states
    assert hung.errors == ["audio: " + error["message"]]
    assert run.turns[2].transcript == "tell me a joke"


async def test_a_long_reply_playing_keeps_the_watchdog_quiet(settings: Settings):
    settings.loop.watchdog_s = 1.0
    run, room, *_ = await converse(
        settings, [ASK], 6.0, [Heard("what time is it")], chat={"reply": long_answer_to_the_time}
    )
    (turn,) = run.turns
    assert turn.outcome == "answered" and run.errors == []
    assert turn.playback_end_at - turn.playback_start_at > 2.5  # much longer than the watchdog


async def test_an_llm_that_never_answers_times_out_says_so_and_listens_again(settings: Settings):
    settings.llm.timeout_s = 3.0
    question = Speech(6.0, 0.8)
    run, _, _, llm, tts = await converse(
        settings,
        [ASK, question],
        10.0,
        [Heard("what time is it"), Heard("tell me a joke")],
        chat={"hang": frozenset({0})},
    )
    failed, answered = run.turns
    assert failed.outcome == "error" and failed.errors == ["llm: the reply took too long"]
    assert run.errors == ["llm: the reply took too long"]  # printed...
    assert tts.texts[0] == SPOKEN_ERRORS[Stage.LLM]  # ...and said, once the timeout passed
    (error,) = run.events("error")
    assert error["t"] == approx(failed.reply_started_at + 3.0)
    assert failed.playback_start_at is not None and failed.heard_text == ""  # nothing for history
    assert answered.outcome == "answered" and answered.transcript == "tell me a joke"
    assert run.history == [("tell me a joke", answered.heard_text)]
    assert len(llm.requests) == 2


async def test_a_recogniser_that_never_answers_times_out_and_says_so(settings: Settings):
    settings.asr.timeout_s = 2.0
    run, _, _, llm, tts = await converse(
        settings, [ASK, Speech(5.0, 0.8)], 8.0, [Heard("", delay_s=3600.0), Heard("tell me a joke")]
    )
    failed, answered = run.turns
    assert failed.outcome == "error" and failed.errors == ["asr: no transcript within 2 s"]
    (error,) = run.events("error")
    assert error["t"] == approx(failed.endpoint_at + 2.0)
    assert tts.texts[0] == SPOKEN_ERRORS[Stage.ASR]
    assert answered.outcome == "answered" and [r[-1].content for r in llm.requests] == ["tell me a joke"]


async def test_a_voice_that_fails_is_printed_not_spoken(settings: Settings):
    run, _, _, _, tts = await converse(
        settings,
        [ASK, Speech(4.0, 0.8)],
        8.0,
        [Heard("what time is it"), Heard("tell me a joke")],
        voice={"fail": frozenset({0})},
    )
    failed, answered = run.turns
    assert failed.outcome == "error" and failed.errors == ["tts: injected voice failure"]
    assert failed.playback_start_at is None  # a failed voice cannot say its own apology
    assert SPOKEN_ERRORS[Stage.TTS] not in tts.texts and CUT_OFF_NOTICE not in tts.texts
    assert answered.outcome == "answered"


async def test_an_llm_cut_after_some_words_says_the_answer_was_cut_off(settings: Settings):
    settings.llm.timeout_s = 0.5  # the reply streams for longer than this
    run, _, _, _, tts = await converse(
        settings,
        [ASK],
        6.0,
        [Heard("what time is it")],
        chat={"reply": lambda messages: "It is noon. " * 40, "token_s": 0.05},
    )
    (turn,) = run.turns
    assert turn.outcome == "error" and turn.errors == ["llm: the reply took too long"]
    assert tts.texts[-1] == CUT_OFF_NOTICE and turn.heard_text.startswith("It is noon.")


async def test_until_the_canceller_converges_a_barge_in_needs_the_longer_minimum(settings: Settings):
    settings.loop.barge_in_warmup_min_ms = 1000
    early, late = Speech(2.0, 0.5), Speech(3.6, 0.5)  # over the reply, before and after convergence
    run, room, *_ = await converse(
        settings,
        [ASK, early, late],
        7.0,
        [Heard("what time is it"), Heard("never mind")],
        chat={"reply": long_answer_to_the_time},
        aec=ConvergingCanceller(warmup_s=1.0),
    )
    (converged,) = run.events("echo_canceller_converged")
    first = run.turns[0]
    # A second of playback heard by the canceller, to the frame.
    assert converged["after_s"] == 1.0
    assert converged["t"] == approx(first.playback_start_at + 1.0 - FRAME)
    # 500 ms of speech before it did not stop the reply; the same after it did.
    assert first.outcome == "interrupted"
    assert late.at < first.barge_in_at <= late.at + 0.25 + CHUNK
    assert len(run.turns) == 2 and run.turns[1].transcript == "never mind"


async def test_a_greeting_is_turn_zero_and_the_first_question_is_turn_one(settings: Settings):
    settings.loop.greeting = "Hello there."
    run, room, _, _, tts = await converse(settings, [Speech(1.52, 0.8)], 5.0, [Heard("what time is it")])
    assert tts.texts[0] == "Hello there." and room.audible[0] == approx(0.02)
    (greeting,) = run.events("greeting")
    # First audio at 20 ms, and the frame that starts then plays it.
    assert greeting["played_from"] == approx(0.02)
    (turn,) = run.turns
    assert turn.turn_id == 1 and turn.outcome == "answered"
    assert run.history == [("what time is it", turn.heard_text)]  # the greeting is not history


# Moved from test_soak.py, where each case took 10-20 s of real time: the recovery after a
# failed stage is the engine's rule, and the fault injectors are the soak's own.
THEN = Speech(7.0, 0.8)  # the next question, after any fault has run its course


@pytest.mark.parametrize("mode", ["error", "stall", "cut"])
async def test_a_voice_fault_ends_the_turn_and_the_next_one_speaks(settings: Settings, mode: str):
    settings.tts.timeout_s = 4.0  # as in the soak: a stalled voice costs this much
    run, *_ = await converse(
        settings,
        [ASK, THEN],
        10.0,
        [Heard("what time is it"), Heard("tell me a joke")],
        faulty_voice={0: mode},  # the first reply's first piece
    )
    turns = run.events("turn")
    assert turns[0]["outcome"] == "error" and turns[0]["errors"]
    assert turns[-1]["outcome"] == "answered" and turns[-1]["heard_text"]


@pytest.mark.parametrize(
    ("mode", "outcome"), [("error", "error"), ("empty", "no_speech"), ("other_script", "answered")]
)
async def test_a_recogniser_fault_takes_its_recovery_path(settings: Settings, mode: str, outcome: str):
    # An injected error never reaches the scripted recogniser: its first answer is then the
    # second utterance's.
    heard = [Heard("what time is it")] if mode != "error" else []
    answers = [*heard, Heard("tell me a joke")]
    run, *_ = await converse(settings, [ASK, THEN], 10.0, answers, faulty_asr={0: mode})
    turns = run.events("turn")
    assert turns[0]["outcome"] == outcome
    if mode == "other_script":
        assert turns[0]["transcript"] == FaultyRecognizer.OTHER_SCRIPT  # answered as heard, in that language
    assert turns[-1]["outcome"] == "answered" and turns[-1]["transcript"] == "tell me a joke"
