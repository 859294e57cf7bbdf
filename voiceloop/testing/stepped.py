"""A stepped-clock harness for the runtime: the engine's timing rules, to the frame, in
milliseconds of wall time.

The real `Conversation` runs, unchanged, on a `SteppedClock` that only moves when the
`SteppedRoom` (a duplex device) delivers a 10 ms frame: no sleeping, no threads, so a run is
deterministic and a 10 s conversation takes a fraction of a second. Around it, stages whose
delays are set on the same clock:

- the room's user is a tone at scripted times over faint noise, and `LevelVad` calls a chunk
  speech exactly when it is loud: the VAD's verdict is the script's, to the sample;
- `ScriptedRecognizer`, `ScriptedChat` and `ScriptedVoice` (`scripted.py`) answer what they
  are told, after the delays they are given (or never, or with an error).

What is not real here is only what the virtual room tests with real parts (silero, speex,
pocketsphinx, espeak, an OpenAI-compatible server): keep those end-to-end tests there.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from voiceloop.aec.base import EchoCanceller
from voiceloop.asr.base import SpeechRecognizer
from voiceloop.audio.base import DuplexFrame
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.playback import PlaybackQueue
from voiceloop.config import Settings, load_settings
from voiceloop.engine.runtime import Conversation, Observer, Pipeline
from voiceloop.engine.timing import TurnRecord
from voiceloop.llm.base import ChatModel
from voiceloop.session.log import SessionLog, read_session
from voiceloop.tts.base import SpeechSynthesizer
from voiceloop.turn.base import TurnDetector
from voiceloop.vad.base import VoiceActivityDetector
from voiceloop.wake.base import WakeWordDetector

T = TypeVar("T")
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
NEVER_S = 3600.0  # a stage that does not answer
VOICE_AMPLITUDE = 0.1  # about -23 dBFS: the user's tone and the assistant's voice
NOISE_AMPLITUDE = 1e-4  # about -80 dBFS: the room when nobody talks


# -- the clock --------------------------------------------------------------------------------


@dataclass(order=True)
class _Timer:
    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class SteppedClock:
    """A clock that moves only when told (`advance_to`), a frame at a time.

    Waits and timeouts are timers on this clock; `settle` then lets every task run until all
    wait on it again. Blocking work (recognition) runs at once, on the loop, and then takes
    the time it reports having taken (`Transcription.elapsed_s`), as a real recogniser reports
    its compute time: that is how a fake recogniser's delay is set.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._timers: list[_Timer] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def _call_at(self, when: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(when, next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)

        timer = self._call_at(self._now + seconds, wake)
        try:
            await woken
        finally:
            timer.cancelled = True

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        return self._timeout(seconds)

    @asynccontextmanager
    async def _timeout(self, seconds: float) -> AsyncIterator[None]:
        # asyncio's own Timeout does the cancelling and the TimeoutError; this clock only
        # decides when it expires.
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(None) as bound:
            timer = self._call_at(self._now + seconds, lambda: bound.reschedule(loop.time()))
            try:
                yield
            finally:
                timer.cancelled = True

    async def run_blocking(self, work: Callable[..., T], *args: object) -> T:
        result = work(*args)
        elapsed = getattr(result, "elapsed_s", 0.0)
        if isinstance(elapsed, float) and elapsed > 0:
            await self.sleep(elapsed)
        return result

    def advance_to(self, when: float) -> None:
        """Moves the clock on and fires every timer now due, in order."""
        self._now = max(self._now, when)
        while self._timers and self._timers[0].when <= self._now + 1e-9:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()

    async def settle(self) -> None:
        """Lets every task run until each waits on this clock (or on nothing) again."""
        loop = asyncio.get_running_loop()
        for _ in range(10_000):
            await asyncio.sleep(0)
            if not loop._ready:  # type: ignore[attr-defined]  # nothing else is runnable
                return
        raise RuntimeError("the loop never settled: a task runs without ever waiting on the clock")


# -- the room -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speech:
    """The user talks from `at` for `seconds` (room time): a tone the VAD calls speech."""

    at: float
    seconds: float

    @property
    def end(self) -> float:
        return self.at + self.seconds


