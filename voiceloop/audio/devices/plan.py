"""What a backend opened, handed to the shared engine: the one thing the engine needs to know
about a backend's streams."""

from __future__ import annotations

from dataclasses import dataclass

from voiceloop.audio.devices.lookup import DeviceInfo


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
