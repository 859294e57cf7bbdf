"""Carries out the wake gate's decisions (`wake_gate.py`) for the dispatcher.

The gate decides; this does: the machine's restart (a reply stopped, an utterance dropped),
the listener's fresh utterance, the chime, the session log's `attention` lines and the
observer's asleep/awake. The dispatcher asks `admit` for every event before the machine sees
it and tells `turn_finished` at each FinishTurn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from voiceloop.audio.playback import PlaybackQueue
from voiceloop.engine.events import Action, AttentionExpired, Event
from voiceloop.engine.machine import ConversationMachine
from voiceloop.engine.wake_gate import WakeGate, Woken
from voiceloop.session.log import SessionLog
from voiceloop.wake.chime import chime

CHIME_TURN = -1  # the chime's playback turn: no turn of the machine's, so it ignores its events


def _no_attention(attention: str, by: str) -> None:
    pass


@dataclass
class WakeHooks:
    """What carrying out a decision touches besides the machine."""

    playback: PlaybackQueue
    session: SessionLog
    restart_utterance: Callable[[], None]  # the listener's
    chime: bool = True
    on_attention: Callable[[str, str], None] = _no_attention  # ("awake" | "asleep", why)


class WakeControl:
    def __init__(
        self, gate: WakeGate, machine: ConversationMachine, act: Callable[[Action], None], hooks: WakeHooks
    ) -> None:
        self.gate = gate
        self._machine = machine
        self._act = act
        self._hooks = hooks
        self._chime = chime() if hooks.chime else None

    def start(self, at: float) -> None:
        self._hooks.session.write("attention", at=at, state=self.gate.attention.value, why="start")
        self._hooks.on_attention(self.gate.attention.value, "start")

    def admit(self, event: Event) -> bool:
        machine = self._machine
        decision = self.gate.handle(event, machine.state, machine.restarts_for_wake())
        if decision.woken is not None:
            self._woken(decision.woken)
        if decision.expired is not None:
            self._expired(decision.expired)
        return decision.forward

    def turn_finished(self, at: float) -> None:
        self.gate.turn_finished(at)

    def _woken(self, woken: Woken) -> None:
        hooks = self._hooks
        if woken.restart:
            for action in self._machine.restart_for_wake(woken.at):
                self._act(action)
            hooks.restart_utterance()
            if self._chime is not None:
                self._play_chime()
        hooks.session.write(
            "wake",
            at=woken.at,
            by=woken.by,
            probability=woken.probability,
            restart=woken.restart,
            was_asleep=woken.was_asleep,
        )
        if woken.was_asleep:
            hooks.session.write("attention", at=woken.at, state="awake", why=woken.by)
        hooks.on_attention("awake", woken.by)

    def _expired(self, expired: AttentionExpired) -> None:
        self._hooks.session.write("attention", at=expired.at, state="asleep", why="attention_expired")
        self._hooks.on_attention("asleep", "attention_expired")

    def _play_chime(self) -> None:
        playback, sound = self._hooks.playback, self._chime
        assert sound is not None
        playback.open_turn(CHIME_TURN)
        piece = playback.begin_piece(CHIME_TURN, "", spoken=False)
        if piece is not None:
            playback.append(CHIME_TURN, piece, sound)
        playback.close_turn(CHIME_TURN)
