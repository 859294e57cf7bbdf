"""A session of replies and pauses in one of the virtual room's echo scenarios, as the drift
compensator meets it: the reader is set back only in pauses, so a single reply (bench_aec's
takes) never shows what a long session with a fast speaker does to the filter."""

from __future__ import annotations

import numpy as np

from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.rooms import all_scenarios
from voiceloop.audio.virtual import REFERENCE_LEAD_MS, echo_path, room_impulse_response
from voiceloop.testing.replies import reply


def drifting_session(
    room: str, seconds: float, reply_s: float, pause_s: float
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """(mic, reference, reply starts in s): `reply_s` replies (the room's kind, each from a
    different point of it) with `pause_s` between, through the room's own echo path and noise,
    frame by frame; the reference handed out 10 ms before its echo (at the start)."""
    scenario = all_scenarios()[room]
    settings = scenario.room
    frames = int(seconds * SAMPLE_RATE) // FRAME_SAMPLES
    speaker = np.zeros(frames * FRAME_SAMPLES, np.float32)
    assistant = np.tile(reply(scenario.reply), 4)
    starts = [float(s) for s in np.arange(0.5, seconds - reply_s, reply_s + pause_s)]
    for k, start in enumerate(starts):
        spoken = np.roll(assistant, -int(1.3 * k * SAMPLE_RATE))[: int(reply_s * SAMPLE_RATE)]
        first = int(start * SAMPLE_RATE)
        speaker[first : first + spoken.size] = spoken
    rir = room_impulse_response(settings.rt60_s, np.random.default_rng(settings.seed))
    path = echo_path(settings, scenario.conditions, rir)
    echo = np.concatenate([path.process(frame) for frame in speaker.reshape(frames, FRAME_SAMPLES)])
    noise_rng = np.random.default_rng(settings.seed + 1)
    noise = 10 ** (settings.noise_dbfs / 20) * noise_rng.standard_normal(echo.size)
    mic = np.clip(echo + noise, -1.0, 1.0).astype(np.float32)
    delay = max(0, round((settings.echo_delay_ms - REFERENCE_LEAD_MS) * SAMPLE_RATE / 1000))
    reference = np.concatenate([np.zeros(delay, np.float32), speaker])[: speaker.size]
    return mic, reference, starts
