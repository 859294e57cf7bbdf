"""Echo and barge-in in the virtual room: the assistant never answers its own voice, stops
when talked over, and a cough leaves no dead end. Real time, real parts."""

from __future__ import annotations

import pytest

from tests.conftest import script
from voiceloop.audio.rooms import SCENARIOS
from voiceloop.demo import run_demo
from voiceloop.session.log import read_session

pytestmark = pytest.mark.slow

SIX_TURNS = [
    {"say": "hello there", "pause_ms": 400},
    {"say": "what time is it"},
    {"say": "tell me a joke"},
    {"say": "turn on the lights"},
    {"say": "play some music"},
    {"say": "thank you"},
]


def in_living_room(settings, aec: str):
    settings.audio.room = SCENARIOS["living-room"]  # echo +3 dB over the user, 60 ms, RT60 0.45
    settings.aec.name = aec
    return settings


async def test_with_the_speex_canceller_a_loud_echo_is_never_transcribed(room_settings):
    result = await run_demo(in_living_room(room_settings, "speex"), script(*SIX_TURNS), say=lambda _: None)
    report = result.report
    assert report["self_transcriptions"] == 0, report["self_transcribed_text"]
    assert [t["transcript"] for t in report["turns"]] == [t["say"] for t in SIX_TURNS]
    assert report["barge_ins"] == 0 and report["errors"] == []


@pytest.mark.parametrize("aec", ["speex", "none"])
async def test_open_vocabulary_asr_transcribes_the_echo_only_when_nothing_cancels_it(room_settings, aec: str):
    # Without a phrase grammar pocketsphinx writes down whatever it hears, so any echo that
    # reaches it becomes a self-transcription: the same test fails without a canceller.
    room_settings.asr.pocketsphinx.phrases = []
    user = script(*SIX_TURNS[:3]).model_copy(update={"max_session_s": 45.0})
    result = await run_demo(in_living_room(room_settings, aec), user, say=lambda _: None)
    report = result.report
    if aec == "speex":
        assert report["self_transcriptions"] == 0, report["self_transcribed_text"]
        assert all(entry["transcript"] for entry in report["turns"])  # the user is still heard
    else:
        assert report["self_transcriptions"] >= 1, report


async def test_half_duplex_needs_no_canceller_but_cannot_be_interrupted(room_settings):
    room_settings.loop.half_duplex = True
    user = script(
        {"say": "tell me a joke", "pause_ms": 400},
        {"say": "never mind", "interrupt_after_ms": 800, "reply_timeout_ms": 8000},
    )
    result = await run_demo(in_living_room(room_settings, "none"), user, say=lambda _: None)
    assert result.report["self_transcriptions"] == 0
    assert result.report["barge_ins"] == 0  # talking over the reply does nothing: the cost of the mode
    assert result.report["turns"][0]["outcome"] == "answered"


async def test_an_interruption_is_heard_from_its_first_syllable_and_history_keeps_only_what_played(
    room_settings, llm_server
):
    user = script(
        {"say": "what is the weather like today", "pause_ms": 400},
        {"say": "turn off the lights", "interrupt_after_ms": 2500},
    )
    result = await run_demo(in_living_room(room_settings, "speex"), user, say=lambda _: None)
    report = result.report
    assert report["barge_in"]["detected"] == 1
    assert report["barge_in"]["reaction_ms"][0] < 600
    by_text = {turn.transcript: turn for turn in result.turns}
    interrupted, interruption = by_text["what is the weather like today"], by_text["turn off the lights"]
    assert interrupted.outcome == "interrupted"
    assert interruption.transcript == "turn off the lights"

    _, line_start, _ = result.user_lines[1]
    # The utterance handed to ASR starts before the first syllable (pre-roll), not after the
    # 250 ms it took to be sure this was a barge-in.
    assert interruption.speech_started_at - line_start < 0.1
    assert interruption.audio_s >= (interruption.vad_speech_end_at - line_start) + 0.2

    assert llm_server.last_request.messages[2] == {"role": "assistant", "content": interrupted.heard_text}
    assert interrupted.heard_text and interrupted.heard_text != interrupted.reply_text


async def test_a_cough_during_a_reply_does_not_leave_the_assistant_silent(room_settings):
    user = script(
        {"say": "tell me a joke", "pause_ms": 400},
        {"cough_ms": 200, "interrupt_after_ms": 1500},
        {"say": "thank you", "pause_ms": 800, "reply_timeout_ms": 9000},
    )
    result = await run_demo(in_living_room(room_settings, "speex"), user, say=lambda _: None)
    turns = [line for line in read_session(result.session_dir / "session.jsonl") if line["event"] == "turn"]
    assert turns[-1]["transcript"] == "thank you"
    assert turns[-1]["outcome"] == "answered" and turns[-1]["heard_text"].startswith("Sure thing")
    assert result.report["self_transcriptions"] == 0


@pytest.mark.parametrize(
    ("echo_coherence", "unsure", "with_mic", "mic_alone", "hear_mic"),
    [
        (0.3, 0.2, 0.25, 0.6, 0.5),
        (0.3, 0.0, 0.0, 0.0, 0.0),
        (0.0, 0.2, 0.0, 0.0, 0.0),
        (0.0, 0.0, 0.0, 0.0, 0.5),
        (0.0, 0.0, 0.0, 0.6, 0.0),
        (0.0, 0.0, 0.0, 0.0, 0.0),
    ],
)
async def test_speech_over_a_reply_is_measured_only_where_the_rule_asks(
    room_settings, echo_coherence, unsure, with_mic, mic_alone, hear_mic
):
    """How much of held speech the reply explains (`turn.echo_coherence`, and
    `turn.unsure_coherence` for speech VAD was not sure of; aec/coherence.py) is measured once
    per speech over a reply, 1-7 ms, and how much of the mic it explains only where
    `turn.echo_coherence_with_mic`, `turn.mic_coherence_alone` or `turn.hear_mic_copy` asks
    (one Welch pass more); with every rule off nothing is, and the user is heard all the same."""
    room_settings.turn.echo_coherence = echo_coherence
    room_settings.turn.unsure_coherence = unsure
    room_settings.turn.echo_coherence_with_mic = with_mic
    room_settings.turn.mic_coherence_alone = mic_alone
    room_settings.turn.hear_mic_copy = hear_mic
    user = script(
        {"say": "what is the weather like today", "pause_ms": 400},
        {"say": "turn off the lights", "interrupt_after_ms": 2500},
    )
    result = await run_demo(in_living_room(room_settings, "speex"), user, say=lambda _: None)
    assert result.report["barge_in"]["detected"] == 1
    log = read_session(result.session_dir / "session.jsonl")
    measured = [(line["coherence"], line["mic"]) for line in log if line["event"] == "echo_coherence"]
    if echo_coherence or unsure or mic_alone or hear_mic:
        assert measured and min(measured)[0] < 0.25  # the user's words: not the reply's echo
        mics = [mic for _, mic in measured]
        if with_mic or mic_alone or hear_mic:
            assert all(isinstance(mic, float) for mic in mics)
        else:
            assert mics == [None] * len(mics)
    else:
        assert measured == []
