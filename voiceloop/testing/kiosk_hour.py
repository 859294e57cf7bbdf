"""A scripted kiosk hour on the stepped clock: people wake the kiosk ("okay nabu", a pause, a
request), some say the word again over its reply, and passers-by talk near it while it sleeps.

The room is a `SteppedRoom` whose mic carries espeak lines at scripted times, the assistant's
own playback through the virtual room's echo path (delay, reverberation, gain) and the room's
noise; the reference is what the speaker played. The real Conversation runs on it with the
real canceller, silero, the real wake-word model and a real voice (espeak, rendered on the
loop so the clock stays exact); only recognition and the LLM are scripted. It runs as fast
as the CPU allows: `scripts/bench_wake.py` reports on it, the soak reuses its lines.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from voiceloop.audio.base import DuplexFrame
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.playback import PlaybackQueue
from voiceloop.audio.virtual import at_voice_level, echo_path, room_impulse_response, trim_silence
from voiceloop.config.settings import RoomSettings
from voiceloop.testing.stepped import FRAME_S, SteppedClock, SteppedRoom
from voiceloop.tts.espeak import render

# Voices the okay_nabu model accepts when espeak says the word. Measured: en-us+f3, en-us+f5 and
# en-gb-scotland+f4 are not accepted alone; en-029+f2 was alone but in the kiosk hour (echo,
# noise) only 4 of 17 times, so it counts as not accepted.
ACCEPTED_VOICES = ("en-us+m3", "en-us+m1", "en-gb-x-rp+m2", "en-us-nyc", "en+m7")
REJECTED_VOICES = ("en-us+f3", "en-us+f5", "en-029+f2")
REQUESTS = (
    "what time is it",
    "where is the lift",
    "what is the wifi password",
    "when does the cafe close",
    "call a taxi please",
    "how do I get to the station",
)
PASSERS_BY = (
    "did you see the game last night",
    "I think the meeting moved to three",
    "okay see you tomorrow then",
    "can you hold the door for me",
    "we should get lunch at the new place",
    "my train was late again this morning",
    "the printer on the second floor is broken",
    "let us grab a coffee before we go",
    "have you finished the report yet",
    "it is going to rain all week",
    "okay I will send it to you later",
    "the parking lot is full again",
)


@dataclass(frozen=True)
class KioskLine:
    at: float  # room time of its first sample
    kind: str  # "wake" (the word, a pause, a request) or "passer_by"
    text: str
    voice: str
    audio: np.ndarray
    wake_end: float | None = None  # room time the word ends (wake lines)
    over_reply: bool = False  # said while the kiosk is (scripted to be) answering

    @property
    def end(self) -> float:
        return self.at + self.audio.size / SAMPLE_RATE


class _Voices:
    """Renders each (text, voice) once: an hour repeats its lines."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def say(self, text: str, voice: str) -> np.ndarray:
        key = (text, voice)
        if key not in self._cache:
            self._cache[key] = trim_silence(render(text, voice, 165))
        return self._cache[key]


