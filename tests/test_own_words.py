"""The reply's own words heard back: speech whose words are, in a row, the ones it sounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import listener_on_the_mic
from tests.test_asr_pocketsphinx import PHRASES, low_noise
from voiceloop.asr.pocketsphinx import PocketsphinxRecognizer
from voiceloop.audio.base import DuplexFrame
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.playback import PlaybackQueue
from voiceloop.audio.virtual import at_voice_level, room_impulse_response
from voiceloop.engine.events import SpeechEnded
from voiceloop.engine.own_words import said_by_us, tokens
from voiceloop.session.log import read_session
from voiceloop.tts.espeak import render


def test_the_echo_of_a_reply_says_its_words_in_a_row():
    assert said_by_us("thank you", "You said: thank you.")
    assert said_by_us("Said, thank", "You said: thank you.")
    assert said_by_us("你说", "你说：谢谢你。")  # scripts without spaces: character by character


def test_words_the_reply_did_not_sound_in_that_order_are_someone_elses():
    assert not said_by_us("stop", "You said: thank you.")
    assert not said_by_us("you thank", "You said: thank you.")
    assert not said_by_us("you said thank you very much", "You said: thank you.")
    assert not said_by_us("谢谢我", "你说：谢谢你。")
    assert not said_by_us("", "You said: thank you.")  # no words: the backchannel rule's case
    assert not said_by_us("thank you", "")


def test_tokens_ignore_case_and_punctuation_and_split_what_both_sides_split_alike():
    assert tokens("Don't STOP, now!") == ["don", "t", "stop", "now"]
    assert tokens("好的, OK") == ["好", "的", "ok"]


def test_the_listener_hands_on_the_words_the_speaker_sounded_while_speech_was_heard(tmp_path: Path):
    """A reply played a second in, its echo at the mic uncancelled (+3 dB, 60 ms, RT60 0.45),
    and a user's "never mind" long after: what the machine gets with each speech."""
    queue = PlaybackQueue()
    queue.open_turn(1)
    piece = queue.begin_piece(1, "You said: thank you.")
    assert piece is not None
    queue.append(1, piece, at_voice_level(render("You said: thank you.")))
    queue.end_piece(1, piece)
    queue.close_turn(1)
    frames = 700
    silent = [np.zeros(FRAME_SAMPLES, np.float32)] * 100
    speaker = np.concatenate(silent + [queue.pull(FRAME_SAMPLES, at=k / 100) for k in range(100, frames)])
    delay = int(0.06 * SAMPLE_RATE)
    room = room_impulse_response(0.45, np.random.default_rng(3))
    echo = 1.4 * np.concatenate([np.zeros(delay), np.convolve(speaker, room)])[: speaker.size]
    mic = (echo + low_noise(speaker.size)).astype(np.float32)
    user = at_voice_level(render("never mind", "en-us+m3"))
    mic[5 * SAMPLE_RATE : 5 * SAMPLE_RATE + user.size] += user

    heard: list[object] = []
    listener = listener_on_the_mic(queue, tmp_path, emit=heard.append)
    for k in range(frames):
        span = slice(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES)
        listener.hear(DuplexFrame(mic[span], speaker[span], k / 100, speaker[span]))
    recognizer = PocketsphinxRecognizer(phrases=PHRASES)
    speech = [
        (event, recognizer.transcribe(event.audio).text) for event in heard if isinstance(event, SpeechEnded)
    ]

    echo_heard = [(event, text) for event, text in speech if event.started_at < 4.0]
    assert echo_heard and all(event.reply_words for event, _ in echo_heard)
    # The recogniser made words of the echo, and they are the ones sounding then.
    assert any(text == "thank you" and said_by_us(text, event.reply_words) for event, text in echo_heard)
    ((user_speech, text),) = [(event, text) for event, text in speech if event.started_at >= 4.0]
    assert text == "never mind" and user_speech.reply_words == ""  # nothing played for seconds
    (log,) = tmp_path.glob("*/session.jsonl")  # a trace shows why a reply resumed over words
    logged = [line for line in read_session(log) if line["event"] == "reply_words"]
    assert [line["words"] for line in logged] == [event.reply_words for event, _ in echo_heard]
