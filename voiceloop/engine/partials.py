"""Live partial transcripts (`asr.streaming`): the first pass of "2pass", off the audio path.

It watches the endpointer's events as they go by the dispatcher: from SpeechStarted on, each
time the utterance has grown by a chunk (600 ms) it hands the new audio to a worker thread,
which feeds the streaming model (`voiceloop.asr.paraformer_streaming`) and posts back what it
has heard so far as a `PartialTranscript`. The loop thread only copies new samples and puts
them on a queue: a frame never waits on the model. When the recogniser decodes at pauses
(`voiceloop.asr.segments`), each pause also reserves the audio up to it and the worker decodes
that segment with the offline model, so the endpoint leaves only the last piece to decode. At SpeechEnded the utterance is closed:
the worker skips its remaining chunks (the offline recogniser needs the CPU for the final,
accurate text), and a partial that comes back late is dropped rather than shown over it.

The streaming model gets only the last `STREAMING_PREROLL_MS` of the VAD's pre-roll (the
offline pass gets all of it). A chunk's text covers the audio up to its look-ahead (half a
chunk), so with the whole 300 ms pre-roll the first 600 ms chunk would decode only what came
before the onset, and the first words would wait for the second chunk, ~0.9 s after the onset;
starting at the onset (less the VAD's lag) the first chunk hears 300 ms of speech and its text
comes ~0.6 s after the onset plus its decode (scripts/bench_asr_cpu.py --two-pass).

The machine never sees partials: they do not take part in turn-taking, only in showing.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from voiceloop.asr.base import StreamingRecognizer
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.engine.clock import Clock
from voiceloop.engine.events import (
    Event,
    PartialTranscript,
    SpeechEnded,
    SpeechPaused,
    SpeechProgress,
    SpeechStarted,
)
from voiceloop.errors import one_line
from voiceloop.session.log import SessionLog
from voiceloop.vad.endpointer import Endpointer

KEPT_SILENCE = int(0.05 * SAMPLE_RATE)  # a segment ends 50 ms into its pause
# One silero chunk: the onset is the start of the first chunk that scored as speech, and a soft
# first sound may sit in the chunk before it; the stream starts there.
STREAMING_PREROLL_MS = 32


class PartialTranscriber:
    def __init__(
        self,
        streamer: StreamingRecognizer,
        endpointer: Endpointer,
        clock: Clock,
        session: SessionLog,
        publish: Callable[[PartialTranscript], None],
        on_error: Callable[[str], None],
        primer: Any = None,
    ) -> None:
        self._streamer = streamer
        self._endpointer = endpointer
        self._clock = clock
        self._session = session
        self._publish = publish
        self._on_error = on_error
        self._primer = primer  # a PrefixDecodingRecognizer (reserve/decode), or None
        self._utterance = 0  # the session's utterance count; the live one, while `_live`
        self._live = False
        self._sent = 0  # samples of the live utterance already handed to the worker
        # (utterance, audio, segment): new audio to stream, or (with a segment) a prefix to decode.
        self._work: queue.SimpleQueue[tuple[int, np.ndarray, Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failed = False

    def observe(self, event: Event) -> None:
        """Called on the loop thread with every event, before the machine sees it."""
        if isinstance(event, SpeechStarted):
            self._utterance += 1
            kept = STREAMING_PREROLL_MS * SAMPLE_RATE // 1000
            self._live, self._sent = True, max(0, self._endpointer.utterance_preroll - kept)
        elif isinstance(event, SpeechEnded):
            self._live = False
        elif isinstance(event, SpeechProgress | SpeechPaused) and self._live:
            if not self._failed:
                self._send_new_audio()
            if isinstance(event, SpeechPaused) and self._primer is not None:
                self._reserve_segment(event)

    def _send_new_audio(self) -> None:
        audio = self._endpointer.utterance_tail(self._sent)
        if len(audio) < self._streamer.chunk_samples:
            return
        self._sent += len(audio)
        self._put((self._utterance, audio, None))

    def _reserve_segment(self, pause: SpeechPaused) -> None:
        """The utterance up to this pause (plus a little of its silence) as an offline segment."""
        silence = int((pause.paused_at - pause.at) * SAMPLE_RATE)
        cut = max(0, len(pause.audio) - silence + min(silence, KEPT_SILENCE))
        prefix = pause.audio[:cut]
        segment = self._primer.reserve(prefix)
        if segment is not None:
            self._put((self._utterance, prefix, segment))

    def _put(self, item: tuple[int, np.ndarray, Any]) -> None:
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._run, name="voiceloop-partials", daemon=True)
            self._thread.start()
        self._work.put(item)

    def _run(self) -> None:
        """The worker: one stream (and cache) per utterance, chunks in order. Whatever queued up
        while it worked is taken at once, offline segments first (a transcription may be waiting
        on one), then the streaming audio in one feed: when the CPU is short, partials come less
        often rather than late, and never hold up the final text."""
        stream, current, stopping = None, 0, False
        while not stopping:
            batch = [self._work.get()]
            while True:
                try:
                    batch.append(self._work.get_nowait())
                except queue.Empty:
                    break
            stopping = None in batch
            items = [item for item in batch if item is not None]
            for _, audio, segment in items:
                if segment is not None:
                    self._primer.decode(segment, audio)
            utterance = self._utterance
            fresh = [audio for u, audio, segment in items if segment is None and u == utterance]
            if not fresh or stopping or self._failed or not self._live:
                continue  # an utterance that has ended gets its text from the offline pass
            started = time.perf_counter()
            try:
                if stream is None or utterance != current:
                    stream, current = self._streamer.start(), utterance
                grew = stream.feed(np.concatenate(fresh))
            except Exception as exc:
                self._failed = True
                self._post(self._failure, f"asr.streaming: {one_line(exc)}; partial transcripts are off")
                continue
            if grew:
                elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
                self._post(self._deliver, utterance, stream.text, round(stream.decoded_s, 3), elapsed_ms)

    def _post(self, callback: Callable[..., None], *args: object) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop has closed: the session is over
            pass

    def _deliver(self, utterance: int, text: str, audio_s: float, elapsed_ms: float) -> None:
        if utterance != self._utterance or not self._live:
            return  # late: the endpoint has passed and the offline pass has the say
        event = PartialTranscript(utterance, text, self._clock.now(), audio_s, elapsed_ms)
        self._session.write(
            "partial_transcript", at=event.at, utterance=utterance, text=text, audio_s=audio_s, ms=elapsed_ms
        )
        self._publish(event)

    def _failure(self, message: str) -> None:
        self._session.write("error", at=self._clock.now(), stage="asr", message=message)
        self._on_error(message)

    def close(self) -> None:
        """Stops the worker after the chunk in hand (it is a daemon: exit never waits on it)."""
        self._live = False
        if self._thread is not None:
            self._work.put(None)
            self._thread.join(timeout=0.5)  # the chunk in hand: at most a fraction of a second
            while True:  # segments nobody will decode now: whoever waits on one gets an error
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if item is not None and item[2] is not None:
                    item[2].result.set_exception(RuntimeError("the session ended"))
