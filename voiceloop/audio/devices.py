"""Real sound devices: finding them, saying plainly what is wrong, and the engine that both
PortAudio backends (sounddevice, PyAudio) share.

The engine's shape (DESIGN.md, "Duplex audio"):

- The audio callback only moves fixed-size blocks between two preallocated single-producer,
  single-consumer rings (`BlockRing`) and counts what went wrong. It never resamples, never
  takes a lock, never allocates more than the views its binding hands it.
- The event loop does the rest: soxr resamples mic blocks to 16 kHz 10 ms frames, and keeps
  `audio.buffer_ms` of speaker audio queued, pulled 10 ms at a time from the playback queue
  and resampled to the device rate. Mic sample n and speaker sample n share one 16 kHz
  clock: speaker sample n plays a constant `delay_s` before mic sample n is captured, so the
  canceller's reference for mic frame n is the speaker `delay_s - lead` back.
- Keeping that constant is what the xrun handling is for: a mic block the loop was too slow
  to take is replaced by silence, and for every block the speaker had to play as silence (an
  underrun) the loop later drops one, so the speaker never falls behind for good.

The delay starts from `aec.delay_ms` when set (what `voiceloop calibrate` measures), else from
PortAudio's DAC timestamps (38 ms too long through PulseAudio here), and the echo tracker
(`EchoDelayTracker`) then follows the delay actually heard whenever the speaker plays.
"""

from __future__ import annotations

import asyncio
import ctypes
import difflib
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from voiceloop.audio.base import AudioDeviceError, DuplexFrame
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE

if TYPE_CHECKING:
    from voiceloop.audio.playback import PlaybackQueue
    from voiceloop.config import Settings

Kind = Literal["input", "output"]
COMMON_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)

# PortAudio error codes worth telling apart (portaudio.h).
PA_INVALID_CHANNEL_COUNT = -9998
PA_INVALID_SAMPLE_RATE = -9997
PA_INVALID_DEVICE = -9996
PA_DEVICE_UNAVAILABLE = -9985

# -- listing and finding devices ---------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    default_input: bool = False
    default_output: bool = False

    def channels(self, kind: Kind) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels

    def is_default(self, kind: Kind) -> bool:
        return self.default_input if kind == "input" else self.default_output

    def label(self) -> str:
        return f"'{self.name}' (#{self.index}, {self.host_api})"


def no_devices_error(backend: str) -> AudioDeviceError:
    return AudioDeviceError(
        f"{backend}: PortAudio sees no audio device at all: no sound card and no sound server. "
        "Check that a sound server is running (`pactl info` for PulseAudio or PipeWire) or that "
        "the system sees a card (`arecord -l`, `aplay -l`); in a container, pass the host's "
        "sound server in (e.g. PULSE_SERVER=unix:/run/user/1000/pulse/native)."
    )


def find_device(
    devices: Sequence[DeviceInfo], spec: str | int | None, kind: Kind, backend: str = "audio"
) -> DeviceInfo:
    """The device `spec` names: None = the default, an index, or part of a name (an exact
    name wins). Raises AudioDeviceError that lists close matches when nothing fits."""
    if not devices:
        raise no_devices_error(backend)
    capable = [d for d in devices if d.channels(kind) > 0]
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        default = next((d for d in capable if d.is_default(kind)), None) or (capable[0] if capable else None)
        if default is None:
            raise AudioDeviceError(
                f"no {kind} device: none of the {len(devices)} devices PortAudio sees has {kind} "
                f"channels ({_names(devices)})"
            )
        return default
    if isinstance(spec, int) or spec.strip().lstrip("-").isdigit():
        index = int(spec)
        match = next((d for d in devices if d.index == index), None)
        if match is None:
            raise AudioDeviceError(
                f"no device #{index}: PortAudio lists #{devices[0].index}-#{devices[-1].index}; "
                "`voiceloop devices` shows them"
            )
        if match.channels(kind) == 0:
            raise AudioDeviceError(
                f"device {match.label()} has no {kind} channels; {_pick_hint(capable, kind)}"
            )
        return match
    wanted = spec.strip().lower()
    exact = [d for d in capable if d.name.lower() == wanted]
    if exact:
        return exact[0]
    partial = [d for d in capable if wanted in d.name.lower()]
    if len({d.name for d in partial}) == 1:
        return partial[0]  # one device, possibly under several host APIs: the first listed
    if partial:
        listed = ", ".join(d.label() for d in partial[:8])
        raise AudioDeviceError(
            f"'{spec}' matches several {kind} devices: {listed}. Give more of the name, or the index."
        )
    wrong_way = [d for d in devices if wanted in d.name.lower()]
    if wrong_way:
        raise AudioDeviceError(f"{wrong_way[0].label()} has no {kind} channels; {_pick_hint(capable, kind)}")
    close = close_matches(spec, capable)
    if close:
        suggestion = "close matches: " + ", ".join(d.label() for d in close)
    else:
        suggestion = f"the {kind} devices are: {_names(capable) or 'none'}"
    raise AudioDeviceError(
        f"no {kind} device matches '{spec}'; {suggestion}. `voiceloop devices` lists them all."
    )


