"""Turn-taking on natural speech, on the stepped clock (voiceloop/testing/stepped.py): a pause is
not the end when the turn detector says so, the silence ceiling ends a turn anyway, a
continuation merges into one user message, a backchannel over a reply pauses and resumes it,
real words stop it, and a missing detector model leaves the silence window in charge.

The detector is scripted (`ScriptedTurnDetector`: a verdict per VAD stop, after the time it
is given), except in the last test, where the real Smart Turn model judges espeak speech
through the same wiring.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from voiceloop.build.turn import build_turn_detector
from voiceloop.config import Settings
from voiceloop.llm.base import ChatMessage
from voiceloop.testing.scripted import (
    Heard,
    Judged,
    ScriptedChat,
    ScriptedRecognizer,
    ScriptedTurnDetector,
    ScriptedVoice,
    quote_the_user,
)
from voiceloop.testing.soak import lost_turns
from voiceloop.testing.stepped import (
    SAMPLE_RATE,
    Speech,
    SteppedRoom,
    SteppedRun,
    run_stepped,
    stepped_settings,
)
from voiceloop.turn.base import TurnDetector

FRAME = 0.01
CHUNK = 0.032
ASK = Speech(0.512, 1.0)  # ends at 1.512 s, inside a frame (see test_runtime_timing.py)
ASKED_END = 1.512
INCOMPLETE, COMPLETE = Judged(0.1), Judged(0.9)


def frame_end(t: float) -> float:
    return math.ceil(round(t / FRAME, 6)) * FRAME


def approx(value: float) -> object:
    return pytest.approx(value, abs=1e-6)


def long_answer(messages: list[ChatMessage]) -> str:
    """Three seconds of reply to the question: time to talk over it."""
    if messages[-1].content == "what time is it":
        return "It is noon. " * 10
    return quote_the_user(messages)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = stepped_settings(tmp_path)
    settings.vad.stop_ms = 200
    settings.vad.speculate_ms = 100
    settings.loop.barge_in_min_ms = 250
    settings.turn.ceiling_ms = 2000
    settings.turn.merge_window_ms = 700
    settings.turn.pause_on_speech = True
    return settings


async def converse(
    settings: Settings,
    speech: list[Speech],
    seconds: float,
    heard: list[Heard],
    judged: list[Judged] | None,
    chat: dict | None = None,
    room: SteppedRoom | None = None,
    turn: TurnDetector | None = None,
) -> tuple[SteppedRun, SteppedRoom, ScriptedRecognizer, ScriptedChat, ScriptedTurnDetector | None]:
    """`judged` None = no detector at all (the silence window, as before [turn] existed)."""
    room = room or SteppedRoom(speech, duration_s=seconds)
    asr = ScriptedRecognizer(*heard)
    llm = ScriptedChat(room.clock, **(chat or {}))
    detector = ScriptedTurnDetector(*judged) if judged is not None else None
    run = await run_stepped(
        settings,
        room,
        asr=asr,
        llm=llm,
        tts=ScriptedVoice(room.clock),
        turn=turn if turn is not None else detector,
    )
    assert lost_turns(run.log) == []
    return run, room, asr, llm, detector


async def test_a_paused_utterance_judged_incomplete_at_the_pause_is_one_turn(settings: Settings):
    rest = Speech(ASKED_END + 0.6, 0.8)  # "set a timer for" … 600 ms … "five minutes"
    run, room, asr, llm, detector = await converse(
        settings,
        [ASK, rest],
        6.0,
        [Heard("set a timer for", 0.08), Heard("set a timer for five minutes", 0.08)],
        [INCOMPLETE, COMPLETE],
    )
    (turn,) = run.turns
    assert turn.outcome == "answered" and turn.transcript == "set a timer for five minutes"
    assert turn.speech_started_at == approx(ASK.at) and turn.speech_end_at == approx(rest.end)
    assert turn.endpoint_by == "detector"
    assert [v["complete"] for v in turn.verdicts] == [False, True]
    assert turn.turn_probability == pytest.approx(0.9) and turn.turn_decision_ms == pytest.approx(30.0)
    # Each stop was judged on the whole utterance so far; the second recognition heard both parts.
    assert detector is not None and detector.calls[1] > ASK.seconds + rest.seconds
    assert asr.calls[1] > ASK.seconds + rest.seconds
    # Nothing was said back while the user was mid-utterance; one request, one user message.
    assert room.audible and room.audible[0] > rest.end
    assert [r[-1].content for r in llm.requests] == ["set a timer for five minutes"]
    assert [user for user, _ in run.history] == ["set a timer for five minutes"]
    (dropped,) = run.events("speculation_dropped")  # the pause's transcription, talked through
    assert dropped["turn"] == 1


@pytest.mark.parametrize("detector_ms", [30.0, 150.0])
async def test_a_complete_verdict_costs_only_the_detector_s_time_beyond_the_stop_window(
    settings: Settings, detector_ms: float
):
    heard = [Heard("what time is it", 0.08)]
    plain, *_ = await converse(settings, [ASK], 4.0, heard, None)
    judged, _, _, _, detector = await converse(settings, [ASK], 4.0, heard, [Judged(0.9, detector_ms)])
    before, after = plain.turns[0], judged.turns[0]
    assert before.endpoint_by == "silence" and after.endpoint_by == "detector"
    assert before.endpoint_at == approx(frame_end(ASKED_END + 0.2))
    # Asked once, at the pause (100 ms into the 200 ms window), on the audio padded with the
    # window's other 100 ms: a verdict quicker than that is there by the stop and costs nothing;
    # a slower one costs only what it takes beyond it. The early transcript was there already.
    assert detector is not None and len(detector.calls) == 1
    (asked,) = judged.events("speech")
    assert asked["t"] == approx(frame_end(ASKED_END + 0.1))
    ready = frame_end(asked["t"] + detector_ms / 1000)
    assert after.endpoint_at == approx(max(before.endpoint_at, ready))
    added = after.timings_ms()["voice_to_voice"] - before.timings_ms()["voice_to_voice"]
    assert added == pytest.approx(max(0.0, (ready - before.endpoint_at) * 1000), abs=0.2)


async def test_the_silence_ceiling_ends_a_turn_whose_verdicts_stay_incomplete(settings: Settings):
    settings.turn.ceiling_ms = 1000
    settings.turn.reask_ms = 0
    run, _, _, llm, detector = await converse(
        settings, [ASK], 5.0, [Heard("I would like to", 0.08)], [INCOMPLETE] * 5
    )
    (turn,) = run.turns
    assert turn.endpoint_by == "ceiling" and turn.outcome == "answered"
    assert turn.endpoint_at == approx(frame_end(ASKED_END + 1.0))  # a second of silence, to the frame
    assert detector is not None and len(detector.calls) == 1  # one stop, one question
    assert [r[-1].content for r in llm.requests] == ["I would like to"]


async def test_more_silence_asks_again_and_a_later_complete_verdict_ends_the_turn(settings: Settings):
    settings.turn.reask_ms = 500
    run, _, _, _, detector = await converse(
        settings, [ASK], 5.0, [Heard("hello there", 0.08)], [INCOMPLETE, Judged(0.8, 30.0)]
    )
    (turn,) = run.turns
    assert turn.endpoint_by == "detector" and [v["complete"] for v in turn.verdicts] == [False, True]
    stop = frame_end(ASKED_END + 0.2)
    # Asked again 500 ms after the stop, on the held audio with that silence added (the first
    # question heard it as at the stop).
    assert detector is not None and detector.calls[1] == pytest.approx(detector.calls[0] + 0.5, abs=0.011)
    assert turn.endpoint_at == approx(frame_end(stop + 0.5 + 0.03))


async def test_a_complete_verdict_on_words_ending_in_a_preposition_keeps_listening(settings: Settings):
    settings.turn.ceiling_ms = 1000
    settings.turn.reask_ms = 0
    run, *_ = await converse(settings, [ASK], 5.0, [Heard("book a table for", 0.08)], [COMPLETE])
    (turn,) = run.turns
    assert turn.endpoint_by == "ceiling"  # the words overruled the audio model
    assert turn.endpoint_at == approx(frame_end(ASKED_END + 1.0))
    settings.turn.use_transcript = False
    run, *_ = await converse(settings, [ASK], 5.0, [Heard("book a table for", 0.08)], [COMPLETE])
    assert run.turns[0].endpoint_by == "detector"


async def test_a_continuation_after_the_reply_began_merges_into_one_user_message(settings: Settings):
    # The reply plays from about 1.85 s; the user goes on at 2.0 s, inside the merge window.
    more = Speech(2.0, 0.6)
    run, room, _, llm, _ = await converse(
        settings,
        [ASK, more],
        7.0,
        [Heard("what time is it", 0.08), Heard("in paris", 0.08)],
        [COMPLETE, COMPLETE],
        chat={"reply": long_answer},
    )
    merged, answered = run.turns
    assert merged.playback_start_at is not None and merged.playback_start_at < more.at  # it had begun
    assert merged.outcome == "merged" and merged.playback_pauses == 1
    # Held at the first VAD chunks of the new speech, then stopped for good.
    (paused,) = [e for e in run.events("playback_paused") if e["turn"] == merged.turn_id]
    assert more.at < paused["t"] <= more.at + 3 * CHUNK
    assert answered.user_text == "what time is it in paris" and answered.merged_from == [merged.turn_id]
    assert [r[-1].content for r in llm.requests][-1] == "what time is it in paris"
    assert run.history == [("what time is it in paris", answered.heard_text)]  # one user message
    (merge,) = run.events("turns_merged")
    assert merge["merged"] == [merged.turn_id]


async def test_mhm_during_a_reply_pauses_it_then_resumes_it_intact(settings: Settings):
    mhm = Speech(2.8, 0.152)  # shorter than a barge-in; ends on the 8 ms grid, inside a frame
    run, room, asr, llm, _ = await converse(
        settings,
        [ASK, mhm],
        8.0,
        [Heard("what time is it", 0.08), Heard("mhm", 0.08)],
        [COMPLETE],
        chat={"reply": long_answer},
    )
    (turn,) = run.turns
    assert turn.outcome == "answered" and turn.barge_in_at is None
    assert turn.playback_pauses == 1 and turn.playback_resumes == 1
    (paused,), (resumed,) = run.events("playback_paused"), run.events("playback_resumed")
    assert mhm.at < paused["t"] <= mhm.at + 3 * CHUNK  # held within ~100 ms of the first sound
    # Played on once the stop window closed and its words were known to be only "mhm".
    assert resumed["t"] == approx(frame_end(mhm.end + 0.2) + 0.08) and len(asr.calls) == 2
    # Silent while held, then every word: the reply and the history are whole.
    assert not [at for at in room.audible if paused["t"] <= at < resumed["t"] - FRAME]
    assert turn.heard_text == turn.reply_text == long_answer(llm.requests[0]).strip()
    assert run.history == [("what time is it", turn.reply_text)]


async def test_a_click_too_short_for_words_resumes_a_held_reply_without_asking_the_recogniser(
    settings: Settings,
):
    click = Speech(2.8, 0.048)  # under [turn] pause_words_min_ms; two VAD chunks, so it holds the reply
    run, room, asr, llm, _ = await converse(
        settings, [ASK, click], 8.0, [Heard("what time is it", 0.08)], [COMPLETE], chat={"reply": long_answer}
    )
    (turn,) = run.turns
    assert turn.outcome == "answered" and turn.playback_pauses == turn.playback_resumes == 1
    (resumed,) = run.events("playback_resumed")
    assert resumed["t"] == approx(frame_end(click.end + 0.2)) and len(asr.calls) == 1
    assert resumed["why"].startswith("too short for words")  # the session log says why
    assert turn.heard_text == turn.reply_text == long_answer(llm.requests[0]).strip()


async def test_speech_over_a_playing_reply_vad_was_never_sure_of_resumes_it_as_our_echo(settings: Settings):
    # The level VAD calls the room's tone 0.95: under this bar, as silero is under 0.93 for
    # the residual echo that pocketsphinx heard as "thank you" in bench_bargein.
    settings.turn.words_confidence = 0.96
    over = Speech(2.8, 0.504)  # long enough for words, short of a barge-in without them
    run, room, asr, llm, _ = await converse(
        settings, [ASK, over], 9.0, [Heard("what time is it", 0.08)], [COMPLETE], chat={"reply": long_answer}
    )
    (turn,) = run.turns
    assert turn.outcome == "answered" and turn.barge_in_at is None
    assert turn.playback_pauses == turn.playback_resumes == 1 and len(asr.calls) == 1  # never asked
    (resumed,) = run.events("playback_resumed")
    assert resumed["t"] == approx(frame_end(over.end + 0.2))  # at the stop window, not after words
    assert resumed["why"].startswith("VAD never sure")
    assert turn.heard_text == turn.reply_text == long_answer(llm.requests[0]).strip()


async def test_a_stop_shorter_than_a_barge_in_plays_on_unheard_where_only_barge_ins_are_transcribed(
    settings: Settings,
):
    # The rule before [turn] pause_words_min_ms: the minimum at a barge-in's. The same "stop"
    # is heard and stops the reply with the default (test_stop_during_a_reply_..., 0.2 s).
    settings.turn.pause_words_min_ms = settings.loop.barge_in_min_ms
    stop = Speech(2.8, 0.2)
    run, _, asr, _, _ = await converse(
        settings, [ASK, stop], 7.0, [Heard("what time is it", 0.08)], [COMPLETE], chat={"reply": long_answer}
    )
    (turn,) = run.turns
    assert turn.outcome == "answered" and turn.playback_resumes == 1 and len(asr.calls) == 1


@pytest.mark.parametrize("words", ["yeah okay", ""])
async def test_longer_speech_over_a_reply_that_is_only_backchannel_words_or_none_resumes_it(
    settings: Settings, words: str
):
    over = Speech(2.8, 0.504)  # longer than a barge-in: its words decide
    run, room, asr, llm, _ = await converse(
        settings,
        [ASK, over],
        9.0,
        [Heard("what time is it", 0.08), Heard(words, 0.08)],
        [COMPLETE],
        chat={"reply": long_answer},
    )
    (turn,) = run.turns
    assert turn.outcome == "answered" and turn.barge_in_at is None and len(asr.calls) == 2
    (resumed,) = run.events("playback_resumed")
    assert resumed["t"] == approx(frame_end(over.end + 0.2) + 0.08)  # once the words were known
    assert turn.heard_text == turn.reply_text == long_answer(llm.requests[0]).strip()
    assert run.history == [("what time is it", turn.reply_text)] and len(llm.requests) == 1
    (dropped,) = run.events("speculation_dropped")  # the words over the reply were no turn
    assert dropped["turn"] == 2


CLOCK_ANSWER = "Stop the clock. " + "It is noon. " * 9


def clock_answer(messages: list[ChatMessage]) -> str:
    """A first sentence unlike the rest: three seconds of reply that said it only at its start."""
    return CLOCK_ANSWER if messages[-1].content == "what time is it" else quote_the_user(messages)


async def heard_over_the_clock(settings: Settings, words: str) -> SteppedRun:
    """Speech 3.2 s in, that the recogniser hears as `words`, over a reply that sounded "Stop
    the clock." from 1.82 s, then "It is noon." over and over."""
    run, *_ = await converse(
        settings,
        [ASK, Speech(3.2, 0.504)],
        9.0,
        [Heard("what time is it", 0.08), Heard(words, 0.08)],
        [COMPLETE, COMPLETE],
        chat={"reply": clock_answer},
    )
    return run


