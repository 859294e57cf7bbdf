"""The engine both PortAudio backends (sounddevice, PyAudio) share: the event loop's half.

The engine's shape (DESIGN.md, "Duplex audio"):

- The audio callback only moves fixed-size blocks between two preallocated single-producer,
  single-consumer rings (`BlockRing`) and counts what went wrong (callbacks.py).
- The event loop does the rest (here): soxr resamples mic blocks to 16 kHz 10 ms frames, and
  keeps `audio.buffer_ms` of speaker audio queued, pulled 10 ms at a time from the playback
  queue and resampled to the device rate. Mic sample n and speaker sample n share one 16 kHz
  clock: speaker sample n plays a constant `delay_s` before mic sample n is captured, so the
  canceller's reference for mic frame n is the speaker `delay_s - lead` back.
- Keeping that constant is what the xrun handling is for: a mic block the loop was too slow
  to take is replaced by silence, and for every block the speaker had to play as silence (an
  underrun) the loop later drops one, so the speaker never falls behind for good.

The delay starts from `aec.delay_ms` when set (what `voiceloop calibrate` measures), else from
PortAudio's DAC timestamps (38 ms too long through PulseAudio here), and the echo tracker
(`EchoDelayTracker`, tracker.py) then follows the delay actually heard whenever the speaker
plays: it returns what it hears and this engine applies it (`adopt_measured_delay`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceloop.audio.base import AudioDeviceError, DuplexFrame
from voiceloop.audio.devices.lockstep import LockstepDelay
from voiceloop.audio.devices.plan import StreamPlan
from voiceloop.audio.devices.rings import BlockRing, SpeakerHistory
from voiceloop.audio.devices.teardown import run_with_timeout
from voiceloop.audio.devices.tracker import EchoDelayTracker
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE

if TYPE_CHECKING:
    from voiceloop.audio.playback import PlaybackQueue
    from voiceloop.config import Settings

log = logging.getLogger(__name__)

STARTUP_GRACE_S = 3.0  # a sound server can take a while to hand over the first block
MAX_GAP_S = 10.0
INPUT_RING_S = 4.0  # how long the loop may stall before mic blocks are dropped
# A wait for the mic that ends this long after it was due did not end because the device went
# quiet: this process did not run (a virtual machine paused, a suspend, a host that took the
# CPU), and the audio threads did not either. Seen once in CI: "no sound from the input for
# 31.8 s" from a 2 s wait, and the same test passed on its rerun. Reproduced by stopping the
# process (SIGSTOP) for 3 s: both backends gave up the moment it woke, with the stream fine.
LATE_WAKE_S = 1.0


def device_gone_error(what: str, input_name: str, output_name: str) -> AudioDeviceError:
    return AudioDeviceError(
        f"audio stopped: {what}. The device ('{input_name}' in, '{output_name}' out) was "
        "unplugged or the sound server went away (check `pactl info`). Reconnect it and start "
        "again; `voiceloop devices` shows what is there now."
    )


class DeviceDuplex(LockstepDelay):
    """The DuplexAudio contract over a PortAudio stream; backends supply open/start/stop and
    call `_on_input` / `_on_output` (callbacks.py) from their callbacks; the delay it aligns
    by is kept in lockstep.py."""

    backend = "portaudio"

    def __init__(self, settings: Settings) -> None:
        audio = settings.audio
        super().__init__(None if settings.aec.delay_ms is None else settings.aec.delay_ms / 1000)
        self.settings = settings
        self.block_ms = audio.block_ms
        self.buffer_ms = audio.buffer_ms
        self.quality = audio.resample_quality
        self.lead_s = audio.reference_lead_ms / 1000
        self.stall_timeout_s = audio.stall_timeout_s
        self.queue_s = 0.0
        self._out_blocks = 0
        self.plan: StreamPlan | None = None
        self.name = self.backend
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._wake_pending = False
        self._closed = False
        self._running = False
        # Sees every mic frame with the speaker frame pulled beside it (lockstep, before any
        # delay): what calibration and the bench correlate.
        self.tap: Callable[[np.ndarray, np.ndarray], None] | None = None
        self._tracker: EchoDelayTracker | None = None

    # -- backend hooks -----------------------------------------------------------------------

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def _is_active(self) -> bool:
        return True

    # -- setting up ----------------------------------------------------------------------------

    def _prepare(self, plan: StreamPlan) -> None:
        self.plan = plan
        rates = (
            f"{plan.input_rate} Hz"
            if plan.input_rate == plan.output_rate
            else f"{plan.input_rate}/{plan.output_rate} Hz"
        )
        self.name = f"{self.backend}: {plan.input.name} → {plan.output.name} ({rates})"
        in_block_s = plan.input_block / plan.input_rate
        out_block_s = plan.output_block / plan.output_rate
        self._in_ring = BlockRing(max(8, int(INPUT_RING_S / in_block_s)), plan.input_block)
        self._prefill = max(1, round(self.buffer_ms / 1000 / out_block_s))
        self._out_ring = BlockRing(self._prefill * 2 + 8, plan.output_block)
        # Speaker sample n goes out after the silent prefill and comes back as mic sample n
        # one device round trip later: delay_s = own_s + the device's output-to-input delay.
        self.queue_s = self._prefill * out_block_s
        self._initial_delay(plan)

    # -- DuplexAudio --------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic()  # asyncio's clock, and the one the callback stamps with

    def true_speech_end(self, before: float) -> float | None:
        return None

    async def frames(self, playback: PlaybackQueue) -> AsyncIterator[DuplexFrame]:
        import soxr

        plan = self.plan
        assert plan is not None and self._in_ring is not None and self._out_ring is not None
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        in_ring, out_ring = self._in_ring, self._out_ring
        self._in_rs = soxr.ResampleStream(
            plan.input_rate, SAMPLE_RATE, 1, dtype="float32", quality=self.quality
        )
        self._out_rs = soxr.ResampleStream(
            SAMPLE_RATE, plan.output_rate, 1, dtype="float32", quality=self.quality
        )
        self._mic_pending = np.zeros(0, dtype=np.float32)
        self._out_pending = np.zeros(0, dtype=np.float32)
        self._mic_index = 0  # 16 kHz mic samples delivered so far
        self._speaker_index = 0  # 16 kHz speaker samples pulled so far (the same clock)
        self._blocks_in = 0  # input blocks consumed, silence substitutes included
        self._out_blocks = 0  # output blocks formed from resampler output (dropped included)
        self._underruns_compensated = 0
        self._history = SpeakerHistory()
        self._tracker = EchoDelayTracker(trust_current=self.fixed_delay_s is not None)
        self._stream_t0 = None  # the clock starts with this stream (lockstep.py)
        self._clock_base = 0.0
        self._last_arrival = 0.0
        for seq in range(self._prefill):  # silence ahead, so the first bursts find something
            slot = out_ring.written % out_ring.slots
            out_ring.data[slot] = 0.0
            out_ring.seq[slot] = -1 - seq
            out_ring.written += 1
        self._running = True
        self._start()
        started = time.monotonic()
        self._resumed_at = ran_at = started
        try:
            while not self._closed:
                if self._failure is not None:
                    raise device_gone_error(self._failure, plan.input.name, plan.output.name)
                now = time.monotonic()
                if now - ran_at > self.stall_timeout_s + LATE_WAKE_S:
                    self._woke_from_a_freeze(now, now - ran_at)
                ran_at = now
                if in_ring.available() == 0:
                    self._wake_pending = False
                    self._wake.clear()
                    if in_ring.available():
                        continue
                    if not await self._mic_woke(started):
                        break
                    ran_at = time.monotonic()
                    continue
                frames = self._take_block()
                self._check_output_alive(plan, started)
                self._top_up(playback)
                for frame in frames:
                    if self._closed:
                        break
                    yield frame
        finally:
            self._running = False
            await self.aclose()

    async def _mic_woke(self, started: float) -> bool:
        """Waits for the next mic block; False if the stream was closed meanwhile. A wait that
        outlasted its timeout by LATE_WAKE_S was a freeze of this process, not of the device,
        whichever ended it: the device gets a whole wait of its own after it."""
        plan, wake = self.plan, self._wake
        assert plan is not None and wake is not None
        waited_from = time.monotonic()
        timeout = self.stall_timeout_s + (STARTUP_GRACE_S if self._blocks_in == 0 else 0.0)
        timed_out = False
        try:
            # Not asyncio.wait_for: on Python 3.11 it returns normally when the cancel lands
            # in the same loop step as the mic's wake, and the stream reads on; `serve`'s
            # Ctrl-C then waited for its session for ever.
            async with asyncio.timeout(timeout):
                await wake.wait()
        except TimeoutError:
            if self._closed:
                return False
            timed_out = True
        now = time.monotonic()
        if now - waited_from > timeout + LATE_WAKE_S:
            self._woke_from_a_freeze(now, now - waited_from)
            return True
        if timed_out:
            silent = now - (waited_from if self._blocks_in else started)
            what = f"no sound from the input for {silent:.1f} s"
            if not self._is_active():
                what = "PortAudio ended the stream"
            raise device_gone_error(what, plan.input.name, plan.output.name) from None
        return True

    def _woke_from_a_freeze(self, now: float, frozen_s: float) -> None:
        """Counts the freeze and starts both liveness clocks again from now."""
        self.stats.process_freezes += 1
        self._resumed_at = now
        log.warning(
            "the audio loop did not run for %.1f s (this process was paused): waiting for the device again",
            frozen_s,
        )

    def _check_output_alive(self, plan: StreamPlan, started: float) -> None:
        """With separate streams the mic can go on after the speaker died; say so."""
        now = time.monotonic()
        last = self._last_output_at if self._last_output_at is not None else started + STARTUP_GRACE_S
        last = max(last, self._resumed_at)
        if now - last > self.stall_timeout_s:
            raise device_gone_error(
                f"the speaker has taken no audio for {now - last:.1f} s", plan.input.name, plan.output.name
            )

    def _take_block(self) -> list[DuplexFrame]:
        """One mic block in, its 16 kHz frames (with their reference) out."""
        plan, ring = self.plan, self._in_ring
        assert plan is not None and ring is not None
        slot = ring.read % ring.slots
        seq, stamp = int(ring.seq[slot]), float(ring.stamp[slot])
        block_s = ring.block / plan.input_rate
        # Blocks the callback had to drop (the loop stalled): silence in their place keeps the
        # mic's clock, and the lockstep delay, where they were. At most MAX_GAP_S of it.
        lost = min(max(0, seq - self._blocks_in), int(MAX_GAP_S / (ring.block / plan.input_rate)))
        self._blocks_in = seq - lost
        blocks = [np.zeros(ring.block, dtype=np.float32)] * lost + [ring.data[slot].copy()]
        ring.read += 1
        self._track_clock(stamp, self._blocks_in + lost, block_s)
        frames: list[DuplexFrame] = []
        for block in blocks:
            self._blocks_in += 1
            mic = self._in_rs.resample_chunk(block)
            self._mic_pending = np.concatenate([self._mic_pending, mic]) if self._mic_pending.size else mic
            while self._mic_pending.size >= FRAME_SAMPLES:
                frame, self._mic_pending = (
                    self._mic_pending[:FRAME_SAMPLES].copy(),
                    self._mic_pending[FRAME_SAMPLES:],
                )
                frames.append(self._pair(frame))
        return frames

    def _pair(self, mic_frame: np.ndarray) -> DuplexFrame:
        """Mic sample n was captured `delay_s` after speaker sample n played: the reference is
        the speaker `delay_s - lead` back, what the room heard during it `delay_s` back."""
        n = self._mic_index
        captured_at = self._captured_at(n)
        delay = round(self.delay_s * SAMPLE_RATE)
        lead = round(self.lead_s * SAMPLE_RATE)
        pulled = self._speaker_index
        reference = self._history.read(n - max(0, delay - lead), FRAME_SAMPLES, pulled)
        heard = self._history.read(n - delay, FRAME_SAMPLES, pulled)
        if self.tap is not None or self._tracker is not None:
            same_index = self._history.read(n, FRAME_SAMPLES, pulled)
            if self.tap is not None:
                self.tap(mic_frame, same_index)
            if self._tracker is not None:
                adopted = self._tracker.add(mic_frame, same_index, self.delay_s)
                if adopted is not None:
                    self.adopt_measured_delay(adopted)
        self._mic_index = n + FRAME_SAMPLES
        self._settle_delay(captured_at)
        return DuplexFrame(
            mic_frame=mic_frame, reference_frame=reference, captured_at=captured_at, speaker_frame=heard
        )

    def _top_up(self, playback: PlaybackQueue) -> None:
        """Keeps `buffer_ms` of speaker audio queued for the callback, pulling 10 ms frames.

        Driven by what the speaker has used, not by mic frames: soxr hands mic audio over in
        bursts of 20-40 ms, and a speaker fed only behind them ran dry (underruns). When it
        is pulled does not move the echo: speaker sample n always plays `delay_s` before mic
        sample n is captured, as long as the output stream stays continuous."""
        plan, ring = self.plan, self._out_ring
        assert plan is not None and ring is not None
        target = self.buffer_ms / 1000
        for _ in range(int(target * SAMPLE_RATE / FRAME_SAMPLES) + 8):
            queued = (
                ring.available() * ring.block + self._out_pending.size + self._out_rs.delay()
            ) / plan.output_rate
            if queued >= target:
                break
            n = self._speaker_index
            speaker = playback.pull(FRAME_SAMPLES, at=self._captured_at(n) + self.delay_s)
            self._history.write(n, speaker)
            self._speaker_index = n + FRAME_SAMPLES
            self._queue_speaker(speaker)

    def _queue_speaker(self, speaker: np.ndarray) -> None:
        plan, ring = self.plan, self._out_ring
        assert plan is not None and ring is not None
        out = self._out_rs.resample_chunk(speaker)
        self._out_pending = np.concatenate([self._out_pending, out]) if self._out_pending.size else out
        owed = self.stats.output_underruns - self._underruns_compensated
        while self._out_pending.size >= ring.block:
            block, self._out_pending = self._out_pending[: ring.block], self._out_pending[ring.block :]
            block_index = self._out_blocks
            self._out_blocks += 1
            if owed > 0:  # the speaker played silence for a block: drop one to stay on time
                owed -= 1
                self._underruns_compensated += 1
                continue
            if ring.full():
                self.stats.output_overruns += 1
                continue
            slot = ring.written % ring.slots
            ring.data[slot] = block
            ring.seq[slot] = block_index
            ring.written += 1
            self._measure_delay(ring.written - 1, block_index)

    # -- closing ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        await run_with_timeout(self._stop, 3.0)

    def describe(self) -> dict[str, Any]:
        """For the session log and `voiceloop run`'s banner."""
        plan = self.plan
        info: dict[str, Any] = {"backend": self.backend}
        if plan is not None:
            info.update(
                input=plan.input.name,
                output=plan.output.name,
                input_rate=plan.input_rate,
                output_rate=plan.output_rate,
                block_ms=round(plan.input_block / plan.input_rate * 1000, 1),
                queue_ms=round(self.queue_s * 1000, 1),
                portaudio_latency_ms=[
                    round(plan.input_latency_s * 1000, 1),
                    round(plan.output_latency_s * 1000, 1),
                ],
            )
        tracker = self._tracker
        if tracker is not None:
            info["echo_delay_changes_ms"] = [round((d - self.own_s) * 1000, 1) for d in tracker.changes]
        info.update(
            delay_ms=round((self.delay_s - self.own_s) * 1000, 1),  # the device's part
            start_offset_ms=round(self.start_offset_s * 1000, 1),
            delay_source=self.delay_source,
            portaudio_delay_ms=self.portaudio_delay_ms,
            reference_lead_ms=round(self.lead_s * 1000, 1),
        )
        return info
