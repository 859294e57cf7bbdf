"""Turns per-chunk speech probabilities into utterances: QUIET → STARTING → SPEAKING → STOPPING.

Pure logic over (chunk, probability, time): no model, no clock, so tests drive it with
synthetic sequences. Modelled on Pipecat's VAD analyzer, with two differences that matter for
latency and barge-in: the end of speech is reported as the end of the last voiced chunk (not
when the stop window closed), and voiced time is reported as it grows so the engine can tell a
cough from a barge-in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

import numpy as np

from voiceloop.engine.events import SpeechEnded, SpeechProgress, SpeechStarted

EndpointEvent = SpeechStarted | SpeechProgress | SpeechEnded


class EndpointState(str, Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


@dataclass(frozen=True)
class EndpointConfig:
    threshold: float = 0.5  # a chunk this likely is speech starts or resumes an utterance
    neg_threshold: float = 0.35  # below this it is silence; in between, speech continues
    start_ms: int = 64
    stop_ms: int = 200
    preroll_ms: int = 300
    max_utterance_s: float = 15.0
    sample_rate: int = 16_000


class Endpointer:
    def __init__(self, config: EndpointConfig | None = None) -> None:
        self.config = config or EndpointConfig()
        self.reset()

    def reset(self) -> None:
        self.state = EndpointState.QUIET
        self._preroll: deque[np.ndarray] = deque()
        self._preroll_samples = 0
        self._utterance: list[np.ndarray] = []
        self._onset = 0.0
        self._voiced_s = 0.0
        self._last_voiced_end = 0.0

    @property
    def in_speech(self) -> bool:
        return self.state in (EndpointState.SPEAKING, EndpointState.STOPPING)

    def feed(self, chunk: np.ndarray, probability: float, at: float) -> list[EndpointEvent]:
        """`at` is the time of the chunk's first sample."""
        cfg = self.config
        duration = len(chunk) / cfg.sample_rate
        end = at + duration
        if self.state is EndpointState.QUIET:
            if probability >= cfg.threshold:
                self._begin(chunk, at, end, duration)
                return self._maybe_confirm()
            self._remember_preroll(chunk)
            return []

        self._utterance.append(chunk)
        if self.state is EndpointState.STARTING:
            if probability >= cfg.neg_threshold:
                self._voiced(end, duration)
                return self._maybe_confirm()
            self._abandon_start()
            return []

        events: list[EndpointEvent] = []
        if self.state is EndpointState.SPEAKING:
            if probability >= cfg.neg_threshold:
                self._voiced(end, duration)
                events.append(SpeechProgress(voiced_s=self._voiced_s, at=end))
            else:
                self.state = EndpointState.STOPPING
        elif probability >= cfg.threshold:  # STOPPING, and the speaker resumed
            self.state = EndpointState.SPEAKING
            self._voiced(end, duration)
            events.append(SpeechProgress(voiced_s=self._voiced_s, at=end))

        if self.state is EndpointState.STOPPING and end - self._last_voiced_end >= cfg.stop_ms / 1000:
            events.append(self._end(detected_at=end, truncated=False))
        elif end - self._onset >= cfg.max_utterance_s:
            events.append(self._end(detected_at=end, truncated=True))
        return events

    # -- helpers ------------------------------------------------------------------------------

    def _begin(self, chunk: np.ndarray, at: float, end: float, duration: float) -> None:
        self.state = EndpointState.STARTING
        self._utterance = list(self._preroll) + [chunk]
        self._onset = at
        self._voiced_s = duration
        self._last_voiced_end = end

    def _voiced(self, end: float, duration: float) -> None:
        self._voiced_s += duration
        self._last_voiced_end = end

    def _maybe_confirm(self) -> list[EndpointEvent]:
        if self._voiced_s * 1000 >= self.config.start_ms:
            self.state = EndpointState.SPEAKING
            return [SpeechStarted(at=self._onset)]
        return []

    def _abandon_start(self) -> None:
        """A blip too short to be speech: its audio goes back to being pre-roll."""
        self.state = EndpointState.QUIET
        chunks, self._utterance = self._utterance, []
        self._preroll.clear()
        self._preroll_samples = 0
        for chunk in chunks:
            self._remember_preroll(chunk)

    def _remember_preroll(self, chunk: np.ndarray) -> None:
        self._preroll.append(chunk)
        self._preroll_samples += len(chunk)
        limit = self.config.preroll_ms * self.config.sample_rate // 1000
        while self._preroll and self._preroll_samples - len(self._preroll[0]) >= limit:
            self._preroll_samples -= len(self._preroll.popleft())

    def _end(self, detected_at: float, truncated: bool) -> SpeechEnded:
        audio = np.concatenate(self._utterance) if self._utterance else np.zeros(0, np.float32)
        ended = SpeechEnded(
            at=self._last_voiced_end,
            started_at=self._onset,
            detected_at=detected_at,
            audio=audio,
            truncated=truncated,
        )
        self.state = EndpointState.QUIET
        self._utterance = []
        self._preroll.clear()
        self._preroll_samples = 0
        return ended
