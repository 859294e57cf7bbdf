"""Whether what was played reached a recording whole and in order, on a real sound server.

A late block on a loaded machine makes the device play silence, so a recording of a speaker
holds the played audio with gaps put into it: one correlation over the whole signal then
matches only the part on one side of a gap. Here each piece of the played audio is found on
its own, and only later than the piece before. A piece that a gap cut in two matches poorly, and
so does one from which the device dropped a block to catch up after playing late; each such piece
must be explained by a gap or by a late block the device counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE

WHOLE = 0.8  # normalised correlation of a piece that came through unchanged


@dataclass(frozen=True)
class PieceHeard:
    played_at: int  # first sample of the piece in what was played
    heard_at: int  # where it matches best in the recording
    score: float  # normalised correlation there

    @property
    def delay(self) -> int:
        return self.heard_at - self.played_at


def where_each_piece_is_heard(
    played: np.ndarray, heard: np.ndarray, piece_s: float = 0.25, min_rms: float = 0.01
) -> list[PieceHeard]:
    """Each piece of `played` with sound in it, and where it best matches in `heard`."""
    size = int(piece_s * SAMPLE_RATE)
    n = 1 << int(np.ceil(np.log2(heard.size + size)))
    heard_spectrum = np.fft.rfft(heard, n)
    energy = np.concatenate([[0.0], np.cumsum(heard.astype(np.float64) ** 2)])
    heard_energy = energy[size:] - energy[:-size]  # of each window of `heard`
    found = []
    for start in range(0, played.size - size + 1, size):
        piece = played[start : start + size].astype(np.float64)
        if np.sqrt(np.mean(piece**2)) < min_rms:
            continue
        piece_energy = float(np.sum(piece**2))
        scores = np.fft.irfft(heard_spectrum * np.conj(np.fft.rfft(piece, n)), n)
        # A near-silent window of `heard` must not score high by dividing by nothing.
        scores = scores[: heard_energy.size] / np.sqrt(
            np.maximum(heard_energy, piece_energy / 4) * piece_energy
        )
        at = int(np.argmax(scores))
        found.append(PieceHeard(start, at, float(scores[at])))
    return found


def assert_heard_whole_and_in_order(
    played: np.ndarray, heard: np.ndarray, min_pieces: int, late_blocks: int = 0, max_gaps_s: float = 1.0
) -> list[int]:
    """Raises AssertionError (with every piece) unless the played audio is in `heard` with at
    most silence put into it, and `late_blocks` blocks dropped; returns each whole piece's delay
    in samples, earliest first."""
    found = where_each_piece_is_heard(played, heard)
    detail = ", ".join(f"{p.played_at}->{p.heard_at} ({p.score:.2f})" for p in found)
    assert len(found) >= min_pieces, f"only {len(found)} pieces with sound: {detail}"
    whole = [p for p in found if p.score > WHOLE]
    assert whole, f"no piece came through whole: {detail}"
    delays = [p.delay for p in whole]
    gaps = sum(later - earlier > SAMPLE_RATE // 1000 for earlier, later in pairwise(delays))
    assert len(whole) >= len(found) - gaps - late_blocks, (
        f"more pieces spoilt than {gaps} gaps and {late_blocks} late blocks explain: {detail}"
    )
    assert len(whole) >= len(found) / 2, f"too few pieces whole: {detail}"
    slip = SAMPLE_RATE // 1000  # a device may slip a sample or two now and then
    assert all(later >= earlier - slip for earlier, later in pairwise(delays)), f"out of order: {detail}"
    assert delays[-1] - delays[0] < max_gaps_s * SAMPLE_RATE, f"gaps too long: {detail}"
    return delays
