"""Stages for the stepped-clock harness (`stepped.py`): a recogniser, a chat model and a voice
that answer what a test tells them, after the delays it gives them on the stepped clock, or
never, or with an error; and a turn detector that judges each stop as told.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np

from voiceloop.asr.base import AsrError, Transcription
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.llm.base import ChatMessage, LlmError
from voiceloop.testing.stepped import NEVER_S, VOICE_AMPLITUDE, SteppedClock
from voiceloop.tts.base import TtsError
from voiceloop.turn.base import TurnError, TurnVerdict
from voiceloop.wake.base import WakeDetection


@dataclass(frozen=True)
class Heard:
    """One recognition: `text` after `delay_s`, or `error` at once."""

    text: str = ""
    delay_s: float = 0.1
    error: str | None = None


class ScriptedRecognizer:
    name = "scripted"

    def __init__(self, *answers: Heard) -> None:
        self.answers = list(answers)
        self.calls: list[float] = []  # seconds of audio per call

    def warm_up(self) -> None:
        pass

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        call = len(self.calls)
        self.calls.append(len(audio) / SAMPLE_RATE)
        answer = self.answers[call] if call < len(self.answers) else Heard()
        if answer.error is not None:
            raise AsrError(answer.error)
        return Transcription(answer.text, len(audio) / SAMPLE_RATE, answer.delay_s)

    def close(self) -> None:
        pass


def quote_the_user(messages: list[ChatMessage]) -> str:
    return f"You said {messages[-1].content}. That is all I have to say about it."


class ScriptedChat:
    """Streams `reply(messages)` word by word: the first after `first_token_s`, then one each
    `token_s`. Calls listed in `hang` never answer; those in `fail` raise LlmError."""

    name = "scripted"
    description = "scripted chat"

    def __init__(
        self,
        clock: SteppedClock,
        reply: Callable[[list[ChatMessage]], str] = quote_the_user,
        first_token_s: float = 0.05,
        token_s: float = 0.01,
        hang: frozenset[int] = frozenset(),
        fail: frozenset[int] = frozenset(),
    ) -> None:
        self.clock = clock
        self.reply = reply
        self.first_token_s = first_token_s
        self.token_s = token_s
        self.hang, self.fail = hang, fail
        self.requests: list[list[ChatMessage]] = []

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        call = len(self.requests)
        self.requests.append(list(messages))
        if call in self.hang:
            await self.clock.sleep(NEVER_S)
        if call in self.fail:
            raise LlmError("injected language model failure")
        await self.clock.sleep(self.first_token_s)
        for index, word in enumerate(self.reply(messages).split()):
            if index:
                await self.clock.sleep(self.token_s)
            yield word if index == 0 else " " + word

    async def check(self) -> str | None:
        return None

    async def aclose(self) -> None:
        pass


class ScriptedVoice:
    """First audio after `first_audio_s`, then `word_s` of tone per word at once. Calls in
    `fail` raise TtsError; calls in `hang` never produce audio."""

    name = "scripted"

    def __init__(
        self,
        clock: SteppedClock,
        first_audio_s: float = 0.02,
        word_s: float = 0.1,
        fail: frozenset[int] = frozenset(),
        hang: frozenset[int] = frozenset(),
    ) -> None:
        self.clock = clock
        self.first_audio_s = first_audio_s
        self.word_s = word_s
        self.fail, self.hang = fail, hang
        self.texts: list[str] = []

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        call = len(self.texts)
        self.texts.append(text)
        if call in self.hang:
            await self.clock.sleep(NEVER_S)
        if call in self.fail:
            raise TtsError("injected voice failure")
        await self.clock.sleep(self.first_audio_s)
        samples = np.arange(round(self.word_s * SAMPLE_RATE))
        word = VOICE_AMPLITUDE * np.sin(2 * np.pi * 330.0 * samples / SAMPLE_RATE)
        for _ in text.split():
            yield word.astype(np.float32)

    async def aclose(self) -> None:
        pass


@dataclass(frozen=True)
class Judged:
    """One turn-detector verdict: P(complete) after `elapsed_ms`, or `error` at once."""

    probability: float
    elapsed_ms: float = 30.0
    error: str | None = None


class ScriptedTurnDetector:
    """Judges the n-th VAD stop as `verdicts[n]` says (complete above 0.5); stops past the list
    are complete. Each call's audio length is kept, so a test sees what the detector heard."""

    name = "scripted"

    def __init__(self, *verdicts: Judged) -> None:
        self.verdicts = list(verdicts)
        self.calls: list[float] = []  # seconds of audio per call

    def predict(self, audio: np.ndarray) -> TurnVerdict:
        call = len(self.calls)
        self.calls.append(len(audio) / SAMPLE_RATE)
        judged = self.verdicts[call] if call < len(self.verdicts) else Judged(0.9)
        if judged.error is not None:
            raise TurnError(judged.error)
        return TurnVerdict(judged.probability, judged.probability > 0.5, judged.elapsed_ms)

    def warm_up(self) -> None:
        pass

    def close(self) -> None:
        pass


class ScriptedWake:
    """A wake-word stage that fires at the room times it is told (the frame in which each time
    falls), counting the frames it hears from the stepped room's start: the gate's timing
    rules, to the frame, without a model. The real model is the virtual room's tests' part."""

    name = "scripted"

    def __init__(self, *fire_at: float, word: str = "okay_nabu") -> None:
        self.words = (word,)
        self._fire_at = sorted(round(t * SAMPLE_RATE) for t in fire_at)  # in samples heard
        self._heard = 0

    def process(self, frame: np.ndarray, over_playback: bool = False) -> list[WakeDetection]:
        start, self._heard = self._heard, self._heard + len(frame)
        return [WakeDetection(self.words[0], 0.99) for at in self._fire_at if start <= at < self._heard]

    def reset(self) -> None:
        pass
