"""A user talking over the assistant's Mandarin reply in one of the hard echo rooms: the mic,
the reference and the user alone, for tests that judge what a canceller leaves of the user.

The room, its echo path and its noise are the bench's (`voiceloop/audio/rooms.py`
HARD_SCENARIOS); the reference is shifted as the virtual room hands it out (REFERENCE_LEAD_MS
ahead of the echo), so the canceller sees what it sees in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.rooms import HARD_SCENARIOS
from voiceloop.audio.virtual import REFERENCE_LEAD_MS, echo_path, room_impulse_response
from voiceloop.testing.replies import mandarin_reply

if TYPE_CHECKING:
    from voiceloop.aec.base import EchoCanceller


@dataclass(frozen=True)
class TalkedOver:
    mic: np.ndarray
    reference: np.ndarray
    user: np.ndarray  # the user alone, where the mic has them
    user_span: slice  # the samples the user's words take


def user_over_mandarin_reply(
    room: str, words: np.ndarray, lead_s: float, user_at_s: float, total_s: float | None = None
) -> TalkedOver:
    """The reply starts `lead_s` into the track and plays to its end; `words` begin `user_at_s`
    into the reply. The track is `total_s` long, or runs to half a second after the words; whole
    10 ms frames either way."""
    scenario = HARD_SCENARIOS[room]
    far_start = int(lead_s * SAMPLE_RATE)
    user_start = far_start + int(user_at_s * SAMPLE_RATE)
    if total_s is None:
        frames = -(-(user_start + words.size + SAMPLE_RATE // 2) // FRAME_SAMPLES)
    else:
        frames = int(total_s * SAMPLE_RATE) // FRAME_SAMPLES
    total = frames * FRAME_SAMPLES
    speaker = np.zeros(total, np.float32)
    reply = mandarin_reply()
    speaker[far_start:] = np.tile(reply, -(-(total - far_start) // reply.size))[: total - far_start]
    rir = room_impulse_response(scenario.room.rt60_s, np.random.default_rng(scenario.room.seed))
    path = echo_path(scenario.room, scenario.conditions, rir)
    echo = np.concatenate([path.process(frame) for frame in speaker.reshape(frames, FRAME_SAMPLES)])
    user = np.zeros(total, np.float32)
    user[user_start : user_start + words.size] = words
    rng = np.random.default_rng(scenario.room.seed + 1)
    noise = 10 ** (scenario.room.noise_dbfs / 20) * rng.standard_normal(total).astype(np.float32)
    mic = np.clip(echo + user + noise, -1.0, 1.0).astype(np.float32)
    delay = round((scenario.room.echo_delay_ms - REFERENCE_LEAD_MS) * SAMPLE_RATE / 1000)
    reference = np.concatenate([np.zeros(delay, np.float32), speaker])[:total]
    return TalkedOver(mic, reference, user, slice(user_start, user_start + words.size))


def cancelled(canceller: EchoCanceller, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The canceller's output frame by frame, shifted back by its output delay so that it lines
    up with the mic (and the user's span)."""
    frames = mic.size // FRAME_SAMPLES
    out = np.concatenate(
        [
            canceller.process(
                mic[k * FRAME_SAMPLES :][:FRAME_SAMPLES], reference[k * FRAME_SAMPLES :][:FRAME_SAMPLES]
            )
            for k in range(frames)
        ]
    )
    delay = int(getattr(canceller, "output_delay_samples", 0))
    return np.concatenate([out[delay:], np.zeros(delay, np.float32)])
