"""Finding a sound device by what a user types, the rates worth trying on it, and the errors
that say plainly what is wrong. Shared by both PortAudio backends, which only differ in how
they ask PortAudio for the list."""

from __future__ import annotations

import ctypes
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from voiceloop.audio.base import AudioDeviceError

Kind = Literal["input", "output"]
COMMON_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)

# PortAudio error codes worth telling apart (portaudio.h).
PA_INVALID_CHANNEL_COUNT = -9998
PA_INVALID_SAMPLE_RATE = -9997
PA_INVALID_DEVICE = -9996
PA_DEVICE_UNAVAILABLE = -9985


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


# -- rates --------------------------------------------------------------------------------------


def own_rate(device: DeviceInfo, forced: int | None) -> int:
    """The rate to open a device at: `audio.sample_rate` when set, else the device's own, so
    that PortAudio and the sound server do not resample (voiceloop does, with soxr)."""
    return forced if forced is not None else int(device.default_samplerate)


def candidate_rates(device: DeviceInfo) -> list[int]:
    """The rates worth probing when a device refuses one, to say which it takes instead."""
    return sorted({*COMMON_RATES, int(device.default_samplerate)})


def rate_refused_error(
    device: DeviceInfo, kind: Kind, rate: int, accepted: Sequence[int], detail: str
) -> AudioDeviceError:
    ok = ", ".join(str(r) for r in accepted) if accepted else "none of the common rates"
    return AudioDeviceError(
        f"the {kind} device {device.label()} refuses {rate} Hz ({detail}); it accepts {ok} Hz. "
        "Leave audio.sample_rate unset to open each device at its own rate (voiceloop "
        "resamples), or set one it accepts."
    )


def busy_hint(code: int | None) -> str:
    """What to add to a refusal to open when PortAudio says the device is in use."""
    return " (is another program holding it?)" if code == PA_DEVICE_UNAVAILABLE else ""


# -- probing noise ------------------------------------------------------------------------------

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
