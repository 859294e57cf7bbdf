"""Kiosk mode in the virtual room, in real time, with real parts: espeak voices the user (the
wake word included), the assistant's voice echoes back into the mic, speex cancels it, the
microWakeWord model (pymicro-wakeword) hears the cleaned mic beside silero-vad, pocketsphinx
transcribes, the real `openai` client streams from a local server, and espeak answers.

The gate's rules to the frame are in test_wake_gate.py (stepped clock); here the same rules
hold with the real model and real audio.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.conftest import script
from voiceloop.config import Settings
from voiceloop.demo import run_demo
from voiceloop.session.log import read_session
from voiceloop.wake.base import WakeWordError
from voiceloop.wake.micro import MicroWakeDetector, available_words

pytestmark = pytest.mark.slow


@pytest.fixture
def kiosk_settings(room_settings: Settings) -> Settings:
    room_settings.loop.wake = "okay_nabu"
    room_settings.loop.attention_s = 3.0
    return room_settings


async def test_a_kiosk_wakes_on_the_word_answers_follow_ups_and_ignores_passers_by(
    kiosk_settings, llm_server
):
    user = script(
        {
            "say": "did you see the game last night",
            "passer_by": True,
            "pause_ms": 300,
            "reply_timeout_ms": 1500,
        },
        # (`reply_timeout_ms`: how long the user waits for a reply to the line before.)
        {"wake": "okay nabu", "say": "what time is it", "pause_ms": 300, "reply_timeout_ms": 1500},
        {"say": "tell me a joke", "pause_ms": 800},  # inside the attention window: no word needed
        # The word over the reply (after echo cancellation) stops it; the request follows.
        {"wake": "okay nabu", "say": "turn on the lights", "interrupt_after_ms": 1200},
        # Long after the last reply: asleep again, so this goes unanswered.
        {"say": "thank you", "pause_ms": 4500, "reply_timeout_ms": 11_000},
    )
    result = await run_demo(kiosk_settings, user, say=lambda _: None)
    log = read_session(result.session_dir / "session.jsonl")
    turns = [line for line in log if line["event"] == "turn"]
    asked = [t for t in turns if t["outcome"] != "greeted"]
    assert [t["transcript"] for t in asked] == ["what time is it", "tell me a joke", "turn on the lights"]
    assert [t["outcome"] for t in asked] == ["answered", "interrupted", "answered"]
    assert asked[1]["barge_in_at"] is not None

    wakes = [line for line in log if line["event"] == "wake"]
    assert [w["by"] for w in wakes] == ["okay_nabu", "okay_nabu"]
    assert wakes[0]["was_asleep"] and not wakes[1]["was_asleep"]
    truth = [line for line in log if line["event"] == "user_utterance"]
    # Each word was heard after it ended, in time for the request said 0.5 s later.
    for wake, line in zip(wakes, [u for u in truth if "wake_end" in u], strict=True):
        assert line["wake_end"] <= wake["t"] < line["wake_end"] + 0.5
    states = [(line["state"], line["why"]) for line in log if line["event"] == "attention"]
    assert states[:2] == [("asleep", "start"), ("awake", "okay_nabu")]
    assert states[-1] == ("asleep", "attention_expired")
    # The passer-by and the late "thank you" never reached the LLM.
    said_to_llm = [m["content"] for m in llm_server.last_request.messages if m["role"] == "user"]
    assert said_to_llm == ["what time is it", "tell me a joke", "turn on the lights"]


def test_a_missing_wake_word_model_fails_with_the_available_ones():
    assert {"okay_nabu", "alexa", "hey_mycroft", "hey_jarvis"} <= set(available_words())
    with pytest.raises(
        WakeWordError, match="no wake-word model 'hey_computer' .*alexa, hey_jarvis, hey_mycroft, okay_nabu"
    ):
        MicroWakeDetector(["okay_nabu", "hey_computer"])


def test_voiceloop_run_with_an_unknown_wake_word_names_the_known_ones_before_opening_a_device():
    from voiceloop.cli.app import app

    result = CliRunner().invoke(
        app, ["run", "--config", "offline", "--llm", "echo", "--wake", "hey_computer"]
    )
    assert result.exit_code == 2, result.output
    assert "no wake-word model 'hey_computer'" in result.output
    assert "alexa, hey_jarvis, hey_mycroft, okay_nabu" in result.output


def test_each_words_rule_comes_from_its_options_then_the_measured_pair_then_its_model():
    from voiceloop.wake.micro import MEASURED
    from voiceloop.wake.options import MicroWakeOptions

    nabu, alexa = MicroWakeDetector(["okay_nabu", "alexa"]).decisions
    measured = MEASURED["okay_nabu"]
    assert (nabu.cutoff, nabu.window) == (measured.cutoff, measured.sliding_window)
    assert nabu.cutoff_over_playback == measured.cutoff_over_playback
    assert (alexa.cutoff, alexa.window, alexa.cutoff_over_playback) == (0.9, 5, 0.9)  # alexa.json's
    options = MicroWakeOptions(
        probability_cutoff=0.8, cutoffs={"alexa": 0.95}, sliding_windows={"okay_nabu": 4}
    )
    nabu, alexa = MicroWakeDetector(["okay_nabu", "alexa"], options).decisions
    assert (nabu.cutoff, nabu.window) == (0.8, 4)
    assert (alexa.cutoff, alexa.window) == (0.95, 5)
    with pytest.raises(
        ValueError, match=r"wake\.micro\.cutoffs\.alexa = 1\.5: a cut-off lies between 0 and 1"
    ):
        MicroWakeOptions(cutoffs={"alexa": 1.5})


def test_a_longer_window_fires_later_on_the_same_word_and_playback_has_its_own_cutoff():
    """The window is the mean's: over more strides the word's rising probability crosses the
    cut-off later (the end of the word → listening time), over fewer sooner."""
    import numpy as np

    from voiceloop.audio.frames import FRAME_SAMPLES
    from voiceloop.audio.virtual import at_voice_level, trim_silence
    from voiceloop.tts.espeak import render
    from voiceloop.wake.options import MicroWakeOptions

    word = at_voice_level(trim_silence(render("okay nabu", "en-us+m3", 165)))
    audio = np.concatenate([np.zeros(8000, np.float32), word, np.zeros(8000, np.float32)])

    def first_frame_heard(window: int, over_playback: bool = False) -> int | None:
        options = MicroWakeOptions(
            cutoffs={"okay_nabu": 0.85},
            sliding_windows={"okay_nabu": window},
            cutoffs_over_playback={"okay_nabu": 0.999},
        )
        detector = MicroWakeDetector(["okay_nabu"], options)
        for k in range(audio.size // FRAME_SAMPLES):
            if detector.process(audio[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], over_playback):
                return k
        return None

    soon, late = first_frame_heard(1), first_frame_heard(5)
    assert soon is not None and late is not None
    assert soon < late
    # Over playback the word is judged by its own cut-off there (here one it cannot reach).
    assert first_frame_heard(5, over_playback=True) is None


def test_a_word_begun_over_playback_keeps_the_playback_cutoff_after_the_echo_tail_ends():
    """The loop pauses a reply at the user's first sound, so the echo tail runs out inside a
    word said over it; the word is still judged by the cut-off for words over playback, and a
    word said long after playback is not."""
    import numpy as np

    from voiceloop.audio.frames import FRAME_SAMPLES
    from voiceloop.audio.virtual import at_voice_level, trim_silence
    from voiceloop.tts.espeak import render
    from voiceloop.wake.micro import WORD_SPAN_S
    from voiceloop.wake.options import MicroWakeOptions

    word = at_voice_level(trim_silence(render("okay nabu", "en-us+m3", 165)))
    options = MicroWakeOptions(
        cutoffs={"okay_nabu": 0.999},  # a 5-stride mean this word never reaches
        sliding_windows={"okay_nabu": 5},
        cutoffs_over_playback={"okay_nabu": 0.85},
    )

    def heard(silence_s: float, playback_until_s: float) -> bool:
        audio = np.concatenate(
            [np.zeros(round(silence_s * 16000), np.float32), word, np.zeros(8000, np.float32)]
        )
        detector = MicroWakeDetector(["okay_nabu"], options)
        for k in range(audio.size // FRAME_SAMPLES):
            over_playback = k * FRAME_SAMPLES / 16000 < playback_until_s
            if detector.process(audio[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], over_playback):
                return True
        return False

    assert heard(0.5, playback_until_s=0.4)  # the tail ended 0.1 s before the word began
    assert not heard(0.5 + WORD_SPAN_S + 1.0, playback_until_s=0.4)
    assert not heard(0.5, playback_until_s=0.0)
