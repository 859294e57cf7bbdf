"""The playback queue: what the speaker will play, cancellable at any frame.

The device pulls exactly one frame at a time from here (from its audio callback on a real
device), so stopping takes effect within one frame. It also keeps the ledger the history
depends on: which pieces of which reply were actually played, so that after a barge-in only
text the user heard goes into the conversation.
"""

from __future__ import annotations

import functools
import re
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from voiceloop.engine.events import PlaybackFinished, PlaybackStarted
from voiceloop.text.scripts import UNSPACED

# Words are placed by spaces, and in scripts written without them each character on its own
# (a syllable; the default profile speaks Mandarin), a mark with the character before it.
_PLACED_WORD = re.compile(rf"[{UNSPACED}][^\w\s]*|[^\s{UNSPACED}]+")


@dataclass(frozen=True)
class _PlacedWord:
    start: int  # characters of the piece's text
    end: int
    since: float  # fractions of the piece's samples
    until: float


@dataclass
class _Piece:
    text: str
    spoken: bool  # False for notices (errors), which never enter the history
    chunks: deque[np.ndarray] = field(default_factory=deque)
    queued: int = 0
    played: int = 0
    complete: bool = False  # every chunk of it has been queued

    @functools.cached_property
    def words(self) -> list[_PlacedWord]:
        """Where each word is in `text` and over the piece's samples, by its share of the letters
        (voices give no word timings; against pocketsphinx's forced alignment of espeak, 116 words,
        the estimate runs 0.09-0.11 s late in the median, 0.37 s at most: engine/listener.py)."""
        matches = list(_PLACED_WORD.finditer(self.text))
        letters = [max(match.end() - match.start(), 1) for match in matches]
        total, position, placed = max(sum(letters), 1), 0, []
        for match, count in zip(matches, letters, strict=True):
            placed.append(
                _PlacedWord(match.start(), match.end(), position / total, (position + count) / total)
            )
            position += count
        return placed

    def heard_text(self) -> str:
        """The text up to the last word whose samples have all played."""
        if not self.spoken or self.played == 0:
            return ""
        if self.complete and self.played >= self.queued:
            return self.text
        estimate = self.queued if self.complete else max(self.queued, 1)
        heard = [word for word in self.words if word.until <= self.played / estimate + 1e-9]
        return self.text[: heard[-1].end] if heard else ""

    def text_between(self, words: set[int]) -> str:
        """The text from the first of these words to the last."""
        if not words:
            return ""
        return self.text[self.words[min(words)].start : self.words[max(words)].end]


@dataclass
class _Sounded:
    """A stretch of one piece that played without a break: which of its samples, from when."""

    piece: _Piece
    first_sample: int
    samples: int
    at: float  # when its first sample sounded (the loop clock)


# Stretches kept for `words_sounded`: pauses and piece changes start a new one; a minute of
# reply rarely needs more than a few dozen.
SOUNDED_KEPT = 64


