"""The half of the duplex engine that runs on PortAudio's thread(s).

Kept apart so that everything the audio callback may touch is in one short file: it moves one
block between a ring and the binding's buffer, stamps it, counts what went wrong and wakes
the loop. It never resamples, never takes a lock, never allocates more than the views its
binding hands it. `DeviceDuplex` (duplex.py) is the loop half and inherits this one."""

from __future__ import annotations

import asyncio

import numpy as np

from voiceloop.audio.devices.plan import StreamPlan
from voiceloop.audio.devices.rings import BlockRing
from voiceloop.audio.devices.stats import StreamStats

START_CALLBACKS = 64  # callbacks whose arrival times pin each stream's start


class CallbackSide:
    """Backends call `_on_input` / `_on_output` from their callbacks and `_on_failure` when
    PortAudio ends a stream. The loop half sets up the rings and `plan` before any callback."""

    # Set by the loop half: read here, never written here (`_wake_pending` excepted: the
    # callback raises it, the loop lowers it, so each wake is scheduled once).
    plan: StreamPlan | None
    _loop: asyncio.AbstractEventLoop | None
    _wake: asyncio.Event | None
    _wake_pending: bool
    _closed: bool
    _out_blocks: int

    def __init__(self) -> None:
        self.stats = StreamStats()
        self._in_ring: BlockRing | None = None
        self._out_ring: BlockRing | None = None
        self._input_seq = 0
        self._out_arrivals = np.zeros(START_CALLBACKS, dtype=np.float64)
        self._out_callbacks = 0
        # (ring position, loop-clock DAC time) of the last real block the speaker played:
        # one tuple, so the loop never reads a position with another block's time.
        self._last_played: tuple[int, float] | None = None
        self._last_output_at: float | None = None  # when the speaker last asked for a block
        self._failure: str | None = None

    def _on_input(self, samples: np.ndarray, loop_now: float) -> None:
        """Stores one mic block (a mono view), stamped with its arrival on the loop clock.

        Not PortAudio's ADC time: through ALSA's pulse plugin that read half a second off
        for the stream's first second. Arrival only ever errs late, so the loop's clock model
        takes the earliest arrivals (see `_track_clock`)."""
        ring = self._in_ring
        assert ring is not None
        seq = self._input_seq
        self._input_seq = seq + 1
        if ring.full():
            self.stats.input_overruns += 1
        else:
            slot = ring.written % ring.slots
            ring.data[slot, : samples.shape[0]] = samples
            ring.stamp[slot] = loop_now
            ring.seq[slot] = seq
            ring.written += 1
        if not self._wake_pending and self._loop is not None:
            self._wake_pending = True
            self._loop.call_soon_threadsafe(self._set_wake)

    def _on_output(
        self, target: np.ndarray | None, dac_time: float, stream_now: float, loop_now: float
    ) -> np.ndarray | None:
        """Fills `target` (a mono view) with the next speaker block, or returns the slot's
        array for a backend that copies it out itself; silence and a count on underrun."""
        ring = self._out_ring
        assert ring is not None
        self._last_output_at = loop_now
        count = self._out_callbacks
        if count < START_CALLBACKS:
            self._out_arrivals[count] = loop_now
            self._out_callbacks = count + 1
        if ring.available() == 0:
            self.stats.output_underruns += 1
            if self._out_blocks == 0:
                self.stats.startup_underruns += 1
            if target is not None:
                target.fill(0.0)
            return None
        position = ring.read
        slot = position % ring.slots
        block = ring.data[slot]
        if target is not None:
            target[:] = block
        if ring.seq[slot] >= 0:  # not the silent prefill
            if dac_time > 0:
                self._last_played = (position, dac_time + (loop_now - stream_now))
            else:
                self._last_played = (position, loop_now + (self.plan.output_latency_s if self.plan else 0.0))
        ring.read = position + 1
        return block

    def _on_failure(self, message: str) -> None:
        """The stream ended under us (called from PortAudio's thread)."""
        if self._closed:
            return
        self._failure = message
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._set_wake)
            except RuntimeError:  # the loop is already closed
                pass

    def _set_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()