def kiosk_schedule(
    cycles: int,
    seed: int = 11,
    passer_s_per_cycle: float = 16.5,
    interrupt_every: int = 4,
    word: str = "okay nabu",
    rejected_share: float = 0.0,
) -> list[KioskLine]:
    """`cycles` visits: the word and a request (every `interrupt_every`-th visit the word again,
    over the reply, and another request), the attention window left to run out, then passers-by
    talking for about `passer_s_per_cycle` while the kiosk sleeps."""
    rng = random.Random(seed)
    voices = _Voices()
    lines: list[KioskLine] = []
    t = 2.0

    def wake_line(at: float, over_reply: bool) -> KioskLine:
        rejected = rng.random() < rejected_share
        voice = rng.choice(REJECTED_VOICES if rejected else ACCEPTED_VOICES)
        spoken = voices.say(word, voice)
        request = rng.choice(REQUESTS)
        gap = np.zeros(SAMPLE_RATE // 2, np.float32)
        audio = at_voice_level(np.concatenate([spoken, gap, voices.say(request, voice)]))
        return KioskLine(at, "wake", request, voice, audio, at + spoken.size / SAMPLE_RATE, over_reply)

    for cycle in range(cycles):
        first = wake_line(t, False)
        lines.append(first)
        last = first
        if interrupt_every and cycle % interrupt_every == interrupt_every - 1:
            # The reply to the first request starts ~0.4 s after it and plays ~4 s: 1.5 s in,
            # someone says the word over it.
            again = wake_line(first.end + 1.5, True)
            lines.append(again)
            last = again
        # The reply (~4.5 s) and the 8 s attention window, with a margin: asleep from here.
        t = last.end + 16.0
        talked = 0.0
        while talked < passer_s_per_cycle:
            text, voice = rng.choice(PASSERS_BY), rng.choice(ACCEPTED_VOICES + REJECTED_VOICES)
            audio = at_voice_level(voices.say(text, voice))
            lines.append(KioskLine(t, "passer_by", text, voice, audio))
            talked += audio.size / SAMPLE_RATE
            t += audio.size / SAMPLE_RATE + rng.uniform(0.3, 1.5)
        t += 3.0
    return lines


class KioskRoom(SteppedRoom):
    """A stepped room whose mic is the schedule's lines, the echo of the speaker, and noise."""

    name = "kiosk"

    def __init__(
        self, lines: list[KioskLine], room: RoomSettings | None = None, clock: SteppedClock | None = None
    ):
        self.lines = sorted(lines, key=lambda line: line.at)
        self.room = room or RoomSettings()
        rng = np.random.default_rng(self.room.seed)
        self.echo = echo_path(self.room, None, room_impulse_response(self.room.rt60_s, rng))
        self._noise_rng = np.random.default_rng(self.room.seed + 1)
        self._noise = float(10 ** (self.room.noise_dbfs / 20))
        duration = (self.lines[-1].end if self.lines else 0.0) + 20.0
        super().__init__([], duration_s=duration, clock=clock)

    def _mic_track(self) -> np.ndarray:
        return np.zeros(0, np.float32)  # mixed frame by frame instead: an hour is 230 MB

    def _user_frame(self, frame_at: float, cursor: int, active: list[KioskLine]) -> tuple[np.ndarray, int]:
        while cursor < len(self.lines) and self.lines[cursor].at < frame_at + FRAME_S:
            active.append(self.lines[cursor])
            cursor += 1
        out = np.zeros(FRAME_SAMPLES, np.float32)
        start = round((frame_at - self.t0) * SAMPLE_RATE)
        for line in list(active):
            offset = start - round(line.at * SAMPLE_RATE)
            lo, hi = max(offset, 0), min(offset + FRAME_SAMPLES, line.audio.size)
            if hi <= lo:
                if offset >= line.audio.size:
                    active.remove(line)
                continue
            out[lo - offset : hi - offset] += line.audio[lo:hi]
        return out, cursor

    async def frames(self, playback: PlaybackQueue) -> AsyncIterator[DuplexFrame]:
        clock, cursor = self.clock, 0
        active: list[KioskLine] = []
        for k in range(round(self.duration_s / FRAME_S)):
            if self._closed:
                return
            frame_at = self.t0 + k * FRAME_S
            await clock.settle()
            speaker = playback.pull(FRAME_SAMPLES, at=frame_at)
            if np.any(speaker):
                self.audible.append(frame_at)
            user, cursor = self._user_frame(frame_at, cursor, active)
            mic = user + self.echo.process(speaker)
            mic += self._noise * self._noise_rng.standard_normal(FRAME_SAMPLES).astype(np.float32)
            np.clip(mic, -1.0, 1.0, out=mic)
            clock.advance_to(frame_at + FRAME_S)
            await clock.settle()
            yield DuplexFrame(
                mic_frame=mic, reference_frame=speaker, captured_at=frame_at, speaker_frame=speaker
            )

    def true_speech_end(self, before: float) -> float | None:
        ends = [self.t0 + line.end for line in self.lines if self.t0 + line.end <= before]
        return max(ends) if ends else None


class LoopVoice:
    """espeak, rendered on the loop: on the stepped clock a reply's audio is there at once, as
    a real voice ~900x faster than real time nearly is (a thread would let the clock run on)."""

    name = "espeak"

    def __init__(self, voice: str = "en-us", rate_wpm: int = 175) -> None:
        self.voice, self.rate_wpm = voice, rate_wpm

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        audio = render(text, self.voice, self.rate_wpm)
        if audio.size:
            yield audio

    async def aclose(self) -> None:
        pass