class PlaybackQueue:
    def __init__(self, sample_rate: int = 16_000) -> None:
        self.sample_rate = sample_rate
        self._lock = threading.Lock()
        self._events: deque[PlaybackStarted | PlaybackFinished] = deque(maxlen=64)
        self._turn_id: int | None = None
        self._pieces: list[_Piece] = []
        self._cursor = 0  # index of the piece now playing
        self._turn_closed = False
        self._started = False
        self._finished = False
        self._paused = False
        self.played_samples = 0  # over the whole session, for the session log
        self.stops = 0  # replies cut off: a device with its own buffer drops it when this moves
        # What every sample pulled is multiplied by (audio/headroom.py lowers it where our own
        # voice clips the mic). The canceller's reference is what was pulled, so it follows.
        self.volume = 1.0
        # ...and by what the echo canceller asks for now (aec/base.py's `speaker_gain`: quieter
        # while it re-learns a changed room), which the listener sets each frame.
        self.canceller_gain = 1.0
        self._applied_volume = 1.0  # the volume the last frame pulled ended at
        self._sounded: deque[_Sounded] = deque(maxlen=SOUNDED_KEPT)  # across turns

    # -- the producer side (the reply task) ---------------------------------------------------

    def open_turn(self, turn_id: int) -> None:
        with self._lock:
            self._turn_id = turn_id
            self._pieces = []
            self._cursor = 0
            self._turn_closed = False
            self._started = False
            self._finished = False
            self._paused = False

    def begin_piece(self, turn_id: int, text: str, spoken: bool = True) -> int | None:
        """Starts a piece; returns its index, or None if the turn is no longer playing."""
        with self._lock:
            if turn_id != self._turn_id or self._turn_closed:
                return None
            self._pieces.append(_Piece(text=text, spoken=spoken))
            return len(self._pieces) - 1

    def append(self, turn_id: int, piece: int, audio: np.ndarray) -> bool:
        with self._lock:
            if turn_id != self._turn_id or piece >= len(self._pieces):
                return False
            if audio.size:
                self._pieces[piece].chunks.append(audio.astype(np.float32, copy=False))
                self._pieces[piece].queued += audio.size
            return True

    def end_piece(self, turn_id: int, piece: int) -> None:
        with self._lock:
            if turn_id == self._turn_id and piece < len(self._pieces):
                self._pieces[piece].complete = True

    def close_turn(self, turn_id: int) -> None:
        """No more pieces will come: PlaybackFinished fires once the queue drains."""
        with self._lock:
            if turn_id == self._turn_id:
                self._turn_closed = True
                for piece in self._pieces:
                    piece.complete = True

    def stop(self, turn_id: int) -> str:
        """Drops everything not yet played (within one frame); returns the text heard."""
        with self._lock:
            if turn_id != self._turn_id:
                return ""
            self.stops += 1
            for piece in self._pieces:
                piece.chunks.clear()
                piece.queued = piece.played if not piece.complete else piece.queued
            heard = self._heard_locked()
            self._turn_id = None
            self._paused = False
            self._pieces = []
            return heard

    def pause(self, turn_id: int) -> bool:
        """Holds the reply where it is (the next frame is silent), keeping every sample not yet
        played: the user may only be saying "mhm". True if the turn was playing."""
        with self._lock:
            if turn_id != self._turn_id or self._paused:
                return False
            self._paused = True
            return True

    def resume(self, turn_id: int) -> bool:
        """Plays on from the sample where `pause` held it."""
        with self._lock:
            if turn_id != self._turn_id or not self._paused:
                return False
            self._paused = False
            return True

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._paused

    # -- the consumer side (the device) ------------------------------------------------------

    def pull(self, samples: int, at: float) -> np.ndarray:
        """The next `samples` to play, silence-padded; `at` is when the first one sounds."""
        out = np.zeros(samples, dtype=np.float32)
        with self._lock:
            if self._paused:
                return out
            filled = 0
            while filled < samples and self._cursor < len(self._pieces):
                piece = self._pieces[self._cursor]
                if not piece.chunks:
                    if piece.complete and piece.played >= piece.queued:
                        self._cursor += 1
                        continue
                    break  # underrun: the voice is still rendering this piece
                chunk = piece.chunks[0]
                take = min(samples - filled, chunk.size)
                if not self._started and self._turn_id is not None:
                    self._started = True
                    self._events.append(PlaybackStarted(self._turn_id, at + filled / self.sample_rate))
                out[filled : filled + take] = chunk[:take]
                self._note_sounded(piece, take, at + filled / self.sample_rate)
                filled += take
                piece.played += take
                if take == chunk.size:
                    piece.chunks.popleft()
                else:
                    piece.chunks[0] = chunk[take:]
            self.played_samples += filled
            self._check_finished(at + filled / self.sample_rate)
        applied, volume = self._applied_volume, self.volume * self.canceller_gain
        if volume != applied:  # a change glides over this frame: no step in the waveform
            self._applied_volume = volume
            out *= np.linspace(applied, volume, samples, dtype=np.float32)
        elif volume != 1.0 and filled:
            out *= np.float32(volume)
        return out

    def _note_sounded(self, piece: _Piece, samples: int, at: float) -> None:
        last = self._sounded[-1] if self._sounded else None
        if (
            last is not None
            and last.piece is piece
            and last.first_sample + last.samples == piece.played
            and abs(last.at + last.samples / self.sample_rate - at) < 0.5 / self.sample_rate
        ):
            last.samples += samples
            return
        self._sounded.append(_Sounded(piece, piece.played, samples, at))

    def _check_finished(self, at: float) -> None:
        if self._finished or not self._turn_closed or self._turn_id is None:
            return
        if all(piece.played >= piece.queued and not piece.chunks for piece in self._pieces):
            self._finished = True
            self._events.append(PlaybackFinished(self._turn_id, at))

    # -- the runtime's view -------------------------------------------------------------------

    def drain_events(self) -> list[PlaybackStarted | PlaybackFinished]:
        events = []
        while self._events:
            events.append(self._events.popleft())
        return events

    @property
    def mid_reply(self) -> bool:
        """A reply is under way: opened, neither stopped nor played to its end (paused or
        waiting on the voice counts as under way)."""
        with self._lock:
            return self._turn_id is not None and not self._finished

    @property
    def playing(self) -> bool:
        with self._lock:
            return not self._paused and any(piece.chunks for piece in self._pieces[self._cursor :])

    def words_sounded(self, since: float, until: float) -> str:
        """The words the speaker sounded between two times (loop clock), of whatever reply.

        A piece's words are placed over its samples in proportion to their letters (the voice
        gives no word timings); a piece still rendering, whose length is not known yet, counts
        whole. Callers widen the window by what that estimate may be off."""
        with self._lock:
            sounded: dict[int, tuple[_Piece, set[int]]] = {}  # the words of each piece, in order
            for stretch in self._sounded:
                end_at = stretch.at + stretch.samples / self.sample_rate
                if end_at <= since or stretch.at >= until or not stretch.piece.spoken:
                    continue
                piece = stretch.piece
                _, indices = sounded.setdefault(id(piece), (piece, set()))
                total = piece.queued if piece.complete else 0
                if total <= 0:
                    indices.update(range(len(piece.words)))
                    continue
                first = stretch.first_sample + (max(since, stretch.at) - stretch.at) * self.sample_rate
                last = stretch.first_sample + (min(until, end_at) - stretch.at) * self.sample_rate
                indices.update(
                    index
                    for index, word in enumerate(piece.words)
                    if word.since <= last / total and word.until >= first / total
                )
            return " ".join(
                text for piece, indices in sounded.values() if (text := piece.text_between(indices))
            )

    def heard_text(self, turn_id: int) -> str:
        with self._lock:
            return self._heard_locked() if turn_id == self._turn_id else ""

    def _heard_locked(self) -> str:
        return " ".join(text for piece in self._pieces if (text := piece.heard_text()))