def close_matches(spec: str, devices: Sequence[DeviceInfo], limit: int = 5) -> list[DeviceInfo]:
    """Devices whose names look like `spec`: a typo, or a word of it in the name."""
    wanted = spec.strip().lower()
    scored: list[tuple[float, DeviceInfo]] = []
    for device in devices:
        name = device.name.lower()
        ratio = difflib.SequenceMatcher(None, wanted, name).ratio()
        # Compare with the best-matching stretch of the name too: "loopbak" vs "vl_loopback_mic".
        best_part = max(
            (
                difflib.SequenceMatcher(None, wanted, name[i : i + len(wanted)]).ratio()
                for i in range(max(1, len(name) - len(wanted) + 1))
            ),
            default=0.0,
        )
        words = [w for w in wanted.replace("_", " ").replace("-", " ").split() if len(w) >= 3]
        shares_word = any(w in name for w in words)
        score = max(ratio, best_part * 0.95, 0.7 if shares_word else 0.0)
        if score >= 0.6:
            scored.append((score, device))
    scored.sort(key=lambda pair: -pair[0])
    seen: set[str] = set()
    out = []
    for _, device in scored:
        if device.name not in seen:
            seen.add(device.name)
            out.append(device)
    return out[:limit]


def _names(devices: Sequence[DeviceInfo], limit: int = 8) -> str:
    shown = ", ".join(d.label() for d in devices[:limit])
    return shown + (f" and {len(devices) - limit} more" if len(devices) > limit else "")


def _pick_hint(capable: Sequence[DeviceInfo], kind: Kind) -> str:
    return f"the {kind} devices are: {_names(capable) or 'none'}"


def rate_refused_error(
    device: DeviceInfo, kind: Kind, rate: int, accepted: Sequence[int], detail: str
) -> AudioDeviceError:
    ok = ", ".join(str(r) for r in accepted) if accepted else "none of the common rates"
    return AudioDeviceError(
        f"the {kind} device {device.label()} refuses {rate} Hz ({detail}); it accepts {ok} Hz. "
        "Leave audio.sample_rate unset to open each device at its own rate (voiceloop "
        "resamples), or set one it accepts."
    )


def device_gone_error(what: str, input_name: str, output_name: str) -> AudioDeviceError:
    return AudioDeviceError(
        f"audio stopped: {what}. The device ('{input_name}' in, '{output_name}' out) was "
        "unplugged or the sound server went away (check `pactl info`). Reconnect it and start "
        "again; `voiceloop devices` shows what is there now."
    )


_ALSA_HANDLER: Any = None


def silence_alsa_errors() -> None:
    """alsa-lib prints every failed probe and xrun to stderr; PortAudio probes every PCM, so
    a device listing scrolls with noise that means nothing to a user. voiceloop reports the
    errors that matter itself, and counts xruns."""
    global _ALSA_HANDLER
    if _ALSA_HANDLER is not None:
        return
    from ctypes.util import find_library

    name = find_library("asound")
    if name is None:
        return
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return
    handler_type = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
    )
    _ALSA_HANDLER = handler_type(lambda *_: None)
    lib.snd_lib_error_set_handler(_ALSA_HANDLER)


# -- delay estimation ----

CLEAR_PEAK = 4.0  # GCC-PHAT peak over the next-best lag: below this it may be noise-----------------------------------------------------------------------


@dataclass(frozen=True)
class DelayEstimate:
    lag_samples: int  # how much later `recorded` holds `played`
    sample_rate: int
    sharpness: float  # peak over the next-best lag outside the peak: >3 is a clear echo
    correlation: float  # normalised cross-correlation at the lag (1.0 = an exact copy)

    @property
    def delay_ms(self) -> float:
        return self.lag_samples * 1000 / self.sample_rate

    @property
    def clear(self) -> bool:
        return self.sharpness >= CLEAR_PEAK


