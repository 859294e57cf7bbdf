"""Turns per-chunk speech probabilities into utterances: QUIET → STARTING → SPEAKING → STOPPING.

Pure logic over (chunk, probability, time): no model, no clock, so tests drive it with
synthetic sequences. Modelled on Pipecat's VAD analyzer, with differences that matter for
latency and barge-in:

- Silero's probability trails the end of speech by 50-90 ms (measured here on espeak voices),
  and a 32 ms chunk grid adds up to 32 ms more. So the end of speech is placed at the end of
  the last *loud* 8 ms block of the voiced audio (loud = within `loud_range_db` of the
  utterance's peak and clear of the noise floor), and the stop window is timed from there.
  Where noise is as loud as speech every block is loud, and this falls back to silero's
  verdict alone.
- Between chunks, `poll` checks each 10 ms frame: once in STOPPING, a quiet frame that
  completes the stop window ends the utterance without waiting for the next chunk.
- Voiced time is reported as it grows, so the engine can tell a cough from a barge-in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

import numpy as np

from voiceloop.engine.events import SpeechEnded, SpeechPaused, SpeechProgress, SpeechStarted

EndpointEvent = SpeechStarted | SpeechProgress | SpeechPaused | SpeechEnded


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
    loud_range_db: float = 30.0  # blocks this far below the utterance's peak count as quiet
    noise_margin_db: float = 8.0  # ...and so do blocks this close to the noise floor
    block_samples: int = 128  # 8 ms: the resolution of the end-of-speech estimate
    speculate_ms: int = 0  # report a pause this long (< stop_ms) so ASR can start early; 0 = off


def at_judged_level(kept: np.ndarray, judged: np.ndarray) -> np.ndarray:
    """`kept` (the recogniser's copy of a chunk) brought down to the level of `judged` (the copy
    VAD heard), never up: what the pre-roll holds.

    Before the onset VAD heard no one, so where the echo canceller cut a chunk harder for VAD
    (a reply's residual echo), the recogniser is given that cut too, as one gain over the chunk,
    which keeps the copy's own samples and timing. Residual echo left 40 dB under the user in the
    pre-roll was still words to pocketsphinx: tests/test_soak.py's "stop" over a long reply came
    back as "what can" or "what is the" (the last word stretched over the command) in 2 of 33
    runs; the same inputs with the pre-roll 10 dB down or more, as "stop" each time. Between
    replies the two copies carry the same sound and the gain is 1."""
    if kept is judged:
        return kept  # one copy only (no canceller, or one that keeps none)
    kept_power = float(np.dot(kept, kept))
    judged_power = float(np.dot(judged, judged))
    if kept_power <= judged_power or kept_power == 0.0:
        return kept
    return (kept * np.float32(np.sqrt(judged_power / kept_power))).astype(np.float32, copy=False)


class Endpointer:
    def __init__(self, config: EndpointConfig | None = None) -> None:
        self.config = config or EndpointConfig()
        self._noise_db: float | None = None  # survives utterances: the room's noise does too
        self.reset()

    def reset(self) -> None:
        self.state = EndpointState.QUIET
        self._preroll: deque[np.ndarray] = deque()
        self._preroll_samples = 0
        self._utterance: list[np.ndarray] = []
        self._starting_as_preroll: list[np.ndarray] = []  # an onset's chunks, should it be a blip
        self._utterance_preroll = 0
        self._onset = 0.0
        self._voiced_s = 0.0
        self._last_voiced_end = 0.0
        self._peak_db = -120.0
        self._peak_probability = 0.0
        self._pause_reported = False

    @property
    def in_speech(self) -> bool:
        return self.state in (EndpointState.SPEAKING, EndpointState.STOPPING)

    @property
    def utterance_preroll(self) -> int:
        """Samples of pre-roll (from before the onset) at the head of the utterance's audio: a
        reader that wants less of it skips the difference."""
        return self._utterance_preroll

    def utterance_tail(self, skip: int) -> np.ndarray:
        """The utterance's audio so far (pre-roll included) after its first `skip` samples: a
        live transcriber reads it as it grows, copying only what it has not had yet."""
        remaining = sum(len(chunk) for chunk in self._utterance)
        if remaining <= skip:
            return np.zeros(0, np.float32)
        parts: list[np.ndarray] = []
        for chunk in reversed(self._utterance):
            if remaining <= skip:
                break
            parts.append(chunk)
            remaining -= len(chunk)
        return np.concatenate(parts[::-1])[skip - remaining :]

    def feed(
        self, chunk: np.ndarray, probability: float, at: float, kept: np.ndarray | None = None
    ) -> list[EndpointEvent]:
        """`at` is the time of the chunk's first sample. `kept`, the same samples as the
        recogniser should hear them, is what the utterance's audio holds (default: `chunk`):
        the echo canceller may cut the chunk VAD judges harder than a recogniser wants."""
        cfg = self.config
        stored = chunk if kept is None else kept
        duration = len(chunk) / cfg.sample_rate
        end = at + duration
        block_db = self._block_levels(chunk)
        if self.state is EndpointState.QUIET:
            if probability >= cfg.threshold:
                self._begin(stored, at, self._note_loud(block_db, at) or end, duration, probability)
                self._starting_as_preroll = [at_judged_level(stored, chunk)]
                return self._maybe_confirm()
            if probability < cfg.neg_threshold:
                self._track_noise(block_db)
            self._remember_preroll(at_judged_level(stored, chunk))
            return []

        self._utterance.append(stored)
        self._peak_probability = max(self._peak_probability, probability)
        if self.state is EndpointState.STARTING:
            self._starting_as_preroll.append(at_judged_level(stored, chunk))
        loud_end = self._note_loud(block_db, at)
        if self.state is EndpointState.STARTING:
            if probability >= cfg.neg_threshold:
                self._voiced(loud_end or self._last_voiced_end, duration)
                return self._maybe_confirm()
            self._abandon_start()
            return []

        events: list[EndpointEvent] = []
        if self.state is EndpointState.SPEAKING:
            # Silero's trailing "maybe" only keeps speech going if there is sound behind it.
            if probability >= cfg.threshold or (probability >= cfg.neg_threshold and loud_end):
                self._voiced(loud_end or self._last_voiced_end, duration)
                events.append(self._progress(end))
            else:
                self.state = EndpointState.STOPPING
        elif probability >= cfg.threshold and loud_end:  # STOPPING, and the speaker resumed
            self.state = EndpointState.SPEAKING
            self._voiced(loud_end, duration)
            events.append(self._progress(end))

        if self.state is EndpointState.STOPPING and end - self._last_voiced_end >= cfg.stop_ms / 1000:
            events.append(self._end(detected_at=end, truncated=False))
        elif end - self._onset >= cfg.max_utterance_s:
            events.append(self._end(detected_at=end, truncated=True))
        else:
            events += self._maybe_pause(end)
        return events

    def _maybe_pause(self, now: float) -> list[EndpointEvent]:
        speculate = self.config.speculate_ms
        if self.state is not EndpointState.STOPPING or not speculate or self._pause_reported:
            return []
        if now - self._last_voiced_end < speculate / 1000:
            return []
        self._pause_reported = True
        audio = np.concatenate(self._utterance) if self._utterance else np.zeros(0, np.float32)
        return [SpeechPaused(at=self._last_voiced_end, started_at=self._onset, paused_at=now, audio=audio)]

    def poll(self, frame: np.ndarray, at: float) -> list[EndpointEvent]:
        """Checks a 10 ms frame that no chunk has covered yet: a quiet frame may close the stop
        window up to a chunk earlier than `feed` could."""
        if self.state is not EndpointState.STOPPING:
            return []
        end = at + len(frame) / self.config.sample_rate
        if max(self._block_levels(frame)) >= self._loud_floor():
            return []  # sound again: let silero judge it
        if end - self._last_voiced_end < self.config.stop_ms / 1000:
            return self._maybe_pause(end)
        return [self._end(detected_at=end, truncated=False)]

    # -- loudness -------------------------------------------------------------------------------

    def _block_levels(self, audio: np.ndarray) -> list[float]:
        size = self.config.block_samples
        blocks = [audio[i : i + size] for i in range(0, len(audio), size)]
        return [
            10.0 * float(np.log10(max(float(np.mean(np.square(block, dtype=np.float64))), 1e-12)))
            for block in blocks
            if block.size
        ]

    def _loud_floor(self) -> float:
        cfg = self.config
        noise = self._noise_db if self._noise_db is not None else -120.0
        return max(self._peak_db - cfg.loud_range_db, noise + cfg.noise_margin_db)

    def _note_loud(self, block_db: list[float], at: float) -> float | None:
        """Updates the utterance's peak; returns the end time of the chunk's last loud block."""
        self._peak_db = max(self._peak_db, *block_db)
        floor = self._loud_floor()
        size_s = self.config.block_samples / self.config.sample_rate
        loud = [index for index, level in enumerate(block_db) if level >= floor]
        return at + (loud[-1] + 1) * size_s if loud else None

    def _track_noise(self, block_db: list[float]) -> None:
        level = float(np.median(block_db))
        if self._noise_db is None:
            self._noise_db = level
            return
        # Fast down, slow up: a noise floor, not an average that speech would drag upwards.
        rate = 0.5 if level < self._noise_db else 0.02
        self._noise_db += rate * (level - self._noise_db)

    # -- helpers ------------------------------------------------------------------------------

    def _begin(self, chunk: np.ndarray, at: float, end: float, duration: float, probability: float) -> None:
        self.state = EndpointState.STARTING
        self._peak_probability = probability
        self._utterance = list(self._preroll) + [chunk]
        self._utterance_preroll = self._preroll_samples
        self._onset = at
        self._voiced_s = duration
        self._last_voiced_end = end

    def _voiced(self, end: float, duration: float) -> None:
        self._pause_reported = False  # speech again: a later pause is a new one
        self._voiced_s += duration
        self._last_voiced_end = max(self._last_voiced_end, end)

    def _maybe_confirm(self) -> list[EndpointEvent]:
        if self._voiced_s * 1000 >= self.config.start_ms:
            self.state = EndpointState.SPEAKING
            return [SpeechStarted(at=self._onset, peak_probability=self._peak_probability)]
        return []

    def _progress(self, end: float) -> SpeechProgress:
        return SpeechProgress(voiced_s=self._voiced_s, at=end, peak_probability=self._peak_probability)

    def _abandon_start(self) -> None:
        """A blip too short to be speech: its audio goes back to being pre-roll."""
        self.state = EndpointState.QUIET
        chunks = self._utterance[: len(self._utterance) - len(self._starting_as_preroll)]
        chunks += self._starting_as_preroll
        self._utterance = []
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
            peak_probability=self._peak_probability,
        )
        self.state = EndpointState.QUIET
        self._utterance = []
        self._preroll.clear()
        self._preroll_samples = 0
        return ended
