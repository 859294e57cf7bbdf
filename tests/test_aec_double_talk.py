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
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.rooms import HARD_SCENARIOS
from voiceloop.audio.virtual import (
    REFERENCE_LEAD_MS,
    at_voice_level,
    echo_path,
    room_impulse_response,
    trim_silence,
)
from voiceloop.build import build_adapter
from voiceloop.config import load_settings
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
    SPOKEN over it; whole frames, the reference handed out as the virtual room hands it out."""
    from voiceloop.testing.replies import mandarin_reply

    scenario = HARD_SCENARIOS[room]
    far_start = int(LEAD_S * SAMPLE_RATE)
    frames = int((LEAD_S + REPLY_S) * SAMPLE_RATE) // FRAME_SAMPLES
    total = frames * FRAME_SAMPLES
    speaker = np.zeros(total, np.float32)
    speaker[far_start:] = np.tile(mandarin_reply(), 2)[: total - far_start]
    rir = room_impulse_response(scenario.room.rt60_s, np.random.default_rng(scenario.room.seed))
    path = echo_path(scenario.room, scenario.conditions, rir)
    echo = np.concatenate([path.process(frame) for frame in speaker.reshape(frames, FRAME_SAMPLES)])
    user = np.zeros(total, np.float32)
    words = at_voice_level(trim_silence(render(SPOKEN, "en-us+m3")))
    start = far_start + int(USER_AT_S * SAMPLE_RATE)
    user[start : start + words.size] = words
    rng = np.random.default_rng(scenario.room.seed + 1)
    noise = 10 ** (scenario.room.noise_dbfs / 20) * rng.standard_normal(total).astype(np.float32)
    mic = np.clip(echo + user + noise, -1.0, 1.0).astype(np.float32)
    delay = round((scenario.room.echo_delay_ms - REFERENCE_LEAD_MS) * SAMPLE_RATE / 1000)
    reference = np.concatenate([np.zeros(delay, np.float32), speaker])[:total]
    return mic, reference, slice(start, start + words.size)


@functools.cache
def recogniser() -> PocketsphinxRecognizer:
    return PocketsphinxRecognizer(phrases=COMMANDS)


def heard(audio: np.ndarray, span: slice) -> str:
    """What pocketsphinx makes of the user's span, with the margins an endpointer keeps."""
    around = audio[span.start - SAMPLE_RATE // 3 : span.stop + SAMPLE_RATE // 2]
    return recogniser().transcribe(around).text


def cleaned(mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
    canceller = build_adapter(load_settings("default"), "aec", "speex")
    frames = mic.size // FRAME_SAMPLES
    out = np.concatenate(
        [
            canceller.process(
                mic[k * FRAME_SAMPLES :][:FRAME_SAMPLES], reference[k * FRAME_SAMPLES :][:FRAME_SAMPLES]
            )
            for k in range(frames)
        ]
    )
    delay = canceller.output_delay_samples
    return np.concatenate([out[delay:], np.zeros(delay, np.float32)])


@pytest.mark.parametrize("room", ["mandarin-10db", "mandarin-10db-drift80", "clipping-10db"])
def test_a_user_talking_over_a_loud_echo_is_transcribed(room: str) -> None:
    mic, reference, span = talked_over(room)
    assert heard(cleaned(mic, reference), span) == SPOKEN


def test_without_a_canceller_the_echo_buries_the_user() -> None:
    """The same words straight from the mic: the recogniser picks the wrong command (or none)."""
    mic, _, span = talked_over("mandarin-10db")
    assert heard(mic, span) != SPOKEN