class SteppedRoom:
    """A duplex device on a stepped clock: each frame, the speaker pulls from the playback
    queue (at the frame's start), the clock moves to the frame's end, the tasks settle, and
    the mic frame is delivered. No echo reaches the mic: the reference is the speaker frame."""

    name = "stepped"

    def __init__(self, speech: list[Speech], duration_s: float, clock: SteppedClock | None = None) -> None:
        self.speech = speech
        self.duration_s = duration_s
        self.clock = clock or SteppedClock()
        self.t0 = self.clock.now()
        self.audible: list[float] = []  # start of every frame in which the speaker played
        self._mic = self._mic_track()
        self._closed = False

    def _mic_track(self) -> np.ndarray:
        """The whole session's mic, made once: faint noise, and the tone while the user talks."""
        samples = np.arange(round(self.duration_s * SAMPLE_RATE) + FRAME_SAMPLES)
        track = NOISE_AMPLITUDE * np.random.default_rng(7).standard_normal(samples.size)
        tone = VOICE_AMPLITUDE * np.sin(2 * np.pi * 220.0 * samples / SAMPLE_RATE)
        for said in self.speech:
            start, end = round(said.at * SAMPLE_RATE), round(said.end * SAMPLE_RATE)
            track[start:end] = tone[start:end]
        return track.astype(np.float32)

    def now(self) -> float:
        return self.clock.now()

    async def frames(self, playback: PlaybackQueue) -> AsyncIterator[DuplexFrame]:
        clock = self.clock
        for k in range(round(self.duration_s / FRAME_S)):
            if self._closed:
                return
            frame_at = self.t0 + k * FRAME_S
            await clock.settle()  # what the last frame started begins at its own time
            speaker = playback.pull(FRAME_SAMPLES, at=frame_at)
            if np.any(speaker):
                self.audible.append(frame_at)
            clock.advance_to(frame_at + FRAME_S)
            await clock.settle()
            yield DuplexFrame(
                mic_frame=self._mic[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES].copy(),
                reference_frame=speaker,
                captured_at=frame_at,
                speaker_frame=speaker,
            )

    def true_speech_end(self, before: float) -> float | None:
        ends = [self.t0 + s.end for s in self.speech if self.t0 + s.end <= before]
        return max(ends) if ends else None

    async def aclose(self) -> None:
        self._closed = True


class LevelVad:
    """The VAD's verdict as scripted: a chunk is speech when it is loud (the room's tone),
    silence when it is faint (the room's noise)."""

    name = "level"
    chunk_samples = 512

    def speech_probability(self, chunk: np.ndarray) -> float:
        rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64))))
        return 0.95 if rms > VOICE_AMPLITUDE / 10 else 0.02

    def reset(self) -> None:
        pass


class ConvergingCanceller:
    """Passes the mic through, but says it needs `warmup_s` of playback to converge."""

    name = "converging"
    output_delay_samples = 0

    def __init__(self, warmup_s: float) -> None:
        self.warmup_s = warmup_s

    def process(self, mic_frame: np.ndarray, reference_frame: np.ndarray) -> np.ndarray:
        return mic_frame

    def reset(self) -> None:
        pass


# -- a run ----------------------------------------------------------------------------------------


def stepped_settings(log_dir: Path) -> Settings:
    """The offline profile, with no greeting and no recording, and turns ending on the silence
    window alone (the profile ends them on the words): each test sets what it times."""
    settings = load_settings("offline")
    settings.log.dir = log_dir
    settings.log.record_wav = False
    settings.loop.greeting = ""
    settings.turn.name = "none"
    return settings


@dataclass
class SteppedRun:
    turns: list[TurnRecord]
    log: list[dict[str, Any]]
    errors: list[str]
    states: list[tuple[float, str]]  # (when, state entered)
    history: list[tuple[str, str]]
    attention: list[tuple[float, str, str]] = field(default_factory=list)  # (when, asleep|awake, why)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.log if line["event"] == name]


async def run_stepped(
    settings: Settings,
    room: SteppedRoom,
    *,
    asr: SpeechRecognizer,
    llm: ChatModel,
    tts: SpeechSynthesizer,
    aec: EchoCanceller | None = None,
    turn: TurnDetector | None = None,
    wake: WakeWordDetector | None = None,
    pushes: tuple[float, ...] = (),
    vad: VoiceActivityDetector | None = None,
) -> SteppedRun:
    """Runs a whole conversation in the room, on its clock, and collects what happened;
    `pushes`: room times at which push-to-talk is pressed; `vad`: a real one (the kiosk bench's
    silero) instead of the scripted `LevelVad`."""
    from voiceloop.aec.passthrough import PassthroughCanceller

    errors: list[str] = []
    states: list[tuple[float, str]] = []
    attention: list[tuple[float, str, str]] = []
    observer = Observer(
        on_error=errors.append,
        on_state=lambda state: states.append((room.clock.now(), state)),
        on_attention=lambda state, why: attention.append((room.clock.now(), state, why)),
    )
    pipeline = Pipeline(
        device=room,
        aec=aec or PassthroughCanceller(),
        vad=vad or LevelVad(),
        asr=asr,
        llm=llm,
        tts=tts,
        turn=turn,
        wake=wake,
    )
    session = SessionLog(settings.log.dir, record_wav=False)
    talk = Conversation(settings, pipeline, session, observer, clock=room.clock)

    async def press(at: float) -> None:
        await room.clock.sleep(at - room.clock.now())
        talk.push_to_talk("test")

    presses = [asyncio.ensure_future(press(at)) for at in pushes]
    try:
        await talk.run()
    finally:
        for pressing in presses:
            pressing.cancel()
        session.close()
    return SteppedRun(
        list(talk.finished_turns),
        read_session(session.jsonl_path),
        errors,
        states,
        talk.history.exchanges,
        attention,
    )
