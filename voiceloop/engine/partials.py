"""Live partial transcripts (`asr.streaming`): the first pass of "2pass", off the audio path.

It watches the endpointer's events as they go by the dispatcher: from SpeechStarted on, each
time the utterance has grown by a chunk (600 ms) it hands the new audio to a worker thread,
which feeds the streaming model (`voiceloop.asr.paraformer_streaming`) and posts back what it
has heard so far as a `PartialTranscript`. The loop thread only copies new samples and puts
them on a queue: a frame never waits on the model. When the recogniser decodes at pauses
(`voiceloop.asr.segments`), each pause also reserves the audio up to it and a second worker
decodes that segment with the offline model, so the endpoint leaves only the last piece to
decode. Two workers, not one: a segment takes its length times the offline RTF plus ~115 ms,
and a streaming worker that decoded it first held the next partial back by as much (gaps of
0.77-1.2 s after a pause); side by side they share the cores, and the partial is only slowed.
At SpeechEnded the utterance is closed: the streaming worker skips its remaining chunks (the
offline recogniser needs the CPU for the final, accurate text), and a partial that comes back
late is dropped rather than shown over it.

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
        self._stream_work: queue.SimpleQueue[tuple[int, np.ndarray] | None] = queue.SimpleQueue()
        # (prefix audio, its reserved segment): what the offline worker decodes at each pause.
        self._segment_work: queue.SimpleQueue[tuple[np.ndarray, Any] | None] = queue.SimpleQueue()
        self._stream_thread: threading.Thread | None = None
        self._segment_thread: threading.Thread | None = None
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
        if self._stream_thread is None:
            self._stream_thread = self._start(self._run_stream, "voiceloop-partials")
        self._stream_work.put((self._utterance, audio))

    def _reserve_segment(self, pause: SpeechPaused) -> None:
        """The utterance up to this pause (plus a little of its silence) as an offline segment."""
        silence = int((pause.paused_at - pause.at) * SAMPLE_RATE)
        cut = max(0, len(pause.audio) - silence + min(silence, KEPT_SILENCE))
        prefix = pause.audio[:cut]
        segment = self._primer.reserve(prefix)
        if segment is not None:
            if self._segment_thread is None:
                self._segment_thread = self._start(self._run_segments, "voiceloop-2pass")
            self._segment_work.put((prefix, segment))

    def _start(self, target: Callable[[], None], name: str) -> threading.Thread:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    def _run_segments(self) -> None:
        """The offline worker: each reserved segment in order (a transcription may wait on it)."""
        while (item := self._segment_work.get()) is not None:
            prefix, segment = item
            self._primer.decode(segment, prefix)

    def _run_stream(self) -> None:
        """The streaming worker: one stream (and cache) per utterance, chunks in order. Whatever
        queued up while it worked is fed at once: when the CPU is short, partials come less
        often rather than late."""
        stream, current, stopping = None, 0, False
        while not stopping:
            batch = [self._stream_work.get()]
            while True:
                try:
                    batch.append(self._stream_work.get_nowait())
                except queue.Empty:
                    break
            stopping = None in batch
            utterance = self._utterance
            fresh = [item[1] for item in batch if item is not None and item[0] == utterance]
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
        """Stops the workers after the piece in hand (daemons: exit never waits on them)."""
        self._live = False
        if self._stream_thread is not None:
            self._stream_work.put(None)
            self._stream_thread.join(timeout=0.5)  # the chunk in hand: a fraction of a second
        if self._segment_thread is not None:
            self._segment_work.put(None)
            self._segment_thread.join(timeout=0.5)
            while True:  # segments nobody will decode now: whoever waits on one gets an error
                try:
                    item = self._segment_work.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[1].result.set_exception(RuntimeError("the session ended"))
