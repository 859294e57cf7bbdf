"""The wake gate: asleep until the wake word (or push-to-talk), then awake for an attention window.

Pure logic beside the conversation machine, in the same manner: typed events in, decisions
out, no audio and no clock. The dispatcher shows it every event before the machine; the gate
says whether the machine may see it and what else must happen:

- asleep, user speech (`SpeechStarted` … `SpeechEnded`) goes no further: no transcription, no
  LLM, whoever talks (passers-by, the meeting next door);
- `WakeWordHeard` / `PushToTalk` wake it (`Woken`): the machine drops whatever was under way
  (a reply stops: the word is a hard interrupt), the listener starts a fresh utterance after
  the word, a chime confirms if configured; awake, the word restarts listening the same way;
- awake, each finished turn renews the window; once the machine is idle (LISTENING) past the
  window's end, the gate falls asleep (`AttentionExpired`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from voiceloop.engine.events import (
    AttentionExpired,
    Event,
    PushToTalk,
    SpeechEnded,
    SpeechPaused,
    SpeechProgress,
    SpeechStarted,
    Tick,
    WakeWordHeard,
)
from voiceloop.engine.states import State

SPEECH_EVENTS = (SpeechStarted, SpeechProgress, SpeechPaused, SpeechEnded)


class Attention(str, Enum):
    ASLEEP = "asleep"
    AWAKE = "awake"


@dataclass(frozen=True)
class Woken:
    """Wake now: `restart` = the machine drops what was under way and the listener starts a
    fresh utterance (not while a transcription is past its endpoint: those words stand)."""

    at: float
    by: str  # the word (`okay_nabu`), or `push_to_talk`
    restart: bool
    was_asleep: bool
    probability: float | None = None


@dataclass(frozen=True)
class GateDecision:
    forward: bool  # the machine sees the event
    woken: Woken | None = None
    expired: AttentionExpired | None = None


PASS = GateDecision(forward=True)
HOLD = GateDecision(forward=False)


class WakeGate:
    def __init__(self, attention_s: float) -> None:
        self.attention_s = attention_s
        self.attention = Attention.ASLEEP
        self.awake_until = 0.0

    @property
    def awake(self) -> bool:
        return self.attention is Attention.AWAKE

    def handle(self, event: Event, machine_state: State, restarts: bool = True) -> GateDecision:
        """`restarts`: whether the machine would restart listening now (`restarts_for_wake`)."""
        if isinstance(event, WakeWordHeard | PushToTalk):
            return GateDecision(forward=False, woken=self._wake(event, restarts))
        if isinstance(event, SPEECH_EVENTS):
            return PASS if self.awake else HOLD
        if isinstance(event, AttentionExpired):
            return HOLD  # the gate's own: it makes them, nobody else may
        if isinstance(event, Tick) and self.awake and machine_state is State.LISTENING:
            if event.at >= self.awake_until:
                self.attention = Attention.ASLEEP
                return GateDecision(forward=True, expired=AttentionExpired(event.at))
        return PASS

    def turn_finished(self, at: float) -> None:
        """Each reply (any finished turn) gives the user the whole window again to follow up."""
        if self.awake:
            self.awake_until = max(self.awake_until, at + self.attention_s)

    def _wake(self, event: WakeWordHeard | PushToTalk, restarts: bool) -> Woken:
        was_asleep = not self.awake
        self.attention = Attention.AWAKE
        self.awake_until = max(self.awake_until, event.at + self.attention_s)
        if isinstance(event, WakeWordHeard):
            return Woken(event.at, event.word, restarts, was_asleep, event.probability)
        return Woken(event.at, "push_to_talk", restarts, was_asleep)
