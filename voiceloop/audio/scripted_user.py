"""The virtual room's scripted user: when each line starts, reacting to what the assistant does
(waits for a reply to end, talks over one on cue, gives up on one that never comes), and what
was actually played, on the room's clock, for the ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.script import UserScript

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True)
class UserUtterance:
    """One scripted line as it was actually played into the mic (voiced part, room time)."""

    index: int
    expected: str
    start_at: float
    end_at: float
    over_reply: bool
    is_speech: bool = True  # False for a cough: nothing should come of it
    pauses: tuple[tuple[float, float], ...] = ()  # silences inside the line (room time)
    kind: str = "complete"  # what the line tests (ScriptTurn.turn_kind; "noise" for no words)
    wake_end_at: float | None = None  # kiosk mode: the end of the wake word the line began with
    passer_by: bool = False  # not said to the assistant: no turn may come of it


class ScriptedUser:
    """Decides, frame by frame, when the next scripted line starts, reacting to the assistant."""

    def __init__(
        self,
        script: UserScript,
        lines: list[np.ndarray],
        pauses: list[tuple[tuple[float, float], ...]] | None = None,
        wake_ends: list[float | None] | None = None,
    ) -> None:
        self.script = script
        self.lines = lines
        self.pauses = pauses or [() for _ in lines]  # per line, seconds from its first sample
        self.wake_ends = wake_ends or [None for _ in lines]  # per line, seconds from its first sample
        self.next_index = 0
        self._playing: np.ndarray | None = None
        self._position = 0
        self._line_ended_at: float | None = None  # when our last line finished
        self._reply_started_at: float | None = None  # first sound from the assistant after it
        self._assistant_since: float | None = None  # start of the current stretch of sound
        self._assistant_last: float | None = None  # last time the assistant was audible
        self.utterances: list[UserUtterance] = []
        self.drop_requested_ms = 0  # a scripted device drop the room should carry out now
        self.finished_at: float | None = None
        self._mid_reply = False

    def frame(self, at: float, assistant_audible: bool, mid_reply: bool = False) -> np.ndarray:
        """`mid_reply`: the assistant has a reply under way (the playback queue says so). A
        polite user does not take a gap in it, say the voice still rendering its next sentence
        on a loaded machine, for the end of the reply."""
        self._mid_reply = mid_reply
        if assistant_audible:
            self._assistant_last = at
            if self._assistant_since is None:
                self._assistant_since = at
            if self._playing is None and self._line_ended_at is not None and self._reply_started_at is None:
                self._reply_started_at = at
        else:
            self._assistant_since = None
        if self._playing is None and self.next_index < len(self.lines) and self._ready(at):
            self._start_line(at, assistant_audible)
        return self._next_samples(at)

    @property
    def done(self) -> bool:
        return self.finished_at is not None

    def _ready(self, at: float) -> bool:
        turn = self.script.turns[self.next_index]
        if self._line_ended_at is None:  # the very first line: after any greeting
            quiet_since = self._assistant_last if self._assistant_last is not None else 0.0
            quiet = self._assistant_since is None and not self._mid_reply
            return quiet and (at - quiet_since) * 1000 >= turn.pause_ms
        replied = self._reply_started_at is not None
        # The user gives up waiting once nothing has come for reply_timeout_ms: since their
        # line ended if no reply began, since the last sound of one still under way (a long
        # reply on a slow machine is still a reply, not a reason to talk over it).
        last_heard = self._assistant_last if replied and self._mid_reply else None
        waited = at - (last_heard if last_heard is not None else self._line_ended_at)
        if waited * 1000 >= turn.reply_timeout_ms:
            return True
        if turn.interrupt_after_ms is not None and replied and self._assistant_since is not None:
            # Talk over the reply once it has been playing this long (pauses included).
            if (at - self._reply_started_at) * 1000 >= turn.interrupt_after_ms:  # type: ignore[operator]
                return True
        quiet_for = at - (self._assistant_last if self._assistant_last is not None else 0.0)
        quiet = self._assistant_since is None and not self._mid_reply
        return replied and quiet and quiet_for * 1000 >= turn.pause_ms

    def _start_line(self, at: float, over_reply: bool) -> None:
        line = self.lines[self.next_index]
        turn = self.script.turns[self.next_index]
        self._playing, self._position = line, 0
        self.utterances.append(
            UserUtterance(
                index=self.next_index,
                expected=turn.expected_text,
                is_speech=turn.is_speech,
                start_at=at,
                end_at=at + line.size / SAMPLE_RATE,
                over_reply=over_reply,
                pauses=tuple((at + start, at + end) for start, end in self.pauses[self.next_index]),
                kind="passer_by" if turn.passer_by else turn.turn_kind if turn.is_speech else "noise",
                wake_end_at=None if (wake_end := self.wake_ends[self.next_index]) is None else at + wake_end,
                passer_by=turn.passer_by,
            )
        )
        self.next_index += 1
        if turn.drop_ms is not None:
            self.drop_requested_ms = turn.drop_ms

    def _next_samples(self, at: float) -> np.ndarray:
        out = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        if self._playing is not None:
            piece = self._playing[self._position : self._position + FRAME_SAMPLES]
            out[: piece.size] = piece
            self._position += FRAME_SAMPLES
            if self._position >= self._playing.size:
                self._playing = None
                self._line_ended_at = at + FRAME_S
                self._reply_started_at = None  # only what the assistant says after this counts
        elif self.next_index >= len(self.lines) and self._line_ended_at is not None:
            heard_back = (
                self._reply_started_at is not None and self._assistant_since is None and not self._mid_reply
            )
            quiet_for = at - max(self._assistant_last or 0.0, self._line_ended_at)
            waited = (at - self._line_ended_at) * 1000 >= self.script.turns[-1].reply_timeout_ms
            no_reply = self._reply_started_at is None and waited
            if (heard_back and quiet_for * 1000 >= self.script.tail_ms) or no_reply:
                self.finished_at = at
        return out
