"""The events feed's messages (`WebSocket /v1/session/events`), one model per kind.

OpenAPI has no words for a websocket, so these models are the feed's contract: the page
(static/js/live.js) and the tests read exactly what `wire()` writes. Each event is stamped
with "at" (Unix time, ms precision) when it is made, which is when the hub publishes it; "at"
is declared last in every model so the JSON keeps the order the feed has always had.

    {"type": "snapshot", "session": <GET /v1/session>, "events": [...]}   on connecting
    {"type": "session", "status": "started" | "ended", "source", "detail", "at"}
    {"type": "state", "state": "listening" | "user_speaking" | "transcribing" | "thinking" | "speaking", "at"}
    {"type": "partial", "utterance", "text", "at"}  while the user speaks (asr.streaming)
    {"type": "user", "turn", "text", "at"}          as soon as the words are known
    {"type": "detector", "turn", "probability", "complete", "elapsed_ms", "at"}   each VAD stop judged
    {"type": "turn", "turn", "greeting", "user", "reply" (what was played), "outcome",
     "interrupted", "backend", "errors", "timings_ms": {voice_to_voice, endpoint, asr,
     llm_ttft, tts_first_audio}, "at"}
    {"type": "error", "message", "at"}, {"type": "note", "message", "at"}
    {"type": "attention", "state": "asleep" | "awake", "why", "at"}   kiosk mode (loop.wake) only;
        why: the word that woke it, "push_to_talk", "attention_expired" or "start"
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voiceloop.engine.machine import State
from voiceloop.engine.timing import TurnRecord

SessionSource = Literal["demo", "devices", "browser"]
GREETING_TURN = 0  # the machine's turn 0: it reaches the feed only when the user cut it off


def stamp() -> float:
    return round(time.time(), 3)


class _Wire(BaseModel):
    """Frozen: an event kept in the hub's recent history is what every late page is sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The JSON object as the page receives it."""
        return self.model_dump(mode="json")


class SessionStatus(_Wire):
    """`GET /v1/session`, and the snapshot's "session"."""

    running: bool
    source: SessionSource | None
    state: State | None
    turns: int
    session_dir: str | None
    started_at: float | None


class SessionEvent(_Wire):
    type: Literal["session"] = "session"
    status: Literal["started", "ended"]
    source: SessionSource
    detail: str  # the device's name when started; "finished", "stopped" or "failed: …" when ended
    at: float = Field(default_factory=stamp)


class StateEvent(_Wire):
    type: Literal["state"] = "state"
    state: State
    at: float = Field(default_factory=stamp)


class UserEvent(_Wire):
    """The user's words, sent before the reply so the page shows them at once."""

    type: Literal["user"] = "user"
    turn: int
    text: str
    at: float = Field(default_factory=stamp)


class PartialEvent(_Wire):
    """What the streaming model has heard so far of the utterance under way (`asr.streaming`):
    the page shows it as a provisional user line, replaced by the `user` event's final text."""

    type: Literal["partial"] = "partial"
    utterance: int
    text: str
    at: float = Field(default_factory=stamp)


class DetectorEvent(_Wire):
    """The turn detector's verdict on a VAD stop: the page shows "listening… (incomplete 0.12)"."""

    type: Literal["detector"] = "detector"
    turn: int
    probability: float
    complete: bool
    elapsed_ms: float
    at: float = Field(default_factory=stamp)


class TurnTimings(_Wire):
    """The latencies the page charts (ms; None where the turn never got that far)."""

    voice_to_voice: float | None
    endpoint: float | None
    asr: float | None
    llm_ttft: float | None
    tts_first_audio: float | None


class TurnEvent(_Wire):
    type: Literal["turn"] = "turn"
    turn: int
    greeting: bool
    user: str
    reply: str  # what was played, not everything the LLM wrote
    outcome: str
    interrupted: bool
    backend: str
    errors: list[str]
    timings_ms: TurnTimings
    at: float = Field(default_factory=stamp)

    @classmethod
    def of(cls, record: TurnRecord) -> TurnEvent:
        timings = record.timings_ms()
        return cls(
            turn=record.turn_id,
            greeting=record.turn_id == GREETING_TURN,
            user=record.transcript or record.user_text,
            reply=record.heard_text,
            outcome=record.outcome,
            interrupted=record.barge_in_at is not None,
            backend=record.backend,
            errors=list(record.errors),
            timings_ms=TurnTimings(**{key: timings.get(key) for key in TurnTimings.model_fields}),
        )


class ErrorEvent(_Wire):
    type: Literal["error"] = "error"
    message: str
    at: float = Field(default_factory=stamp)


class NoteEvent(_Wire):
    """A line for the transcript that is neither side speaking (e.g. which LLM answers)."""

    type: Literal["note"] = "note"
    message: str
    at: float = Field(default_factory=stamp)


class AttentionEvent(_Wire):
    """Kiosk mode: the loop fell asleep (only the wake word or push-to-talk wakes it) or woke."""

    type: Literal["attention"] = "attention"
    state: Literal["asleep", "awake"]
    why: str
    at: float = Field(default_factory=stamp)


FeedEvent = Annotated[
    SessionEvent
    | StateEvent
    | PartialEvent
    | UserEvent
    | DetectorEvent
    | TurnEvent
    | ErrorEvent
    | NoteEvent
    | AttentionEvent,
    Field(discriminator="type"),
]


class Snapshot(_Wire):
    """The first message on every connection: what a page that connects mid-session missed."""

    type: Literal["snapshot"] = "snapshot"
    session: SessionStatus
    events: list[FeedEvent]
