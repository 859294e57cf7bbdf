"""The wake word (or push-to-talk) as the machine sees it: a hard restart of listening.

A part of `ConversationMachine`, like `over_reply.py`. Whatever was under way when the word
was heard is dropped: a reply stops at once (the word is a hard interrupt, not a barge-in
candidate waiting for a minimum of speech or for words), an utterance the user began before
it is forgotten (its early transcription cancelled), and the machine listens for the words
after it, which the listener starts as a fresh utterance. Only a transcription already past
its endpoint goes on: those words were said to an awake loop and are answered.
"""

from __future__ import annotations

from voiceloop.engine.ending import HeldUtterance
from voiceloop.engine.events import (
    Action,
    BargeIn,
    CancelReply,
    CancelTranscription,
    FinishTurn,
    SpeechEnded,
    StopPlayback,
)
from voiceloop.engine.states import REPLYING, State


class WakeRestart:
    """A part of ConversationMachine: these attributes and methods are the machine's own."""

    state: State
    turn_id: int
    _candidate_at: float | None
    _paused: bool
    _pending_user_text: str
    _merged_turns: list[int]
    _drop_utterance: bool
    _reserved_turn: int | None
    _speculative_turn: int | None
    _probe: tuple[int, SpeechEnded] | None
    _ending: HeldUtterance

    def _drop_speculation(self) -> list[Action]:
        raise NotImplementedError

    def restarts_for_wake(self) -> bool:
        """Whether the word restarts listening now (else it only renews the attention window)."""
        return self.state is not State.TRANSCRIBING

    def restart_for_wake(self, at: float) -> list[Action]:
        if not self.restarts_for_wake():
            return []
        actions: list[Action] = []
        if self._probe is not None:  # speech over the reply, being transcribed: moot now
            probe, _ = self._probe
            self._probe, self._reserved_turn = None, probe
            actions.append(CancelTranscription(probe))
        if self._speculative_turn is not None:
            actions += self._drop_speculation()
        self._ending.go_on()  # a stop still held or being judged no longer matters...
        self._ending.prefix = None  # ...nor do the parts said before the word
        if self.state in REPLYING:
            turn = self.turn_id
            actions += [
                BargeIn(turn, at),
                StopPlayback(turn),
                CancelReply(turn),
                FinishTurn(turn, "interrupted", at),
            ]
        self.state = State.LISTENING
        self._candidate_at = None
        self._paused = False
        self._pending_user_text = ""
        self._merged_turns = []
        self._drop_utterance = False
        return actions
