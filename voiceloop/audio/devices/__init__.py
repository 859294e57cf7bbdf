"""Real sound devices: finding them, saying plainly what is wrong, and the engine that both
PortAudio backends (sounddevice, PyAudio) share. One module per job:

- lookup: finding a device by name or index, the rates to try, the errors a user sees
- delay: GCC-PHAT delay estimation (`estimate_delay`, `DelayEstimate`)
- tracker: the echo-delay tracker, which returns the delay to adopt; the device applies it
- rings, stats: what the audio callback writes into and counts, with no lock or allocation
- plan: what a backend opened (`StreamPlan`)
- callbacks, lockstep, duplex: the engine's callback half, its clock and delay, its loop half
- teardown: closing streams in a thread that cannot hang the program

The names below are the ones imported from `voiceloop.audio.devices` elsewhere; import from
the module itself for anything else.
"""

from voiceloop.audio.devices.delay import CLEAR_PEAK, DelayEstimate, estimate_delay
from voiceloop.audio.devices.duplex import DeviceDuplex, device_gone_error
from voiceloop.audio.devices.lookup import (
    COMMON_RATES,
    PA_DEVICE_UNAVAILABLE,
    PA_INVALID_CHANNEL_COUNT,
    PA_INVALID_DEVICE,
    PA_INVALID_SAMPLE_RATE,
    DeviceInfo,
    Kind,
    busy_hint,
    candidate_rates,
    close_matches,
    find_device,
    no_devices_error,
    own_rate,
    rate_refused_error,
    silence_alsa_errors,
)
from voiceloop.audio.devices.plan import StreamPlan
from voiceloop.audio.devices.rings import BlockRing, SpeakerHistory
from voiceloop.audio.devices.stats import StreamStats
from voiceloop.audio.devices.teardown import stop_in_thread
from voiceloop.audio.devices.tracker import EchoDelayTracker

__all__ = [
    "CLEAR_PEAK",
    "COMMON_RATES",
    "PA_DEVICE_UNAVAILABLE",
    "PA_INVALID_CHANNEL_COUNT",
    "PA_INVALID_DEVICE",
    "PA_INVALID_SAMPLE_RATE",
    "BlockRing",
    "DelayEstimate",
    "DeviceDuplex",
    "DeviceInfo",
    "EchoDelayTracker",
    "Kind",
    "SpeakerHistory",
    "StreamPlan",
    "StreamStats",
    "busy_hint",
    "candidate_rates",
    "close_matches",
    "device_gone_error",
    "estimate_delay",
    "find_device",
    "no_devices_error",
    "own_rate",
    "rate_refused_error",
    "silence_alsa_errors",
    "stop_in_thread",
]
