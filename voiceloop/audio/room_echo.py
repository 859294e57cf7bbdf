"""Echo paths that real rooms have and the fixed `EchoPath` does not: a speaker whose clock drifts
from the mic's, a path that changes while the assistant speaks, a loudspeaker driven into
clipping.

Separate devices (a USB mic, another speaker) run on separate crystals 20-100 ppm apart, so
the echo slides against the reference by a sample every few hundred milliseconds; a person
walking between speaker and mic swaps the impulse response within ~0.1 s. Both leave an
adaptive filter modelling a path that is no longer there, and both were measured to make the
speex canceller let its own voice through as speech (NOTES.md, "Rooms that break echo
cancellers"), so the benches and tests need rooms that do this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceloop.audio.fractional import StreamReader
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE

CLIP_KNEE = 0.5  # about -6 dBFS: a small loudspeaker driven hard starts to compress here


def loudspeaker_clip(audio: np.ndarray) -> np.ndarray:
    """Linear up to the knee, then a smooth tanh limit at full scale: only loud peaks distort,
    as with a small speaker pushed to its limit — the nonlinearity a linear canceller can't model."""
    magnitude = np.abs(audio)
    over = magnitude > CLIP_KNEE
    if not np.any(over):
        return audio
    out = audio.copy()
    span = 1.0 - CLIP_KNEE
    out[over] = np.sign(audio[over]) * (CLIP_KNEE + span * np.tanh((magnitude[over] - CLIP_KNEE) / span))
    return out


@dataclass(frozen=True)
class EchoConditions:
    """What a room does to the echo beyond `RoomSettings` (which stays the config's shape)."""

    # The speaker's clock runs this much faster than the mic's (negative: slower): its echo
    # reaches the mic ever earlier (later) against the reference, by ppm·1e-6 s per second.
    drift_ppm: float = 0.0
    # The echo path changes (someone walks between speaker and mic) at this room time, then
    # back and forth every `path_change_every_s`; each change cross-fades over `path_change_ms`.
    path_change_at_s: float | None = None
    path_change_every_s: float | None = None
    path_change_ms: float = 120.0
    # The loudspeaker is driven this far past its natural level before it limits (clips) and
    # turned back down: the level stays, the peaks are flattened. Needs soft_clip.
    clip_drive_db: float = 0.0

    @property
    def changes_echo(self) -> bool:
        return bool(self.drift_ppm) or self.path_change_at_s is not None or self.clip_drive_db > 0


def walked_past(rir: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same room with a person near the direct path: the direct sound shadowed by ~6 dB,
    a strong reflection off the body 2.5 ms later, and a re-drawn diffuse tail."""
    changed = np.zeros_like(rir)
    changed[0] = 0.5 * rir[0]
    body = int(0.0025 * SAMPLE_RATE)
    if rir.size > body:
        changed[body] = 0.4 * rir[0]
        tail = rng.standard_normal(rir.size) * np.abs(rir)  # same decay, different reflections
        tail[: body + 1] = 0.0
        changed += tail.astype(np.float32)
    return (changed / np.sqrt(np.sum(changed.astype(np.float64) ** 2))).astype(np.float32)


class ChangingEchoPath:
    """The echo of the speaker signal at the mic, frame by frame (a drop-in for `EchoPath`)."""

    def __init__(
        self,
        delay_ms: float,
        gain_db: float,
        rir: np.ndarray,
        soft_clip: bool,
        conditions: EchoConditions,
        seed: int = 0,
    ) -> None:
        self.delay = delay_ms * SAMPLE_RATE / 1000
        self.gain = float(10 ** (gain_db / 20))
        self.soft_clip = soft_clip
        self.drive = float(10 ** (conditions.clip_drive_db / 20))
        self.conditions = conditions
        self.ratio = 1.0 + conditions.drift_ppm * 1e-6
        self.rirs = [rir]
        if conditions.path_change_at_s is not None:
            self.rirs.append(walked_past(rir, np.random.default_rng(seed + 1000)))
        self._speaker = StreamReader(keep=int(self.delay) + 4 * SAMPLE_RATE)
        self._pending = [np.zeros(r.size + FRAME_SAMPLES, dtype=np.float32) for r in self.rirs]
        self._count = 0  # mic samples produced

    def _played(self) -> np.ndarray:
        """What the speaker emits during this mic frame, on the mic's clock: speaker sample
        (n - delay)·ratio arrives at mic sample n. A speaker running ahead of the mic for
        longer than its delay allows (minutes at 100 ppm) is held at the newest sample."""
        n = np.arange(self._count, self._count + FRAME_SAMPLES, dtype=np.float64)
        positions = np.minimum((n - self.delay) * self.ratio, self._speaker.newest_readable())
        return self._speaker.read(positions)

    def _weight_of_changed(self, n: np.ndarray) -> np.ndarray:
        """0 = the first path, 1 = the changed one, cross-faded with a raised cosine."""
        c = self.conditions
        t = n / SAMPLE_RATE
        first = c.path_change_at_s if c.path_change_at_s is not None else np.inf
        every = c.path_change_every_s or np.inf
        since = t - first
        changes = np.where(since >= 0, np.floor(np.maximum(since, 0) / every) + 1, 0)
        into = since - (changes - 1) * np.where(np.isfinite(every), every, 0)
        fade = 0.5 - 0.5 * np.cos(np.pi * np.clip(into / (c.path_change_ms / 1000), 0.0, 1.0))
        return np.where(changes == 0, 0.0, np.where(changes % 2 == 1, fade, 1.0 - fade))

    def process(self, speaker_frame: np.ndarray) -> np.ndarray:
        self._speaker.write(speaker_frame)
        played = self._played()
        if self.soft_clip:
            played = loudspeaker_clip(played * self.drive) / self.drive
        if np.any(played):
            for rir, pending in zip(self.rirs, self._pending, strict=True):
                pending[: rir.size + FRAME_SAMPLES - 1] += np.convolve(played, rir)
        outs = [pending[:FRAME_SAMPLES].copy() for pending in self._pending]
        for pending in self._pending:
            pending[:-FRAME_SAMPLES] = pending[FRAME_SAMPLES:]
            pending[-FRAME_SAMPLES:] = 0.0
        if len(outs) == 2:
            w = self._weight_of_changed(np.arange(self._count, self._count + FRAME_SAMPLES)).astype(
                np.float32
            )
            out = (1.0 - w) * outs[0] + w * outs[1]
        else:
            out = outs[0]
        self._count += FRAME_SAMPLES
        return (self.gain * out).astype(np.float32)
