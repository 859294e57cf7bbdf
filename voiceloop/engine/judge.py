"""The turn detector's side of the engine: each VAD stop judged in a worker thread, the verdict
posted back to the machine as an event.

Never on the audio path: the frame loop goes on while the model runs (Smart Turn costs about
a Whisper-tiny encoder pass), alongside the speculative transcription started at the same
stop. A detector that fails gives a verdict with `error` set, and the silence window decides,
as if there were none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import numpy as np

from voiceloop.engine.clock import Clock
from voiceloop.engine.events import AskTurnDetector, Event, TurnVerdictReady
from voiceloop.errors import one_line
from voiceloop.turn.base import TurnDetector

SAMPLE_RATE = 16_000
WINDOW_S = 8.0  # the most any detector is given: Smart Turn hears the last 8 s


class TurnJudge:
    def __init__(self, detector: TurnDetector, clock: Clock, post: Callable[[Event], None]) -> None:
        self._detector = detector
        self._clock = clock
        self._post = post
        self._tasks: set[asyncio.Task[None]] = set()

    def ask(self, action: AskTurnDetector) -> None:
        task = asyncio.create_task(self._judge(action))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _judge(self, action: AskTurnDetector) -> None:
        audio = action.audio
        if action.silence_s > 0:
            audio = np.concatenate([audio, np.zeros(round(action.silence_s * SAMPLE_RATE), np.float32)])
        audio = audio[-round(WINDOW_S * SAMPLE_RATE) :]
        clock = self._clock
        try:
            verdict = await clock.run_blocking(self._detector.predict, audio)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken detector is a slower turn, never a stuck one
            self._post(
                TurnVerdictReady(action.turn_id, action.ask, 0.0, True, 0.0, clock.now(), one_line(exc))
            )
            return
        self._post(
            TurnVerdictReady(
                action.turn_id,
                action.ask,
                verdict.probability,
                verdict.complete,
                round(verdict.elapsed_ms, 1),
                clock.now(),
            )
        )

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
