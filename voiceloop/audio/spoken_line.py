"""A scripted line with pauses inside it, rendered piece by piece.

Natural speech stops mid-sentence ("set a timer for … five minutes"). Each piece of text is
voiced on its own and cut to its voiced part, and the pauses between them are exact silence,
so where each pause starts and ends is known to the sample: the ground truth a turn-taking
benchmark counts premature endpoints against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.audio.script import Pause


@dataclass(frozen=True)
class SpokenLine:
    """A line's samples (before levelling) and its inner pauses as (start, end) seconds from
    the line's first sample."""

    audio: np.ndarray
    pauses: tuple[tuple[float, float], ...] = ()
    wake_end_s: float | None = None  # the end of the wake word said first (seconds into the line)


def after_wake_word(wake: np.ndarray, pause_ms: int, line: SpokenLine) -> SpokenLine:
    """The wake word, a silence, then the line: its pauses shifted, the word's end kept apart
    (it is no pause inside the request: the word ends an utterance of its own)."""
    offset = (wake.size + pause_ms * SAMPLE_RATE // 1000) / SAMPLE_RATE
    gap = np.zeros(pause_ms * SAMPLE_RATE // 1000, np.float32)
    audio = np.concatenate([wake.astype(np.float32, copy=False), gap, line.audio])
    pauses = tuple((start + offset, end + offset) for start, end in line.pauses)
    return SpokenLine(audio, pauses, wake.size / SAMPLE_RATE)


def render_pieces(
    parts: tuple[str | Pause, ...],
    voice_piece: Callable[[str], np.ndarray],
) -> SpokenLine:
    """Joins the voiced pieces with silence where the script pauses. `voice_piece` renders one
    piece of text and trims it to its voiced part. A pause at either end of the line is dropped:
    the line starts and ends with sound, as the room's start and end times promise."""
    chunks: list[np.ndarray] = []
    pauses: list[tuple[float, float]] = []
    position = 0
    pending_pause = 0
    for part in parts:
        if isinstance(part, Pause):
            pending_pause += part.pause_ms * SAMPLE_RATE // 1000
            continue
        voiced = voice_piece(part) if part.strip() else np.zeros(0, np.float32)
        if voiced.size == 0:
            continue
        if position and pending_pause:
            chunks.append(np.zeros(pending_pause, np.float32))
            pauses.append((position / SAMPLE_RATE, (position + pending_pause) / SAMPLE_RATE))
            position += pending_pause
        pending_pause = 0
        chunks.append(voiced.astype(np.float32, copy=False))
        position += voiced.size
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return SpokenLine(audio, tuple(pauses))
