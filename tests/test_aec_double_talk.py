"""Talking over the assistant: at echo +10 dB over the user (a Mandarin reply through a loud
desk speaker, the default profile's voice) the profile's canceller must keep the user's words.

WebRTC's AEC3 (livekit) removes the user with the echo here (0% of voiced chunks, NOTES.md);
speex with drift compensation and path-change recovery is what the default profile chooses
(README, echo table).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from voiceloop.aec import speex
from voiceloop.asr.pocketsphinx import PocketsphinxRecognizer
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.audio.virtual import (
    at_voice_level,
    trim_silence,
)
from voiceloop.build import build_adapter
from voiceloop.config import load_settings
from voiceloop.testing.talked_over import cancelled, user_over_mandarin_reply
from voiceloop.tts.espeak import render

pytestmark = pytest.mark.skipif(not speex.ctypes.util.find_library("speexdsp"), reason="no libspeexdsp")

COMMANDS = [
    "set a timer for five minutes",
    "turn off the lights",
    "what is the weather like today",
    "play some music",
    "never mind",
    "thank you",
    "what time is it",
    "tell me a joke",
]
SPOKEN = COMMANDS[0]
LEAD_S = 0.5
USER_AT_S = 10.0  # into the reply: well past the canceller's warm-up
REPLY_S = 14.0


@functools.cache
def talked_over(room: str) -> tuple[np.ndarray, np.ndarray, slice]:
    """(mic, reference, the user's span) of the room's Mandarin reply with the user saying
    SPOKEN over it."""
    words = at_voice_level(trim_silence(render(SPOKEN, "en-us+m3")))
    track = user_over_mandarin_reply(
        room, words, lead_s=LEAD_S, user_at_s=USER_AT_S, total_s=LEAD_S + REPLY_S
    )
    return track.mic, track.reference, track.user_span


@functools.cache
def recogniser() -> PocketsphinxRecognizer:
    return PocketsphinxRecognizer(phrases=COMMANDS)


def heard(audio: np.ndarray, span: slice) -> str:
    """What pocketsphinx makes of the user's span, with the margins an endpointer keeps."""
    around = audio[span.start - SAMPLE_RATE // 3 : span.stop + SAMPLE_RATE // 2]
    return recogniser().transcribe(around).text


def cleaned(mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return cancelled(build_adapter(load_settings("default"), "aec", "speex"), mic, reference)


@pytest.mark.parametrize("room", ["mandarin-10db", "mandarin-10db-drift80", "clipping-10db"])
def test_a_user_talking_over_a_loud_echo_is_transcribed(room: str) -> None:
    mic, reference, span = talked_over(room)
    assert heard(cleaned(mic, reference), span) == SPOKEN


def test_without_a_canceller_the_echo_buries_the_user() -> None:
    """The same words straight from the mic: the recogniser picks the wrong command (or none)."""
    mic, _, span = talked_over("mandarin-10db")
    assert heard(mic, span) != SPOKEN
