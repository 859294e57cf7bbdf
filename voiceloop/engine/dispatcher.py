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
    BargeIn,
    CancelReply,
    CancelTranscription,
    EndpointReached,
    Event,
    FinishTurn,
    PlaybackFinished,
    PlaybackStarted,
    ReportError,
    StartReply,
    StartTranscription,
    StopPlayback,
)
from voiceloop.engine.machine import ConversationMachine
from voiceloop.engine.timing import TurnRecord
from voiceloop.engine.turn import Turn, TurnServices


class Dispatcher:
    def __init__(
        self,
        machine: ConversationMachine,
        services: TurnServices,
        *,
        on_state: Callable[[str], None],
        on_turn: Callable[[TurnRecord], None],
    ) -> None:
        self.machine = machine
        self._s = services
        self._on_state = on_state
        self._on_turn = on_turn
        self.turns: dict[int, Turn] = {}  # open turns: transcribing, replying, or finishing
        self._queued: deque[Event] = deque()
        self._dispatching = False
        self._last_state = machine.state

    def dispatch(self, event: Event) -> None:
        """Feeds the machine; events raised while acting on another are queued, in order."""
        if isinstance(event, PlaybackStarted | PlaybackFinished):
            self._note_playback(event)
        self._queued.append(event)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._queued:
                for action in self.machine.handle(self._queued.popleft()):
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

    def act(self, action: Action) -> None:
        s = self._s
        turn = self.turns.get(action.turn_id)
        if isinstance(action, StartTranscription):
            self.turns[action.turn_id] = Turn.heard(action, s)
        elif isinstance(action, EndpointReached):
            if turn is not None:
                turn.endpoint_reached(action)
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
            self.turns.pop(action.turn_id, None)
            if turn is not None and (record := turn.finish(action.outcome, action.at)) is not None:
                self._on_turn(record)

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
        tasks = [task for turn in self.turns.values() if (task := turn.release_task()) is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
