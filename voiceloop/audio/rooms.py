"""Named echo scenarios for the virtual room: the rooms the echo canceller must handle.

Levels are the echo at the mic relative to the user's voice; delays are the bulk delay from
the speaker sample leaving to its echo arriving (device buffers plus air). The last scenario
models an uncalibrated device: the reference arrives as if there were no delay at all, so the
echo comes 150 ms after it: most of a 256 ms speex filter is spent on the delay, and
WebRTC's AEC3, which finds the delay itself, is the canceller for such a device.
"""

from __future__ import annotations

from voiceloop.config.settings import RoomSettings

SCENARIOS: dict[str, RoomSettings] = {
    "desk-quiet": RoomSettings(echo_delay_ms=20, echo_gain_db=0, rt60_s=0.3, noise_dbfs=-60),
    "living-room": RoomSettings(echo_delay_ms=60, echo_gain_db=3, rt60_s=0.45, noise_dbfs=-55),
    "kiosk-loud": RoomSettings(echo_delay_ms=150, echo_gain_db=6, rt60_s=0.6, noise_dbfs=-45, soft_clip=True),
    "laptop-clipping": RoomSettings(
        echo_delay_ms=40, echo_gain_db=6, rt60_s=0.35, noise_dbfs=-50, soft_clip=True
    ),
    "uncalibrated-150ms": RoomSettings(
        echo_delay_ms=150, echo_gain_db=3, rt60_s=0.45, noise_dbfs=-55, reported_delay_ms=0
    ),
}


def delay_compensated(room: RoomSettings) -> bool:
    return room.reported_delay_ms is None or room.reported_delay_ms == room.echo_delay_ms
