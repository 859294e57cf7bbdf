"""The lockstep clock and the delay the engine aligns by.

Mic sample n and speaker sample n share one 16 kHz index; what the canceller needs is how long
after speaker sample n plays mic sample n is captured (`delay_s`). This is where that figure
comes from and where every source of it lands: `aec.delay_ms` (calibrated), PortAudio's DAC
timestamps against the mic's arrival clock, and the delay heard in the echo, which the tracker
returns and `adopt_measured_delay` applies. The loop half (duplex.py) calls in here; the
callback half's stamps (callbacks.py) are what it measures from.
"""

from __future__ import annotations

import numpy as np

from voiceloop.audio.devices.callbacks import START_CALLBACKS, CallbackSide
from voiceloop.audio.devices.delay import DelayEstimate
from voiceloop.audio.devices.plan import StreamPlan
from voiceloop.audio.frames import SAMPLE_RATE

DELAY_SETTLE_S = (0.3, 1.0)  # PortAudio's delay is measured over this part of the stream
MAX_DELAY_S = 1.5
CLOCK_CREEP = 1e-3  # s/s: 20x the worst crystal drift, far below callback jitter


class LockstepDelay(CallbackSide):
    """The mic's capture clock on the loop clock, and `delay_s` with where it came from
    (`delay_source`)."""

    queue_s: float  # the silent speaker prefill, set when the streams are planned

    def __init__(self, fixed_delay_s: float | None) -> None:
        super().__init__()
        # aec.delay_ms is the device's own output-to-input delay (DAC to ADC, what calibration
        # measures), without voiceloop's speaker queue: changing buffer_ms keeps it valid.
        self.fixed_delay_s = fixed_delay_s
        # With separate streams the speaker may start before the mic and eat into its prefill:
        # this head start, from the first callbacks' arrival times (0 in full duplex).
        self.start_offset_s = 0.0
        self._in_t0: float | None = None
        self._stream_t0: float | None = None
        self._clock_base = 0.0
        self._last_arrival = 0.0
        self._delay_samples_seen: list[float] = []
        self.delay_s = 0.0
        self.delay_source = "unset"
        self.portaudio_delay_ms: float | None = None
        self.echo_delay_estimate: DelayEstimate | None = None

    def _initial_delay(self, plan: StreamPlan) -> None:
        """The delay to start from, once `queue_s` is known."""
        if self.fixed_delay_s is not None:
            self.delay_s, self.delay_source = self.queue_s + self.fixed_delay_s, "aec.delay_ms"
        else:
            # Until the timestamps have spoken: what PortAudio says its buffers hold.
            self.delay_s = self.queue_s + plan.input_latency_s + plan.output_latency_s
            self.delay_source = "portaudio (provisional)"

    def _track_clock(self, arrival: float, block_index: int, block_s: float) -> None:
        """The mic's sample clock on the loop clock: block k arrives at base + k·block + some
        delay that only ever makes it late, so `base` follows the earliest arrivals and creeps
        up slowly (CLOCK_CREEP) to follow a device clock that runs slow against ours."""
        offset = arrival - block_index * block_s
        if block_index < START_CALLBACKS:
            self._in_t0 = offset if self._in_t0 is None else min(self._in_t0, offset)
        if self._stream_t0 is None:
            self._stream_t0, self._clock_base, self._last_arrival = arrival, offset, arrival
            return
        crept = self._clock_base + CLOCK_CREEP * (arrival - self._last_arrival)
        self._clock_base = min(crept, offset)
        self._last_arrival = arrival

    def _captured_at(self, index16: int) -> float:
        """Loop-clock time at which the 16 kHz mic sample `index16` was captured."""
        plan = self.plan
        assert plan is not None
        return self._clock_base + index16 / SAMPLE_RATE - plan.input_latency_s

    def _measure_delay(self, ring_position: int, block_index: int) -> None:
        """PortAudio's view of the output-to-input delay for the block just queued: when the
        DAC will play it (from the last block played) minus when its mic frame was captured."""
        plan = self.plan
        assert plan is not None and self._out_ring is not None
        last = self._last_played
        if last is None or self._stream_t0 is None:
            return
        played_position, played_dac = last
        dac = played_dac + (ring_position - played_position) * self._out_ring.block / plan.output_rate
        index16 = int(block_index * self._out_ring.block * SAMPLE_RATE / plan.output_rate)
        delay = dac - self._captured_at(index16)
        if 0 < delay < MAX_DELAY_S:
            self._delay_samples_seen.append(delay)
            if len(self._delay_samples_seen) > 4096:
                del self._delay_samples_seen[:2048]

    def _settle_delay(self, captured_at: float) -> None:
        if self._stream_t0 is None or self.portaudio_delay_ms is not None:
            return
        elapsed = captured_at - self._stream_t0
        if elapsed < DELAY_SETTLE_S[1]:
            return
        seen = self._delay_samples_seen
        if not seen:
            return
        median = float(np.median(seen[len(seen) // 3 :]))  # past the start-up transient
        self._measure_start_offset()
        self.portaudio_delay_ms = round((median - self.own_s) * 1000, 1)
        if self.delay_source == "echo":
            return  # the echo has spoken already
        if self.fixed_delay_s is not None:
            self.delay_s = self.own_s + self.fixed_delay_s  # now that the head start is known
        else:
            self.delay_s = median
            self.delay_source = "portaudio"

    @property
    def own_s(self) -> float:
        """voiceloop's part of the lockstep delay: the prefill, less the speaker's head start."""
        return self.queue_s - self.start_offset_s

    def _measure_start_offset(self) -> None:
        plan = self.plan
        count = min(self._out_callbacks, START_CALLBACKS)
        if plan is None or count == 0 or self._in_t0 is None:
            return
        out_block_s = plan.output_block / plan.output_rate
        out_t0 = float(np.min(self._out_arrivals[:count] - np.arange(count) * out_block_s))
        self.start_offset_s = self._in_t0 - out_t0

    def adopt_measured_delay(self, estimate: DelayEstimate) -> None:
        """The delay heard in the echo itself replaces PortAudio's estimate."""
        self.delay_s = estimate.lag_samples / SAMPLE_RATE
        self.delay_source = "echo"
        self.echo_delay_estimate = estimate
