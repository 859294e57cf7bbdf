"""The offline pass of "2pass", done piece by piece while the user speaks.

Re-decoding a whole utterance at its endpoint costs its length times the model's real-time
factor (10 s of speech at int8's RTF 0.04: ~0.4 s of waiting). FunASR's own 2pass server
decodes each VAD segment offline as soon as that segment ends; this wrapper does the same
inside one turn: whenever the user pauses (the endpointer's SpeechPaused), the audio up to the
pause is reserved as a segment and decoded by the partials worker (voiceloop/engine/partials.py)
while the user goes on. When the turn's transcription arrives with audio that begins with the
decoded segments, only the rest is decoded, the words are joined and punctuated as one text.
Audio that does not begin with them (another utterance, other hotwords) is decoded whole.

The endpointer ends an utterance only after `vad.stop_ms` of silence following the last voiced
audio, so when the audio after the last segment is shorter than that window (`silent_tail_s`),
the user did not speak again after the pause: it is silence and is not decoded. That saves the
model's fixed cost per call (~115 ms for the real-size int8 SeACo model on this CPU, even for
0.15 s of audio), which is most of what is left at the endpoint once the last segment is done.

Segments are cut only at pauses and are at least MIN_SEGMENT_S long: Paraformer is a
whole-utterance model, and cutting mid-word would cost accuracy that a pause does not.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from voiceloop.asr.base import Transcription
from voiceloop.asr.paraformer import join_units
from voiceloop.audio.frames import SAMPLE_RATE

MIN_SEGMENT_S = 1.0


@dataclass
class _Segment:
    start: int  # samples into the utterance
    end: int
    result: Future[Transcription]


class PrefixDecodingRecognizer:
    """Wraps a recogniser that has `recognize_raw` (no punctuation) and `punctuate`."""

    def __init__(self, inner: Any, silent_tail_s: float = 0.0) -> None:
        self.inner = inner
        self.silent_tail_samples = int(silent_tail_s * SAMPLE_RATE)
        self.name = inner.name
        self.description = f"{getattr(inner, 'description', inner.name)}, decoded at pauses (2pass)"
        self._lock = threading.Lock()
        self._audio = np.zeros(0, np.float32)  # the utterance as far as it has been reserved
        self._segments: list[_Segment] = []
        self._hotwords: list[str] | None = None

    def warm_up(self) -> None:
        self.inner.warm_up()

    def close(self) -> None:
        self.inner.close()

    def reserve(self, prefix: np.ndarray, hotwords: list[str] | None = None) -> _Segment | None:
        """Called on the loop thread at a pause: registers the new audio up to the pause as a
        segment to decode (at once, so a transcription starting now finds it), or None when it is
        too short or the utterance changed. The caller runs `decode(segment)` in its worker."""
        with self._lock:
            known = len(self._audio)
            if (
                known > len(prefix)
                or not np.array_equal(prefix[:known], self._audio)
                or hotwords != self._hotwords
            ):
                self._audio, self._segments, self._hotwords, known = np.zeros(0, np.float32), [], hotwords, 0
            if (len(prefix) - known) / SAMPLE_RATE < MIN_SEGMENT_S:
                return None
            segment = _Segment(known, len(prefix), Future())
            self._audio = np.array(prefix, np.float32)
            self._segments.append(segment)
            return segment

    def reserved_samples(self) -> int:
        """How much of the utterance is reserved as segments (decoded or being decoded): a
        transcription now decodes only what comes after."""
        with self._lock:
            return len(self._audio)

    def decode(self, segment: _Segment, audio: np.ndarray) -> None:
        """The worker's part: `audio` is the reserved prefix (or more of the same utterance)."""
        try:
            result = self.inner.recognize_raw(audio[segment.start : segment.end], self._hotwords)
        except Exception as exc:
            segment.result.set_exception(exc)
        else:
            segment.result.set_result(result)

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        started = time.perf_counter()
        with self._lock:
            reserved, segments = self._audio, list(self._segments)
            usable = (
                segments
                and hotwords == self._hotwords
                and len(reserved) <= len(audio)
                and np.array_equal(audio[: len(reserved)], reserved)
            )
        if not usable:
            return self.inner.transcribe(audio, hotwords)
        try:
            pieces = [(s.start, s.result.result()) for s in segments]
        except Exception:  # a segment failed: decode the whole, as without 2pass
            return self.inner.transcribe(audio, hotwords)
        rest = audio[len(reserved) :]
        if len(rest) >= self.silent_tail_samples:  # else only the stop window's silence is left
            pieces.append((len(reserved), self.inner.recognize_raw(rest, hotwords)))
        units = [unit for _, piece in pieces for unit in piece.text.split()]
        text = self.inner.punctuate(join_units(units))
        timestamps = [
            (unit, start / SAMPLE_RATE + a, start / SAMPLE_RATE + b)
            for start, piece in pieces
            for unit, a, b in piece.timestamps
        ]
        return Transcription(text, len(audio) / SAMPLE_RATE, time.perf_counter() - started, timestamps)
