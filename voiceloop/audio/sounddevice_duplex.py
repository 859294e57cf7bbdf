"""`audio.backend = "sounddevice"`: PortAudio through sounddevice, as an input and an output
stream (`audio.duplex = "separate"`, the default) or as one full-duplex stream (`"full"`).

One full-duplex stream looks like the safer shape (one callback takes the mic block and gives
the speaker block), but it is not sample-locked everywhere: through ALSA's pulse plugin its
mic-to-speaker delay grew by 6-20 ms over the first seconds, samples slipping with no xrun
flagged, while separate streams held the delay to the sample (and 60 ms shorter). The engine
keeps separate streams in lockstep (voiceloop.audio.devices), and its echo tracker follows
whatever drift remains. Everything else (rings, resampling, the delay) is that shared engine.

sounddevice initialises PortAudio when it is imported and PortAudio reads its device list
(and, through ALSA's pulse plugin, PULSE_SERVER) only then, so a device plugged in later, or
a sound server started later, is invisible until it re-initialises. `refresh()` does that
whenever no stream of ours is open.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceloop.audio.base import AudioDeviceError
from voiceloop.audio.devices import (
    PA_INVALID_CHANNEL_COUNT,
    PA_INVALID_SAMPLE_RATE,
    DeviceDuplex,
    DeviceInfo,
    Kind,
    StreamPlan,
    busy_hint,
    candidate_rates,
    find_device,
    own_rate,
    rate_refused_error,
    silence_alsa_errors,
)

if TYPE_CHECKING:
    from voiceloop.config import Settings

_open_streams = 0


def _sd() -> Any:
    silence_alsa_errors()
    try:
        import sounddevice as sd
    except OSError as exc:  # the Python package is there, libportaudio2 is not
        raise AudioDeviceError(
            f"sounddevice cannot load PortAudio ({exc}); install it: apt-get install libportaudio2"
        ) from None
    return sd


def refresh() -> None:
    """Re-reads PortAudio's device list (hot-plugged devices, a sound server started later),
    unless a stream is open: re-initialising would close it."""
    sd = _sd()
    if _open_streams == 0:
        sd._terminate()
        sd._initialize()


def list_devices() -> list[DeviceInfo]:
    sd = _sd()
    hostapis = sd.query_hostapis()
    default_in = default_out = -1
    try:
        default_in = int(sd.query_devices(kind="input")["index"])
    except (sd.PortAudioError, ValueError, KeyError):
        pass
    try:
        default_out = int(sd.query_devices(kind="output")["index"])
    except (sd.PortAudioError, ValueError, KeyError):
        pass
    return [
        DeviceInfo(
            index=int(d["index"]),
            name=str(d["name"]),
            host_api=str(hostapis[d["hostapi"]]["name"]),
            max_input_channels=int(d["max_input_channels"]),
            max_output_channels=int(d["max_output_channels"]),
            default_samplerate=float(d["default_samplerate"]),
            default_input=int(d["index"]) == default_in,
            default_output=int(d["index"]) == default_out,
        )
        for d in sd.query_devices()
    ]


def _error_code(exc: Exception) -> int | None:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return args[1] if len(args) > 1 and isinstance(args[1], int) else None


def accepted_rates(device: DeviceInfo, kind: str, channels: int = 1) -> list[int]:
    sd = _sd()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    ok = []
    for rate in candidate_rates(device):
        try:
            check(device=device.index, samplerate=rate, channels=channels, dtype="float32")
            ok.append(rate)
        except Exception:  # noqa: BLE001, S112  # any refusal just means "not this rate"
            continue
    return ok


def _check(device: DeviceInfo, kind: Kind, rate: int) -> None:
    """Raises AudioDeviceError naming the rates the device does accept."""
    sd = _sd()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device.index, samplerate=rate, channels=1, dtype="float32")
    except sd.PortAudioError as exc:
        code = _error_code(exc)
        if code == PA_INVALID_CHANNEL_COUNT:
            return  # mono refused: opening asks for the device's own channel count instead
        if code == PA_INVALID_SAMPLE_RATE:
            raise rate_refused_error(
                device, kind, rate, accepted_rates(device, kind), str(exc.args[0])
            ) from None
        raise AudioDeviceError(f"the {kind} device {device.label()} cannot be used: {exc.args[0]}") from None


class SoundDeviceDuplex(DeviceDuplex):
    backend = "sounddevice"

    def __init__(
        self,
        settings: Settings,
        input_device: str | int | None = None,
        output_device: str | int | None = None,
    ) -> None:
        super().__init__(settings)
        audio = settings.audio
        refresh()
        devices = list_devices()
        self.input_device = find_device(
            devices, input_device if input_device is not None else audio.input_device, "input", self.backend
        )
        self.output_device = find_device(
            devices,
            output_device if output_device is not None else audio.output_device,
            "output",
            self.backend,
        )
        self.duplex = audio.duplex
        self._streams: list[Any] = []
        if self.duplex == "full":
            rate = self._choose_rate(audio.sample_rate)
            in_rate = out_rate = rate
        else:
            in_rate = _own_rate(self.input_device, "input", audio.sample_rate)
            out_rate = _own_rate(self.output_device, "output", audio.sample_rate)
        in_block = max(16, round(in_rate * audio.block_ms / 1000))
        out_block = max(16, round(out_rate * audio.block_ms / 1000))
        try:
            if self.duplex == "full":
                stream = self._open("full", in_rate, in_block, audio.latency)
                in_latency, out_latency = stream.latency
            else:
                in_latency = self._open("input", in_rate, in_block, audio.latency).latency
                out_latency = self._open("output", out_rate, out_block, audio.latency).latency
        except BaseException:
            self._stop()
            raise
        self._prepare(
            StreamPlan(
                self.input_device,
                self.output_device,
                in_rate,
                out_rate,
                in_block,
                out_block,
                float(in_latency),
                float(out_latency),
            )
        )

    def _choose_rate(self, forced: int | None) -> int:
        """A full-duplex stream has one rate: the forced one, else the input's own rate if the
        output takes it, else the output's."""
        if forced is not None:
            _check(self.input_device, "input", forced)
            _check(self.output_device, "output", forced)
            return forced
        candidates = dict.fromkeys(
            [int(self.input_device.default_samplerate), int(self.output_device.default_samplerate)]
        )
        refusals = []
        for rate in candidates:
            try:
                _check(self.input_device, "input", rate)
                _check(self.output_device, "output", rate)
                return rate
            except AudioDeviceError as exc:
                refusals.append(str(exc))
        raise AudioDeviceError(
            "the input and output devices share no rate, which one full-duplex stream needs "
            f'({"; ".join(refusals)}). Set audio.duplex = "separate" or use devices on the '
            "same card."
        )

    def _open(self, kind: str, rate: int, block: int, latency: str | float) -> Any:
        """Opens the full-duplex stream, or one direction of a separate pair."""
        global _open_streams
        sd = _sd()
        in_ch = out_ch = 1
        for attempt in range(2):
            common: dict[str, Any] = {
                "samplerate": rate,
                "blocksize": block,
                "dtype": "float32",
                "latency": latency,
                "finished_callback": self._finished,
            }
            try:
                if kind == "full":
                    stream = sd.Stream(
                        device=(self.input_device.index, self.output_device.index),
                        channels=(in_ch, out_ch),
                        callback=self._callback,
                        **common,
                    )
                elif kind == "input":
                    stream = sd.InputStream(
                        device=self.input_device.index,
                        channels=in_ch,
                        callback=self._input_callback,
                        **common,
                    )
                else:
                    stream = sd.OutputStream(
                        device=self.output_device.index,
                        channels=out_ch,
                        callback=self._output_callback,
                        **common,
                    )
            except sd.PortAudioError as exc:
                code = _error_code(exc)
                if code == PA_INVALID_CHANNEL_COUNT and attempt == 0:
                    # Some cards take only their own channel count: mix down/up in the callback.
                    in_ch = min(2, self.input_device.max_input_channels)
                    out_ch = min(2, self.output_device.max_output_channels)
                    continue
                if code == PA_INVALID_SAMPLE_RATE:
                    if kind != "output":
                        _check(self.input_device, "input", rate)
                    if kind != "input":
                        _check(self.output_device, "output", rate)
                busy = busy_hint(code)
                what = {
                    "full": f"{self.input_device.label()} → {self.output_device.label()}",
                    "input": f"the input device {self.input_device.label()}",
                    "output": f"the output device {self.output_device.label()}",
                }[kind]
                raise AudioDeviceError(f"cannot open {what} at {rate} Hz: {exc.args[0]}{busy}") from None
            _open_streams += 1
            self._streams.append(stream)
            return stream
        raise AssertionError("unreachable")

    # -- the audio thread(s) ------------------------------------------------------------------

    def _callback(
        self, indata: np.ndarray, outdata: np.ndarray, frames: int, time_info: Any, status: Any
    ) -> None:
        started = time.perf_counter_ns()
        loop_now = time.monotonic()
        if status:
            if status.input_overflow:
                self.stats.device_input_overflows += 1
            if status.output_underflow:
                self.stats.device_output_underflows += 1
        self._on_input(indata[:, 0], loop_now)
        block = self._on_output(None, time_info.outputBufferDacTime, time_info.currentTime, loop_now)
        if block is None:
            outdata.fill(0.0)
        else:
            outdata[:] = block[:, np.newaxis]
        self.stats.record_cost(time.perf_counter_ns() - started)

    def _input_callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        started = time.perf_counter_ns()
        if status and status.input_overflow:
            self.stats.device_input_overflows += 1
        self._on_input(indata[:, 0], time.monotonic())
        self.stats.record_cost(time.perf_counter_ns() - started)

    def _output_callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        started = time.perf_counter_ns()
        if status and status.output_underflow:
            self.stats.device_output_underflows += 1
        block = self._on_output(None, time_info.outputBufferDacTime, time_info.currentTime, time.monotonic())
        if block is None:
            outdata.fill(0.0)
        else:
            outdata[:] = block[:, np.newaxis]
        self.stats.record_cost(time.perf_counter_ns() - started)

    def _finished(self) -> None:
        if self._running and not self._closed:
            self._on_failure("PortAudio ended the stream")

    # -- engine hooks -------------------------------------------------------------------------

    def _start(self) -> None:
        # Separate: the speaker first, as the PyAudio backend. Its first callbacks drain the
        # prefill before the mic's first block wakes the loop (an underrun or two, counted as
        # start-up ones), but the delay then came out the same run after run (70.0-70.4 ms
        # here); with the mic first it scattered over 53-64 ms.
        for stream in reversed(self._streams):
            stream.start()

    def _is_active(self) -> bool:
        return all(stream.active for stream in self._streams)

    def _stop(self) -> None:
        global _open_streams
        streams, self._streams = self._streams, []
        for stream in streams:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            finally:
                _open_streams = max(0, _open_streams - 1)


def _own_rate(device: DeviceInfo, kind: Kind, forced: int | None) -> int:
    rate = own_rate(device, forced)
    _check(device, kind, rate)
    return rate


def create(options: object, settings: Settings, **kwargs: Any) -> SoundDeviceDuplex:
    """A device reads `[audio]` and `[aec] delay_ms`: it gets the settings (it has no options)."""
    return SoundDeviceDuplex(
        settings, input_device=kwargs.get("input_device"), output_device=kwargs.get("output_device")
    )