@pytest.mark.parametrize("echo_words", [True, False])
async def test_held_speech_that_says_what_the_reply_is_sounding_is_its_echo(
    settings: Settings, echo_words: bool
):
    """The recogniser wrote down the reply's own words from what the canceller left (after a
    walk, say): the reply plays on, whole. Without the rule it stops itself, and nobody looks up
    or logs the words sounded."""
    settings.turn.echo_words = echo_words
    run = await heard_over_the_clock(settings, "it is noon")
    if not echo_words:
        assert [turn.outcome for turn in run.turns] == ["interrupted", "answered"]
        assert run.events("reply_words") == []
        return
    (turn,) = run.turns
    assert turn.outcome == "answered" and turn.barge_in_at is None
    assert turn.playback_pauses == turn.playback_resumes == 1
    assert turn.heard_text == turn.reply_text == CLOCK_ANSWER.strip()
    (sounded,) = run.events("reply_words")
    assert "It is noon." in sounded["words"] and "Stop" not in sounded["words"]


async def test_words_the_reply_said_seconds_before_are_the_users_and_stop_it(settings: Settings):
    """ "Stop the clock" sounded as the reply began; said back a second later, it is the user's."""
    run = await heard_over_the_clock(settings, "stop the clock")
    interrupted, answered = run.turns
    assert interrupted.outcome == "interrupted" and answered.user_text == "stop the clock"
    assert interrupted.playback_start_at is not None and 3.2 - interrupted.playback_start_at >= 1.0


