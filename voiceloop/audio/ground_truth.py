"""The virtual room's ground truth in the session log: what the scripted user said, and when.

A VAD's idea of where speech starts and stops is what a turn-taking benchmark tests, so it
cannot be the measure: the room knows each line's first and last sample and where the pauses
inside it lie, and writes them (one `user_utterance` line each, flushed as the line ends, on
the loop's clock relative to the session start). `virtual_room` marks where the recorded tracks
of conversation.wav begin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voiceloop.audio.script import UserScript
    from voiceloop.audio.scripted_user import UserUtterance
    from voiceloop.session.log import SessionLog


class GroundTruthLog:
    def __init__(self, session: SessionLog, script: UserScript) -> None:
        self.session = session
        self.script = script
        self.logged = 0  # utterances already written
        self.t0: float | None = None  # room time 0 on the loop clock
        self.room_elapsed = 0.0  # room time the delivered frames cover

    def room_started(self, t0: float, speed: float, frame_ms: float) -> None:
        self.t0 = t0
        self.session.write("virtual_room", at=t0, speed=speed, frame_ms=frame_ms)

    def advance(self, room_now: float, utterances: Sequence[UserUtterance]) -> None:
        """Frames up to room time `room_now` are out: every line ended by then is written."""
        self.room_elapsed = room_now
        self._write(utterances, until=room_now)

    def close(self, utterances: Sequence[UserUtterance]) -> None:
        """The room stops: lines still playing are written too, marked `finished = false`."""
        self._write(utterances, until=None)

    def _write(self, utterances: Sequence[UserUtterance], until: float | None) -> None:
        t0 = self.t0
        if t0 is None:
            return
        base = self.session.t0 if self.session.t0 is not None else t0

        def rel(room_time: float) -> float:
            return round(t0 + room_time - base, 4)

        while self.logged < len(utterances):
            u = utterances[self.logged]
            if until is not None and u.end_at > until:
                return
            self.session.write(
                "user_utterance",
                at=t0 + u.end_at,
                index=u.index,
                kind=u.kind,
                text=u.expected,
                start=rel(u.start_at),
                end=rel(u.end_at),
                pauses=[[rel(a), rel(b)] for a, b in u.pauses],
                over_reply=u.over_reply,
                is_speech=u.is_speech,
                during_reply_ms=self.script.turns[u.index].interrupt_after_ms,
                finished=u.end_at <= self.room_elapsed,
                **({"wake_end": rel(u.wake_end_at)} if u.wake_end_at is not None else {}),
                **({"passer_by": True} if u.passer_by else {}),
            )
            self.logged += 1
