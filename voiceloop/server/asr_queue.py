"""One recogniser shared by every request: a bounded queue, a few worker threads, batches.

A Paraformer instance holds hundreds of MB (GB on a GPU) and is not safe to call from many
threads at once, so the server never loads a second one: requests queue here, `workers`
threads take them in order and hand same-hotword requests that are waiting together to
`transcribe_batch` (one padded forward pass: the GPU's throughput path). When the queue is
full the caller gets `QueueFull` at once, which the API answers with 503 + Retry-After
instead of letting latency grow without bound. Live conversation turns jump the queue: a
person is waiting on those.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from voiceloop.asr.base import IncrementalRecognizer, PartialCallback, SpeechRecognizer, Transcription


class QueueFull(RuntimeError):
    """Every worker is busy and the waiting room is full."""


@dataclass(order=True)
class _Job:
    rank: tuple[int, int]  # (0 for live turns, 1 for requests), arrival order
    audio: np.ndarray = field(compare=False)
    hotwords: tuple[str, ...] | None = field(compare=False)
    future: Future[Transcription] = field(compare=False)
    on_partial: PartialCallback | None = field(default=None, compare=False)


class RecognizerQueue:
    def __init__(
        self, recognizer: SpeechRecognizer, *, workers: int = 1, capacity: int = 64, batch_max: int = 8
    ) -> None:
        self.recognizer = recognizer
        self.workers = workers
        self.capacity = capacity
        self.batch_max = batch_max
        self._jobs: list[_Job] = []
        self._cond = threading.Condition()
        self._order = itertools.count()
        self._in_flight = 0
        self._closed = False
        # Counted under _cond: several workers finish at once.
        self.completed = 0
        self.failed = 0
        self.rejected = 0
        self.batches = 0  # passes through the recogniser, of one request or several
        self.batched = 0  # requests that shared a pass with others
        self.largest_batch = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"asr-worker-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    # -- callers ------------------------------------------------------------------------------

    def submit(
        self,
        audio: np.ndarray,
        hotwords: Sequence[str] | None = None,
        *,
        live: bool = False,
        on_partial: PartialCallback | None = None,
    ) -> Future[Transcription]:
        """Raises QueueFull when `capacity` requests already wait (live turns always get in).
        `on_partial` hears a streaming recogniser's hypotheses (from a worker thread); such a
        job runs on its own, since a batch has no partials to give."""
        future: Future[Transcription] = Future()
        with self._cond:
            if self._closed:
                raise QueueFull("the server is shutting down")
            if not live and len(self._jobs) >= self.capacity and self._in_flight >= self.workers:
                self.rejected += 1  # under _cond already
                raise QueueFull(
                    f"{self._in_flight} recognitions running and {len(self._jobs)} waiting (serve.queue = "
                    f"{self.capacity}); retry shortly"
                )
            words = None if hotwords is None else tuple(hotwords)
            job = _Job((0 if live else 1, next(self._order)), audio, words, future, on_partial)
            bisect.insort(self._jobs, job)
            self._cond.notify()
        return future

    async def transcribe(self, audio: np.ndarray, hotwords: Sequence[str] | None = None) -> Transcription:
        future = self.submit(audio, hotwords)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()  # the client went away: a job not yet started is dropped
            raise

    @property
    def waiting(self) -> int:
        return len(self._jobs)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def stats(self) -> dict[str, int]:
        return {
            "workers": self.workers,
            "capacity": self.capacity,
            "batch_max": self.batch_max,
            "in_flight": self._in_flight,
            "waiting": len(self._jobs),
            "completed": self.completed,
            "failed": self.failed,
            "rejected": self.rejected,
            "batches": self.batches,
            "batched": self.batched,
            "largest_batch": self.largest_batch,
        }

    def close(self, timeout_s: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            for job in self._jobs:
                job.future.cancel()
            self._jobs.clear()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- workers ------------------------------------------------------------------------------

    def _take(self) -> list[_Job] | None:
        with self._cond:
            while not self._jobs and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            first = self._jobs.pop(0)
            batch = [first]
            if hasattr(self.recognizer, "transcribe_batch") and not self._wants_partials(first):
                for job in list(self._jobs):
                    if len(batch) >= self.batch_max:
                        break
                    if (
                        job.hotwords == first.hotwords
                        and job.rank[0] == first.rank[0]
                        and not self._wants_partials(job)
                    ):
                        self._jobs.remove(job)
                        batch.append(job)
            self._in_flight += len(batch)
            return batch

    def _wants_partials(self, job: _Job) -> bool:
        return job.on_partial is not None and isinstance(self.recognizer, IncrementalRecognizer)

    def _work(self) -> None:
        while (taken := self._take()) is not None:
            try:
                self._run([job for job in taken if job.future.set_running_or_notify_cancel()])
            finally:
                with self._cond:
                    self._in_flight -= len(taken)

    def _counted(self, *, size: int, completed: int = 0, failed: int = 0) -> None:
        with self._cond:
            self.batches += 1
            self.largest_batch = max(self.largest_batch, size)
            if size > 1:
                self.batched += size
            self.completed += completed
            self.failed += failed

    def _run(self, batch: list[_Job]) -> None:
        if not batch:
            return
        hotwords = None if batch[0].hotwords is None else list(batch[0].hotwords)
        if len(batch) > 1:
            with contextlib.suppress(Exception):  # one bad clip spoils a batch: then one by one
                outputs = list(self.recognizer.transcribe_batch([job.audio for job in batch], hotwords))  # type: ignore[attr-defined]
                if len(outputs) != len(batch):
                    raise ValueError("transcribe_batch answered a different number of clips")
                # Counted before anyone is answered: a client that asks /info next sees its request.
                self._counted(size=len(batch), completed=len(batch))
                for job, out in zip(batch, outputs, strict=True):
                    job.future.set_result(out)
                return
        for job in batch:
            if job.future.done():
                continue
            words = None if job.hotwords is None else list(job.hotwords)
            try:
                if job.on_partial is not None and isinstance(self.recognizer, IncrementalRecognizer):
                    out = self.recognizer.transcribe_streaming(job.audio, words, job.on_partial)
                else:
                    out = self.recognizer.transcribe(job.audio, words)
            except BaseException as exc:  # noqa: BLE001 - every failure goes to its caller
                self._counted(size=1, failed=1)
                job.future.set_exception(exc)
            else:
                self._counted(size=1, completed=1)
                job.future.set_result(out)


class QueuedRecognizer:
    """The shared recogniser as the conversation loop sees it: same contract, through the queue,
    ahead of file requests. Warm-up and close belong to the server, which owns the model."""

    def __init__(self, queue: RecognizerQueue) -> None:
        self.queue = queue
        self.name = queue.recognizer.name
        self.description = getattr(queue.recognizer, "description", self.name)

    def warm_up(self) -> None:
        return None

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        return self.queue.submit(audio, hotwords, live=True).result()

    def close(self) -> None:
        return None
