"""`audio.backend = "pyaudio"`: the same contract over PyAudio, with separate input and
output streams.

PyAudio's full-duplex stream is stuck at PortAudio's low latency and stalls on sound servers,
so mic and speaker get a stream each, each with its own callback and, if the devices differ,
its own rate. The engine in `voiceloop.audio.devices` does not care: the mic ring and the
speaker ring were separate all along, and the speaker is topped up by what it has used.

PyAudio initialises PortAudio per `PyAudio()` instance, so each device opened here sees the
devices present now (no stale list), and JACK's client library, which PortAudio probes on
start, prints a page of "cannot connect" noise to stderr: that is muted while it starts.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
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

# PyAudio cannot ask PortAudio for a latency: it always takes the device's "low" one, and the
# ALSA buffer is then sized from the callback period. At 10 ms periods PulseAudio's ALSA plugin
# underran on every other callback (165 callbacks/s for 100 due); from 20 ms on, none did.
MIN_BLOCK_MS = 20


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Points fd 2 at /dev/null (C libraries write there directly, not via sys.stderr)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _pyaudio() -> Any:
    silence_alsa_errors()
    try:
        import pyaudio
    except ImportError:
        raise AudioDeviceError(
            'audio.backend = "pyaudio" needs PyAudio: pip install pyaudio (it builds against portaudio19-dev)'
        ) from None
    return pyaudio


def open_portaudio() -> Any:
    """A fresh PyAudio instance (PortAudio initialised now); call `.terminate()` when done."""
    pyaudio = _pyaudio()
    with _quiet_stderr():
        return pyaudio.PyAudio()


def list_devices(pa: Any = None) -> list[DeviceInfo]:
    own = pa is None
    pa = open_portaudio() if own else pa
    try:
        defaults = {}
        for kind, getter in (
            ("input", pa.get_default_input_device_info),
            ("output", pa.get_default_output_device_info),
        ):
            try:
                defaults[kind] = int(getter()["index"])
            except OSError:
                defaults[kind] = -1
        devices = []
        for index in range(pa.get_device_count()):
            d = pa.get_device_info_by_index(index)
            devices.append(
                DeviceInfo(
                    index=int(d["index"]),
                    name=str(d["name"]),
                    host_api=str(pa.get_host_api_info_by_index(d["hostApi"])["name"]),
                    max_input_channels=int(d["maxInputChannels"]),
                    max_output_channels=int(d["maxOutputChannels"]),
                    default_samplerate=float(d["defaultSampleRate"]),
                    default_input=int(d["index"]) == defaults["input"],
                    default_output=int(d["index"]) == defaults["output"],
                )
            )
        return devices
    finally:
        if own:
            pa.terminate()


def _error_code(exc: Exception) -> int | None:
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, int):
            return arg
    return None


def _supported(pa: Any, device: DeviceInfo, kind: Kind, rate: int, channels: int = 1) -> Exception | None:
    pyaudio = _pyaudio()
    try:
        if kind == "input":
            pa.is_format_supported(
                rate, input_device=device.index, input_channels=channels, input_format=pyaudio.paFloat32
            )
        else:
            pa.is_format_supported(
                rate, output_device=device.index, output_channels=channels, output_format=pyaudio.paFloat32
            )
    except ValueError as exc:
        return exc
    return None


def _rate_for(pa: Any, device: DeviceInfo, kind: Kind, forced: int | None) -> int:
    rate = own_rate(device, forced)
    refusal = _supported(pa, device, kind, rate)
    if refusal is None or _error_code(refusal) == PA_INVALID_CHANNEL_COUNT:
        return rate
    if _error_code(refusal) == PA_INVALID_SAMPLE_RATE:
        accepted = [r for r in candidate_rates(device) if _supported(pa, device, kind, r) is None]
        raise rate_refused_error(device, kind, rate, accepted, str(refusal.args[0]))
    raise AudioDeviceError(f"the {kind} device {device.label()} cannot be used: {refusal.args[0]}")


class PyAudioDuplex(DeviceDuplex):
    backend = "pyaudio"

    def __init__(
        self,
        settings: Settings,
        input_device: str | int | None = None,
        output_device: str | int | None = None,
    ) -> None:
        super().__init__(settings)
        audio = settings.audio
        self._pa = open_portaudio()
        self._streams: list[Any] = []
        try:
            devices = list_devices(self._pa)
            self.input_device = find_device(
                devices,
                input_device if input_device is not None else audio.input_device,
                "input",
                self.backend,
            )
            self.output_device = find_device(
                devices,
                output_device if output_device is not None else audio.output_device,
                "output",
                self.backend,
            )
            in_rate = _rate_for(self._pa, self.input_device, "input", audio.sample_rate)
            out_rate = _rate_for(self._pa, self.output_device, "output", audio.sample_rate)
            block_ms = max(audio.block_ms, MIN_BLOCK_MS)
            in_block = round(in_rate * block_ms / 1000)
            out_block = round(out_rate * block_ms / 1000)
            self._in_channels = 1
            self._out_channels = 1
            self._input = self._open("input", in_rate, in_block)
            self._output = self._open("output", out_rate, out_block)
        except BaseException:
            self._close_all()
            raise
        self._silence = bytes(4 * out_block * self._out_channels)
        self._prepare(
            StreamPlan(
                self.input_device,
                self.output_device,
                in_rate,
                out_rate,
                in_block,
                out_block,
                float(self._input.get_input_latency()),
                float(self._output.get_output_latency()),
            )
        )

    def _open(self, kind: Kind, rate: int, block: int) -> Any:
        pyaudio = _pyaudio()
        device = self.input_device if kind == "input" else self.output_device
        channels = 1
        for attempt in range(2):
            try:
                with _quiet_stderr():
                    stream = self._pa.open(
                        format=pyaudio.paFloat32,
                        channels=channels,
                        rate=rate,
                        input=kind == "input",
                        output=kind == "output",
                        input_device_index=device.index if kind == "input" else None,
                        output_device_index=device.index if kind == "output" else None,
                        frames_per_buffer=block,
                        stream_callback=self._input_callback if kind == "input" else self._output_callback,
                        start=False,
                    )
            except OSError as exc:
                code = _error_code(exc)
                if code == PA_INVALID_CHANNEL_COUNT and attempt == 0:
                    channels = min(2, device.channels(kind))
                    continue
                if code == PA_INVALID_SAMPLE_RATE:
                    _rate_for(self._pa, device, kind, rate)
                busy = busy_hint(code)
                raise AudioDeviceError(
                    f"cannot open the {kind} device {device.label()} at {rate} Hz: {exc}{busy}"
                ) from None
            if kind == "input":
                self._in_channels = channels
            else:
                self._out_channels = channels
            self._streams.append(stream)
            return stream
        raise AssertionError("unreachable")

    # -- the audio threads --------------------------------------------------------------------

    def _input_callback(
        self, in_data: bytes, frames: int, time_info: dict[str, float], status: int
    ) -> tuple[None, int]:
        started = time.perf_counter_ns()
        if status & 0x2:  # paInputOverflow
            self.stats.device_input_overflows += 1
        samples = np.frombuffer(in_data, dtype=np.float32)
        if self._in_channels > 1:
            samples = samples[:: self._in_channels]
        self._on_input(samples, time.monotonic())
        self.stats.record_cost(time.perf_counter_ns() - started)
        return None, 0  # paContinue

    def _output_callback(
        self, in_data: None, frames: int, time_info: dict[str, float], status: int
    ) -> tuple[bytes, int]:
        started = time.perf_counter_ns()
        if status & 0x4:  # paOutputUnderflow
            self.stats.device_output_underflows += 1
        block = self._on_output(
            None,
            time_info.get("output_buffer_dac_time", 0.0),
            time_info.get("current_time", 0.0),
            time.monotonic(),
        )
        if block is None:
            data = self._silence
        elif self._out_channels > 1:
            data = np.repeat(block, self._out_channels).tobytes()
        else:
            data = block.tobytes()
        self.stats.record_cost(time.perf_counter_ns() - started)
        return data, 0

    # -- engine hooks -------------------------------------------------------------------------

    def _start(self) -> None:
        self._output.start_stream()  # the speaker first (see SoundDeviceDuplex._start)
        self._input.start_stream()

    def _is_active(self) -> bool:
        return all(stream.is_active() for stream in self._streams)

    def _stop(self) -> None:
        self._close_all()

    def _close_all(self) -> None:
        for stream in self._streams:
            with contextlib.suppress(Exception):
                stream.stop_stream()
            with contextlib.suppress(Exception):
                stream.close()
        self._streams = []
        if self._pa is not None:
            with contextlib.suppress(Exception):
                self._pa.terminate()
            self._pa = None


def create(options: object, settings: Settings, **kwargs: Any) -> PyAudioDuplex:
    """A device reads `[audio]` and `[aec] delay_ms`: it gets the settings (it has no options)."""
    return PyAudioDuplex(
        settings, input_device=kwargs.get("input_device"), output_device=kwargs.get("output_device")
    )
