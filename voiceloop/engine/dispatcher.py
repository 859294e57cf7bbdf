"""The dispatcher: events in, the machine, actions out to the turns.

Every event from the listener (mic and speaker) and from the turns' tasks comes through
`dispatch`, so the machine sees them one at a time and in order: an event raised while acting
on another is queued behind it. Each action the machine returns is carried out here by the
turn it names; the turns themselves never read the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from voiceloop.engine.events import (
    Action,
    AskTurnDetector,
    BargeIn,
    CancelReply,
    CancelTranscription,
    EndpointReached,
    Event,
    FinishTurn,
    PausePlayback,
    PlaybackFinished,
    PlaybackStarted,
    ReportError,
    ResumePlayback,
    StartReply,
    StartTranscription,
    StopPlayback,
    TurnVerdictReady,
)
from voiceloop.engine.judge import TurnJudge
from voiceloop.engine.machine import ConversationMachine
from voiceloop.engine.timing import TurnRecord
from voiceloop.engine.turn import Turn, TurnServices
from voiceloop.engine.wake_control import WakeControl


class Dispatcher:
    def __init__(
        self,
        machine: ConversationMachine,
        services: TurnServices,
        *,
        on_state: Callable[[str], None],
        on_turn: Callable[[TurnRecord], None],
        judge: TurnJudge | None = None,
        on_verdict: Callable[[TurnVerdictReady], None] | None = None,
    ) -> None:
        self.machine = machine
        self._s = services
        self._on_state = on_state
        self._on_turn = on_turn
        self._judge = judge
        self._on_verdict = on_verdict
        # Verdicts by turn id, kept apart from the turns: a turn the user talked on through is
        # dropped and begun again under the same id, and its earlier stops belong to it too.
        self._verdicts: dict[int, list[dict[str, float | bool | str | None]]] = {}
        self.turns: dict[int, Turn] = {}  # open turns: transcribing, replying, or finishing
        self._queued: deque[Event] = deque()
        self._dispatching = False
        self._last_state = machine.state
        self.wake: WakeControl | None = None  # kiosk mode: the wake gate sees each event first

    def dispatch(self, event: Event) -> None:
        """Feeds the machine; events raised while acting on another are queued, in order."""
        if isinstance(event, PlaybackStarted | PlaybackFinished):
            self._note_playback(event)
        elif isinstance(event, TurnVerdictReady):
            self._note_verdict(event)
        self._queued.append(event)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._queued:
                event = self._queued.popleft()
                if self.wake is None or self.wake.admit(event):
                    for action in self.machine.handle(event):
                        self.act(action)
                if self.machine.state is not self._last_state:
                    self._last_state = self.machine.state
                    self._on_state(self._last_state.value)
        finally:
            self._dispatching = False

    def _note_playback(self, event: PlaybackStarted | PlaybackFinished) -> None:
        """The speaker's times go into the record of the turn that played, whatever the
        machine makes of them (a turn already cut still wants its playback end)."""
        if (turn := self.turns.get(event.turn_id)) is None:
            return
        if isinstance(event, PlaybackStarted):
            turn.playback_started(event.at)
        else:
            turn.playback_finished(event.at)

    def _note_verdict(self, verdict: TurnVerdictReady) -> None:
        s = self._s
        t0 = s.session.t0 or 0.0
        note: dict[str, float | bool | str | None] = {
            "p": round(verdict.probability, 3),
            "complete": verdict.complete,
            "ms": verdict.elapsed_ms,
            "at": round(verdict.at - t0, 4),
        }
        if verdict.error is not None:
            note["error"] = verdict.error
        self._verdicts.setdefault(verdict.turn_id, []).append(note)
        s.session.write(
            "turn_verdict",
            at=verdict.at,
            turn=verdict.turn_id,
            ask=verdict.ask,
            **{k: v for k, v in note.items() if k != "at"},
        )
        if self._on_verdict is not None:
            self._on_verdict(verdict)

    def act(self, action: Action) -> None:
        s = self._s
        turn = self.turns.get(action.turn_id)
        if isinstance(action, StartTranscription):
            self.turns[action.turn_id] = Turn.heard(action, s)
        elif isinstance(action, EndpointReached):
            if turn is not None:
                turn.endpoint_reached(action, self._verdicts.pop(action.turn_id, []))
        elif isinstance(action, AskTurnDetector):
            if self._judge is not None:
                self._judge.ask(action)
        elif isinstance(action, PausePlayback | ResumePlayback):
            self._pause_or_resume(action, turn)
        elif isinstance(action, CancelTranscription):
            self._cancel_task(turn)
            self.turns.pop(action.turn_id, None)
            s.session.write("speculation_dropped", at=s.clock.now(), turn=action.turn_id)
        elif isinstance(action, StartReply):
            if turn is None:  # the greeting: a reply with no user speech before it
                turn = self.turns[action.turn_id] = Turn.unheard(action.turn_id, s)
            turn.start_reply(action)
        elif isinstance(action, StopPlayback):
            heard = s.playback.stop(action.turn_id)
            if turn is not None:
                turn.stopped(heard)
        elif isinstance(action, CancelReply):
            self._cancel_task(turn)
        elif isinstance(action, BargeIn):
            if turn is not None:
                turn.barged_in(action.at)
            s.session.write("barge_in", at=action.at, turn=action.turn_id)
        elif isinstance(action, ReportError):
            self._report(action, turn)
        elif isinstance(action, FinishTurn):
            if self.wake is not None:
                self.wake.turn_finished(action.at)
            self.turns.pop(action.turn_id, None)
            self._verdicts.pop(action.turn_id, None)
            if turn is not None and (record := turn.finish(action.outcome, action.at)) is not None:
                self._on_turn(record)

    def _pause_or_resume(self, action: PausePlayback | ResumePlayback, turn: Turn | None) -> None:
        s = self._s
        pausing = isinstance(action, PausePlayback)
        done = s.playback.pause(action.turn_id) if pausing else s.playback.resume(action.turn_id)
        if turn is not None:
            turn.held(pausing, s.clock.now())
        s.session.write(
            "playback_paused" if pausing else "playback_resumed",
            at=s.clock.now(),
            turn=action.turn_id,
            speech_at=round(action.at - (s.session.t0 or 0.0), 4),
            playing=done,
            **({"why": action.why} if isinstance(action, ResumePlayback) else {}),
        )

    def _report(self, action: ReportError, turn: Turn | None) -> None:
        s = self._s
        message = f"{action.stage.value}: {action.message}"
        if turn is not None:
            turn.failed(message)
        s.session.write(
            "error", at=s.clock.now(), turn=action.turn_id, stage=action.stage.value, message=action.message
        )
        s.on_error(message)

    @staticmethod
    def _cancel_task(turn: Turn | None) -> None:
        if turn is not None and (task := turn.release_task()) is not None:
            task.cancel()

    async def cancel_all(self) -> None:
        """At the end of the session: every turn's work cancelled and awaited."""
        if self._judge is not None:
            await self._judge.cancel_all()
        tasks = [task for turn in self.turns.values() if (task := turn.release_task()) is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
