"""The echo-delay tracker: the output-to-input delay as the mic actually hears it.

It only decides; the device applies. `add` takes each mic frame with the speaker frame of the
same lockstep index and the delay the device uses now, and returns a `DelayEstimate` when the
echo says the device should move to it (else None), so the tracker can be fed and checked
without a device and never reaches back into one."""

from __future__ import annotations

import asyncio

import numpy as np

from voiceloop.audio.devices.delay import DelayEstimate, estimate_delay
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE


class EchoDelayTracker:
    """Follows the output-to-input delay in the echo of what the speaker plays.

    Measured here on PulseAudio: PortAudio's timestamps put the delay 38 ms too long (a
    reference that late leaves speex cancelling nothing), and sounddevice's full-duplex stream
    let it grow by 6-20 ms over its first minute with no xrun reported. So whenever the
    speaker has played enough in the last WINDOW_S, that window is correlated against the mic
    (GCC-PHAT, in a worker thread, once per EVERY_S). A clear peak is adopted at once when no
    delay was configured; a change from the current delay must show twice in a row. No echo
    (a headset) gives no peak, and then there is nothing to cancel either."""

    WINDOW_S = 2.0
    EVERY_S = 1.0
    MIN_ACTIVE_S = 0.8  # of speaker sound in the window
    MAX_LAG_S = 1.0
    MIN_CHANGE_S = 0.003
    AGREE_S = 0.0015

    def __init__(self, trust_current: bool) -> None:
        size = int(self.WINDOW_S * SAMPLE_RATE)
        self.mic = np.zeros(size, dtype=np.float32)
        self.speaker = np.zeros(size, dtype=np.float32)
        self.active = np.zeros(size // FRAME_SAMPLES, dtype=bool)
        self.frames = 0
        self.trust_current = trust_current  # a configured delay needs confirming before a change
        self.estimates = 0
        self.changes: list[float] = []  # delays adopted, in s
        self._candidate: float | None = None
        self._pending: asyncio.Future[DelayEstimate] | None = None

    def add(
        self, mic_frame: np.ndarray, speaker_frame: np.ndarray, current_delay_s: float
    ) -> DelayEstimate | None:
        """Records one frame pair; returns the estimate to adopt when one has just been
        decided (its `lag_samples` at 16 kHz is the new delay), else None. Must be called
        from the event loop: the correlation runs in its default executor."""
        slot = self.frames % self.active.size
        self.mic[slot * FRAME_SAMPLES : (slot + 1) * FRAME_SAMPLES] = mic_frame
        self.speaker[slot * FRAME_SAMPLES : (slot + 1) * FRAME_SAMPLES] = speaker_frame
        self.active[slot] = float(np.max(np.abs(speaker_frame))) > 0.003  # about -50 dBFS
        self.frames += 1
        adopted = None
        if self._pending is not None and self._pending.done():
            failed = self._pending.cancelled() or self._pending.exception() is not None
            estimate = None if failed else self._pending.result()
            self._pending = None
            if estimate is not None and estimate.clear:
                adopted = self._consider(estimate, current_delay_s)
        self._maybe_start()
        return adopted

    def _maybe_start(self) -> None:
        """Starts the next correlation when one is due and the window holds enough sound."""
        every = int(self.EVERY_S * SAMPLE_RATE / FRAME_SAMPLES)
        if self._pending is not None or self.frames < self.active.size or self.frames % every:
            return
        if self.active.sum() * FRAME_SAMPLES / SAMPLE_RATE < self.MIN_ACTIVE_S:
            return
        start = (self.frames % self.active.size) * FRAME_SAMPLES  # the oldest sample
        speaker, mic = np.roll(self.speaker, -start), np.roll(self.mic, -start)
        self._pending = asyncio.get_running_loop().run_in_executor(
            None, estimate_delay, speaker, mic, int(self.MAX_LAG_S * SAMPLE_RATE)
        )

    def _consider(self, estimate: DelayEstimate, current_delay_s: float) -> DelayEstimate | None:
        self.estimates += 1
        measured = estimate.lag_samples / SAMPLE_RATE
        if not self.trust_current and not self.changes:
            return self._adopt(measured, estimate)
        if abs(measured - current_delay_s) < self.MIN_CHANGE_S:
            self._candidate = None
            return None
        if self._candidate is not None and abs(measured - self._candidate) <= self.AGREE_S:
            return self._adopt(measured, estimate)
        self._candidate = measured
        return None

    def _adopt(self, measured: float, estimate: DelayEstimate) -> DelayEstimate:
        self._candidate = None
        self.changes.append(measured)
        return estimate
