"""What the assistant says in the echo benches and tests: English, Mandarin or music-like.

A canceller tuned on short English sentences can still fail on what the product plays: the
default profile speaks zh-CN (tonal, with long voiced stretches), and a reply can be music or
a jingle, whose energy reaches 8 kHz where speech has little. All at the virtual room's voice
level, so the echo gain alone sets the echo's level over the user.
"""

from __future__ import annotations

import functools

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.audio.virtual import at_voice_level, trim_silence

ENGLISH_VOICE = "en-us"
MANDARIN_VOICE = "cmn"
ENGLISH_LINES = (
    "The weather today is sunny with a light breeze from the west.",
    "Tomorrow it will rain in the afternoon, so take an umbrella.",
    "Your next meeting starts at half past three in the small room.",
    "I have added milk, eggs and a loaf of bread to your shopping list.",
    "The train to the city leaves from platform four in twenty minutes.",
    "Traffic on the ring road is light, so the drive should take a quarter of an hour.",
)
MANDARIN_LINES = (
    "今天天气晴朗，西边吹来微风，下午气温会升到二十五度。",
    "明天下午会下雨，出门的时候请记得带伞。",
    "你的下一个会议在三点半开始，地点是小会议室。",
    "我已经把牛奶、鸡蛋和一条面包加到你的购物清单里了。",
    "去市中心的火车二十分钟后从四号站台出发。",
    "环城路上车不多，开车大概需要一刻钟。",
)


@functools.cache
def english_reply() -> np.ndarray:
    from voiceloop.tts.espeak import render

    return at_voice_level(
        np.concatenate([trim_silence(render(line, ENGLISH_VOICE)) for line in ENGLISH_LINES])
    )


@functools.cache
def mandarin_reply() -> np.ndarray:
    from voiceloop.tts.espeak import render

    return at_voice_level(
        np.concatenate([trim_silence(render(line, MANDARIN_VOICE)) for line in MANDARIN_LINES])
    )


@functools.cache
def music_reply(seconds: float = 16.0, seed: int = 3) -> np.ndarray:
    """A chord progression of rich harmonic tones with a noise hi-hat and a kick: sustained,
    wide band (harmonics and hats up to 8 kHz), with no pauses for a canceller to rest in."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    beat = 0.5  # 120 bpm
    chords = ((220.0, 277.2, 329.6), (196.0, 246.9, 293.7), (174.6, 220.0, 261.6), (164.8, 207.7, 246.9))
    out = np.zeros(n)
    bar = 4 * beat
    for k in range(int(np.ceil(seconds / bar))):
        span = (t >= k * bar) & (t < (k + 1) * bar)
        local = t[span] - k * bar
        envelope = np.exp(-local / 1.2)
        for f0 in chords[k % len(chords)]:
            for h in range(1, int(7500 // f0) + 1):
                out[span] += envelope * np.sin(2 * np.pi * f0 * h * t[span] + rng.uniform(0, 2 * np.pi)) / h
    hat = rng.standard_normal(n)
    hat = np.diff(hat, prepend=0.0)  # tilted to the top octaves
    for k in range(int(seconds / (beat / 2))):
        at = int(k * beat / 2 * SAMPLE_RATE)
        length = min(int(0.05 * SAMPLE_RATE), n - at)
        out[at : at + length] += 0.6 * hat[at : at + length] * np.exp(-np.arange(length) / 200)
    for k in range(int(seconds / beat)):
        at = int(k * beat * SAMPLE_RATE)
        length = min(int(0.15 * SAMPLE_RATE), n - at)
        tk = np.arange(length) / SAMPLE_RATE
        out[at : at + length] += (
            2.0 * np.sin(2 * np.pi * (50 + 80 * np.exp(-tk / 0.03)) * tk) * np.exp(-tk / 0.08)
        )
    return at_voice_level(out.astype(np.float32))


def reply(kind: str) -> np.ndarray:
    """The reply of a scenario (`Scenario.reply`): 'en', 'zh' or 'music'."""
    return {"en": english_reply, "zh": mandarin_reply, "music": music_reply}[kind]()
