"""The frames of a filter's first reply, kept so that the filter can learn from them again.

A reply is all an adaptive filter has to learn the room from, and speex's learns it slowly: in
bench_bargein's Mandarin room (+10 dB, 80 ppm drift) the first reply after the 1.4 s greeting
still had only 6.7 dB of linear echo cancellation in its first two seconds, and users talking
over it were held, then resumed unheard (the recogniser found no words in the residual). The
mic and reference of a reply are known exactly once it ends, and the filter is idle until the
next one. Fed through the filter again (data reuse, as in data-reusing NLMS), the greeting
took that first reply to 13.0 dB (kept bench sessions, the echo alone, seeds 11-16, two
passes), and every bench room's first reply gained 3-7 dB.

Only a filter's first reply is learnt again (the greeting, or the first after a path change
rebuilt the filter). Replayed after every reply, the filter grew set in the path it knew: in
person-walks, whose path changes every 6 s, the echo blips silero was sure of (≥ 0.93) went
55 → 89 over 13 kept sessions replayed, where the first reply alone gave 58; after the first,
a filter learns from each reply live. A first reply is also rarely one a user talks over (the
greeting), and talk over a reply is not the echo: the filter should not learn it twice more.

A segment runs from the first frame of a reply's reference to GAP frames of silence after it,
pauses inside it included: the filter's history then holds exactly what it held when the
frames were live, silence before the first and after the last (the gap is longer than the
filter), so the replay starts and ends as the reply did. Only the last MAX_S are kept: a
filter's first reply is mostly the greeting, ~1-3 s (a longer one is replayed from MAX_S
before its end, where for the filter's length the mic holds echo of frames not replayed).
A replayed frame costs the filter alone, ~33 µs here against ~90 µs for a live frame through
the whole canceller: two passes over a 1.4 s greeting are ~11 ms, once. The ring (~256 KB) is
taken when a first reply plays: a canceller that never learns again never holds it.
"""

from __future__ import annotations

import numpy as np

MAX_S = 4.0
MIN_PLAYING_FRAMES = 20  # a blip of reference teaches nothing worth the time


class ReplyFrames:
    """Collects one contiguous segment of (mic, reference) int16 frames at a time."""

    def __init__(self, frame_samples: int, gap_frames: int, max_s: float = MAX_S) -> None:
        """`gap_frames`: silence that ends a reply, longer than the filter (its history then silent)."""
        self.gap_frames = gap_frames
        self._shape = (max(int(max_s * 100), gap_frames + 1), 2, frame_samples)
        self._ring: np.ndarray | None = None  # ~256 KB, taken when a reply first plays
        self._count = 0  # frames written into the segment (may exceed the ring: oldest dropped)
        self._playing = 0
        self._silent = 0
        self._active = False

    def add(self, pcm: np.ndarray, reference_playing: bool) -> np.ndarray | None:
        """Stores this frame (`pcm`: the mic and reference rows as the filter took them). Returns
        the whole segment, oldest first, on the frame that ends it; None otherwise."""
        if not self._active:
            if not reference_playing:
                return None
            self._active, self._count, self._playing, self._silent = True, 0, 0, 0
        if self._ring is None:
            self._ring = np.zeros(self._shape, dtype=np.int16)
        self._ring[self._count % len(self._ring)] = pcm
        self._count += 1
        if reference_playing:
            self._playing += 1
            self._silent = 0
            return None
        self._silent += 1
        if self._silent < self.gap_frames:
            return None
        self._active = False
        if self._playing < MIN_PLAYING_FRAMES:
            return None
        size = len(self._ring)
        if self._count <= size:
            return self._ring[: self._count].copy()
        start = self._count % size
        return np.concatenate([self._ring[start:], self._ring[:start]])

    @property
    def nbytes(self) -> int:
        """Memory held for frames: none until a reply first plays."""
        return 0 if self._ring is None else self._ring.nbytes

    def clear(self) -> None:
        """Forgets the segment so far: the filter it would teach is gone (rebuilt after a path
        change), and the old path's frames would teach the new filter the wrong room."""
        self._active = False
