"""Bounded buffers between the audio callback and the event loop, preallocated so that
neither side allocates, locks or waits on the other."""

from __future__ import annotations

import numpy as np


class BlockRing:
    """Preallocated single-producer/single-consumer ring of equal blocks.

    One side is the audio callback, the other the event loop. Each side writes only its own
    counter, after finishing with the slot, so under the GIL neither needs a lock and neither
    can block the other. Full or empty is the caller's to count."""

    def __init__(self, slots: int, block: int) -> None:
        self.slots = slots
        self.block = block
        self.data = np.zeros((slots, block), dtype=np.float32)
        self.stamp = np.zeros(slots, dtype=np.float64)  # loop-clock time of the block's first sample
        self.seq = np.zeros(slots, dtype=np.int64)
        self.written = 0
        self.read = 0

    def available(self) -> int:
        return self.written - self.read

    def full(self) -> bool:
        return self.written - self.read >= self.slots


class SpeakerHistory:
    """The speaker samples of the session's last few seconds, by lockstep sample index: the
    loop reads the canceller's reference and the tracker's window back out of it."""

    def __init__(self, size: int = 1 << 16) -> None:
        self.buffer = np.zeros(size, dtype=np.float32)
        self.size = size

    def write(self, start: int, samples: np.ndarray) -> None:
        idx = (start + np.arange(samples.size)) % self.size
        self.buffer[idx] = samples

    def read(self, start: int, count: int, written: int) -> np.ndarray:
        """Samples [start, start + count); zeros outside [0, written) (not yet pulled)."""
        if start + count <= 0 or start >= written:
            return np.zeros(count, dtype=np.float32)
        out = self.buffer[(start + np.arange(count)) % self.size]
        if start < 0:
            out[:-start] = 0.0
        if start + count > written:
            out[written - start :] = 0.0
        return out