def estimate_delay(
    played: np.ndarray, recorded: np.ndarray, max_lag: int, sample_rate: int = SAMPLE_RATE
) -> DelayEstimate:
    """GCC-PHAT: the lag at which `recorded` best matches `played` (both on one clock), in
    [0, max_lag]. Phase-only weighting gives a sharp peak even through a room's colouring,
    where plain correlation of speech or a tone gives a broad or periodic one."""
    n = min(played.size, recorded.size)
    x = np.asarray(played[:n], dtype=np.float64)
    y = np.asarray(recorded[:n], dtype=np.float64)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    cross = np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size))
    # PHAT whitening, except where there is next to nothing: whitened, bins of digital
    # silence or rounding noise would weigh as much as the signal and bury the peak.
    magnitude = np.abs(cross)
    cross /= magnitude + 1e-3 * float(np.mean(magnitude)) + 1e-20
    scores = np.fft.irfft(cross, size)[: max_lag + 1]
    lag = int(np.argmax(scores))
    guard = max(1, sample_rate // 1000)  # 1 ms either side belongs to the peak
    rest = np.concatenate([scores[: max(0, lag - guard)], scores[lag + guard + 1 :]])
    floor = float(np.max(np.abs(rest))) if rest.size else 0.0
    sharpness = float(scores[lag]) / max(floor, 1e-12)
    shifted_x, shifted_y = x[: n - lag], y[lag:n]
    denom = float(np.sqrt(np.sum(shifted_x**2) * np.sum(shifted_y**2)))
    correlation = float(np.sum(shifted_x * shifted_y) / denom) if denom > 0 else 0.0
    return DelayEstimate(lag, sample_rate, sharpness, correlation)


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

    def add(self, mic_frame: np.ndarray, speaker_frame: np.ndarray, device: DeviceDuplex) -> None:
        slot = self.frames % self.active.size
        self.mic[slot * FRAME_SAMPLES : (slot + 1) * FRAME_SAMPLES] = mic_frame
        self.speaker[slot * FRAME_SAMPLES : (slot + 1) * FRAME_SAMPLES] = speaker_frame
        self.active[slot] = float(np.max(np.abs(speaker_frame))) > 0.003  # about -50 dBFS
        self.frames += 1
        if self._pending is not None and self._pending.done():
            failed = self._pending.cancelled() or self._pending.exception() is not None
            estimate = None if failed else self._pending.result()
            self._pending = None
            if estimate is not None and estimate.clear:
                self._consider(estimate, device)
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

    def _consider(self, estimate: DelayEstimate, device: DeviceDuplex) -> None:
        self.estimates += 1
        measured = estimate.lag_samples / SAMPLE_RATE
        if not self.trust_current and not self.changes:
            self._adopt(measured, estimate, device)
            return
        if abs(measured - device.delay_s) < self.MIN_CHANGE_S:
            self._candidate = None
            return
        if self._candidate is not None and abs(measured - self._candidate) <= self.AGREE_S:
            self._adopt(measured, estimate, device)
        else:
            self._candidate = measured

    def _adopt(self, measured: float, estimate: DelayEstimate, device: DeviceDuplex) -> None:
        self._candidate = None
        self.changes.append(measured)
        device.adopt_measured_delay(estimate)


# -- the callback side ----------------------------------------------------------------------------


class BlockRing:
    """Preallocated single-producer/single-consumer ring of equal blocks.

    One side is the audio callback, the other the event loop. Each side writes only its own
    counter, after finishing with the slot, so under the GIL neither needs a lock and neither
    can block the other. Full or empty is the caller's to count."""

    def __init__(self, slots: int, block: int) -> None:
        self.slots = slots
        self.block = block
        self.data = np.zeros((slots, block), dtype=np.float32)
        self.stamp = np.zeros(slots, dtype=np.float64)  # loop-clock time of the block's first sample
        self.seq = np.zeros(slots, dtype=np.int64)
        self.written = 0
        self.read = 0

    def available(self) -> int:
        return self.written - self.read

    def full(self) -> bool:
        return self.written - self.read >= self.slots


@dataclass
class StreamStats:
    """What the callback counts; plain ints and a preallocated array it overwrites."""

    callbacks: int = 0  # both directions' callbacks (separate streams count one each)
    input_overruns: int = 0  # mic blocks dropped: the loop did not take them in time
    output_underruns: int = 0  # speaker blocks played as silence: the loop was late
    startup_underruns: int = 0  # ...of which before the loop queued its first block
    output_overruns: int = 0  # speaker blocks dropped: the queue was full
    device_input_overflows: int = 0  # PortAudio's own flags: the device lost input
    device_output_underflows: int = 0  # ...or had nothing to play
    cost_ns: np.ndarray = field(default_factory=lambda: np.zeros(16_384, dtype=np.int64))
    cost_max_ns: int = 0

    @property
    def xruns(self) -> int:
        """Dropped mic blocks and speaker underruns after start-up: what a user would hear."""
        return self.input_overruns + self.output_underruns - self.startup_underruns

    def record_cost(self, elapsed_ns: int) -> None:
        """Two callback threads (PyAudio's separate streams) may race here; a lost sample in
        a statistic is harmless, a lock in a callback is not."""
        self.cost_ns[self.callbacks % self.cost_ns.size] = elapsed_ns
        self.callbacks += 1
        self.cost_max_ns = max(self.cost_max_ns, elapsed_ns)

    def cost_summary_us(self) -> dict[str, float]:
        count = min(self.callbacks, self.cost_ns.size)
        if count == 0:
            return {"median": 0.0, "p99": 0.0, "max": 0.0}
        costs = self.cost_ns[:count] / 1000
        return {
            "median": round(float(np.median(costs)), 1),
            "p99": round(float(np.percentile(costs, 99)), 1),
            "max": round(self.cost_max_ns / 1000, 1),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "callbacks": self.callbacks,
            "input_overruns": self.input_overruns,
            "output_underruns": self.output_underruns,
            "startup_underruns": self.startup_underruns,
            "output_overruns": self.output_overruns,
            "device_input_overflows": self.device_input_overflows,
            "device_output_underflows": self.device_output_underflows,
            "callback_cost_us": self.cost_summary_us(),
        }


# -- the loop side ----------------------------------------------------------------------------


class _History:
    """The speaker samples of the session's last few seconds, by lockstep sample index."""

    def __init__(self, size: int = 1 << 16) -> None:
        self.buffer = np.zeros(size, dtype=np.float32)
        self.size = size

    def write(self, start: int, samples: np.ndarray) -> None:
        idx = (start + np.arange(samples.size)) % self.size
        self.buffer[idx] = samples

    def read(self, start: int, count: int, written: int) -> np.ndarray:
        """Samples [start, start + count); zeros outside [0, written) (not yet pulled)."""
        if start + count <= 0 or start >= written:
            return np.zeros(count, dtype=np.float32)
        out = self.buffer[(start + np.arange(count)) % self.size]
        if start < 0:
            out[:-start] = 0.0
        if start + count > written:
            out[written - start :] = 0.0
        return out


@dataclass(frozen=True)
class StreamPlan:
    """What a backend opened: rates, blocks, names, PortAudio's latency figures."""

    input: DeviceInfo
    output: DeviceInfo
    input_rate: int
    output_rate: int
    input_block: int
    output_block: int
    input_latency_s: float = 0.0
    output_latency_s: float = 0.0


STARTUP_GRACE_S = 3.0  # a sound server can take a while to hand over the first block
DELAY_SETTLE_S = (0.3, 1.0)  # PortAudio's delay is measured over this part of the stream
MAX_DELAY_S = 1.5
MAX_GAP_S = 10.0
START_CALLBACKS = 64  # callbacks whose arrival times pin each stream's start
INPUT_RING_S = 4.0  # how long the loop may stall before mic blocks are dropped
CLOCK_CREEP = 1e-3  # s/s: 20x the worst crystal drift, far below callback jitter


class DeviceDuplex:
    """The DuplexAudio contract over a PortAudio stream; backends supply open/start/stop and
    call `_on_input` / `_on_output` from their callbacks."""

    backend = "portaudio"

    def __init__(self, settings: Settings) -> None:
        audio = settings.audio
        self.settings = settings
        self.block_ms = audio.block_ms
        self.buffer_ms = audio.buffer_ms
        self.quality = audio.resample_quality
        self.lead_s = audio.reference_lead_ms / 1000
        self.stall_timeout_s = audio.stall_timeout_s
        # aec.delay_ms is the device's own output-to-input delay (DAC to ADC, what calibration
        # measures), without voiceloop's speaker queue: changing buffer_ms keeps it valid.
        self.fixed_delay_s = None if settings.aec.delay_ms is None else settings.aec.delay_ms / 1000
        self.queue_s = 0.0
        # With separate streams the speaker may start before the mic and eat into its prefill:
        # this head start, from the first callbacks' arrival times (0 in full duplex).
        self.start_offset_s = 0.0
        self._out_arrivals = np.zeros(START_CALLBACKS, dtype=np.float64)
        self._out_callbacks = 0
        self._in_t0: float | None = None
        self.stats = StreamStats()
        self._out_blocks = 0
        self.plan: StreamPlan | None = None
        self.name = self.backend
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._wake_pending = False
        self._failure: str | None = None
        self._closed = False
        self._running = False
        # (ring position, loop-clock DAC time) of the last real block the speaker played:
        # one tuple, so the loop never reads a position with another block's time.
        self._last_played: tuple[int, float] | None = None
        self._last_output_at: float | None = None  # when the speaker last asked for a block
        self._input_seq = 0
        self._in_ring: BlockRing | None = None
        self._out_ring: BlockRing | None = None
        self._delay_samples_seen: list[float] = []
        self.delay_s = 0.0
        self.delay_source = "unset"
        self.portaudio_delay_ms: float | None = None
        # Sees every mic frame with the speaker frame pulled beside it (lockstep, before any
        # delay): what calibration and the bench correlate.
        self.tap: Callable[[np.ndarray, np.ndarray], None] | None = None
        self._tracker: EchoDelayTracker | None = None
        self.echo_delay_estimate: DelayEstimate | None = None

    # -- backend hooks -----------------------------------------------------------------------

    def _open(self) -> StreamPlan:
        raise NotImplementedError

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
        if self.fixed_delay_s is not None:
            self.delay_s, self.delay_source = self.queue_s + self.fixed_delay_s, "aec.delay_ms"
        else:
            # Until the timestamps have spoken: what PortAudio says its buffers hold.
            self.delay_s = self.queue_s + plan.input_latency_s + plan.output_latency_s
            self.delay_source = "portaudio (provisional)"

    # -- the callback side (called from the audio thread) --------------------------------------

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
        self._history = _History()
        self._tracker = EchoDelayTracker(trust_current=self.fixed_delay_s is not None)
        self._stream_t0: float | None = None
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
        try:
            while not self._closed:
                if self._failure is not None:
                    raise device_gone_error(self._failure, plan.input.name, plan.output.name)
                if in_ring.available() == 0:
                    self._wake_pending = False
                    self._wake.clear()
                    if in_ring.available():
                        continue
                    waited_from = time.monotonic()
                    grace = STARTUP_GRACE_S if self._blocks_in == 0 else 0.0
                    try:
                        await asyncio.wait_for(self._wake.wait(), self.stall_timeout_s + grace)
                    except TimeoutError:
                        if self._closed:
                            break
                        silent = time.monotonic() - (waited_from if self._blocks_in else started)
                        what = f"no sound from the input for {silent:.1f} s"
                        if not self._is_active():
                            what = "PortAudio ended the stream"
                        raise device_gone_error(what, plan.input.name, plan.output.name) from None
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

    def _check_output_alive(self, plan: StreamPlan, started: float) -> None:
        """With separate streams the mic can go on after the speaker died; say so."""
        now = time.monotonic()
        last = self._last_output_at if self._last_output_at is not None else started + STARTUP_GRACE_S
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
                self._tracker.add(mic_frame, same_index, self)
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

    # -- closing ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        await _run_with_timeout(self._stop, 3.0)

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


async def _run_with_timeout(work: Callable[[], None], timeout_s: float) -> bool:
    """Runs blocking device teardown in a daemon thread: PortAudio can hang closing a stream
    whose device vanished, and that must not hang the program (a default-executor thread
    would be joined at exit)."""
    done = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001  # reported below, never raised into the loop
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=target, name="voiceloop-audio-close", daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while not done.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return done.is_set() and not errors


def stop_in_thread(work: Callable[[], None], timeout_s: float = 3.0) -> bool:
    """The blocking twin of `_run_with_timeout`, for code outside an event loop."""
    done = threading.Event()

    def target() -> None:
        try:
            work()
        finally:
            done.set()

    threading.Thread(target=target, name="voiceloop-audio-close", daemon=True).start()
    return done.wait(timeout_s)