async def test_a_long_interruption_stops_a_held_reply_without_waiting_for_its_words(settings: Settings):
    settings.turn.backchannel_max_ms = 600
    over = Speech(2.8, 1.2)
    run, *_ = await converse(
        settings,
        [ASK, over],
        8.0,
        [Heard("what time is it", 0.08), Heard("no I meant the time in paris", 0.08)],
        [COMPLETE, COMPLETE],
        chat={"reply": long_answer},
    )
    interrupted, answered = run.turns
    assert interrupted.outcome == "interrupted"
    assert 0.6 - CHUNK <= interrupted.barge_in_at - over.at <= 0.6 + CHUNK
    assert answered.user_text == "no I meant the time in paris"


# 0.2 s: what VAD hears of "stop" over a loud echo (bench_bargein's mandarin-10db-drift80),
# shorter than a barge-in; its words decide all the same.
@pytest.mark.parametrize("seconds", [0.504, 0.2])
async def test_stop_during_a_reply_pauses_it_at_once_and_stops_it(settings: Settings, seconds: float):
    stop = Speech(2.8, seconds)
    run, room, _, llm, _ = await converse(
        settings,
        [ASK, stop],
        7.0,
        [Heard("what time is it", 0.08), Heard("stop", 0.08)],
        [COMPLETE, COMPLETE],
        chat={"reply": long_answer},
    )
    interrupted, answered = run.turns
    assert interrupted.outcome == "interrupted" and interrupted.playback_pauses == 1
    assert interrupted.playback_resumes == 0
    (paused,) = [e for e in run.events("playback_paused") if e["turn"] == interrupted.turn_id]
    assert stop.at < paused["t"] <= stop.at + 3 * CHUNK
    # Held until its words were known (the stop window, then 80 ms of recognition): then stopped.
    assert interrupted.barge_in_at == approx(frame_end(stop.end + 0.2) + 0.08)
    assert answered.user_text == "stop" and answered.speech_started_at < stop.at
    # Nothing played from the pause on; history keeps only what was heard before it.
    reply_frames = [at for at in room.audible if at < answered.playback_start_at]
    assert reply_frames[-1] < paused["t"]
    assert interrupted.heard_text and interrupted.heard_text != interrupted.reply_text
    assert run.history[0] == ("what time is it", interrupted.heard_text)
    assert answered.transcript == "stop"


async def test_a_missing_model_is_one_clear_line_and_the_loop_runs_on_the_silence_window(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("VOICELOOP_MODELS_DIR", str(tmp_path / "no-models-here"))
    settings.turn.name = "smart-turn"
    said: list[str] = []
    detector = build_turn_detector(settings, say=said.append)
    assert detector is None
    (line,) = said
    assert "\n" not in line and "voiceloop models download smart-turn" in line and "silence window" in line
    run, *_ = await converse(settings, [ASK], 4.0, [Heard("what time is it", 0.08)], None)
    (turn,) = run.turns
    assert turn.outcome == "answered" and turn.endpoint_by == "silence"
    assert turn.endpoint_at == approx(frame_end(ASKED_END + 0.2))


# -- the real model, through the same wiring ------------------------------------------------------


class SpokenRoom(SteppedRoom):
    """The stepped room with espeak's voice in place of the tone (LevelVad calls it speech)."""

    def __init__(self, said: str, at: float, duration_s: float) -> None:
        from voiceloop.testing.clips import spoken_clip

        self._clip = spoken_clip(said, lead_s=0.0, tail_s=0.0)
        self._clip_at = at
        super().__init__([Speech(at, len(self._clip) / SAMPLE_RATE)], duration_s)

    def _mic_track(self) -> np.ndarray:
        track = super()._mic_track()
        start = round(self._clip_at * SAMPLE_RATE)
        track[start : start + self._clip.size] = self._clip
        return track


@pytest.fixture(scope="module")
def smart_turn() -> TurnDetector:
    from voiceloop.turn import models
    from voiceloop.turn.smart_turn import create

    if not models.is_present():
        pytest.skip("the Smart Turn model is not cached (`voiceloop models download smart-turn`)")
    detector = create()
    detector.warm_up()
    return detector


@pytest.mark.parametrize(
    ("said", "ended_by"), [("turn off the kitchen lights.", "detector"), ("I can't seem to, um", "ceiling")]
)
async def test_the_real_detector_ends_a_finished_sentence_and_waits_on_a_hesitation(
    settings: Settings, smart_turn: TurnDetector, said: str, ended_by: str
):
    settings.turn.use_transcript = False  # the audio model alone
    settings.turn.ceiling_ms = 1500
    room = SpokenRoom(said, 0.5, 6.0)
    run, *_ = await converse(settings, [], 6.0, [Heard("", 0.05)] * 4, None, room=room, turn=smart_turn)
    verdicts = run.events("turn_verdict")
    assert verdicts, "the detector was never asked"
    turns = run.turns
    assert len(turns) == 1 and turns[0].endpoint_by == ended_by, [v["p"] for v in verdicts]


# -- the words and the detector together ------------------------------------------------------------


async def test_with_the_words_alone_a_pause_after_a_preposition_is_one_turn(settings: Settings):
    settings.turn.name = "words"
    rest = Speech(ASKED_END + 0.7, 0.8)  # "play some music by" … 700 ms … "the beatles"
    run, room, _, llm, _ = await converse(
        settings,
        [ASK, rest],
        6.0,
        [Heard("play some music by", 0.08), Heard("play some music by the beatles", 0.08)],
        None,
    )
    (turn,) = run.turns
    assert turn.endpoint_by == "words" and turn.transcript == "play some music by the beatles"
    assert turn.endpoint_at == approx(frame_end(rest.end + 0.2))  # the stop window, nothing more
    assert room.audible and room.audible[0] > rest.end
    assert [r[-1].content for r in llm.requests] == ["play some music by the beatles"]


async def test_a_late_detector_costs_no_more_than_its_budget_on_words_that_sound_complete(settings: Settings):
    settings.turn.detector_wait_ms = 80
    run, *_ = await converse(settings, [ASK], 4.0, [Heard("what time is it", 0.08)], [Judged(0.9, 400.0)])
    (turn,) = run.turns
    stop = frame_end(ASKED_END + 0.2)
    assert turn.endpoint_by == "words" and turn.endpoint_at == approx(frame_end(stop + 0.08))


async def test_a_doubted_complete_sounding_turn_ends_after_the_doubt_window(settings: Settings):
    settings.turn.doubt_ms = 600
    settings.turn.reask_ms = 0
    run, *_ = await converse(settings, [ASK], 4.0, [Heard("thanks that's all", 0.08)], [INCOMPLETE])
    (turn,) = run.turns
    stop = frame_end(ASKED_END + 0.2)
    assert turn.endpoint_by == "doubt" and turn.endpoint_at == approx(frame_end(stop + 0.6))
