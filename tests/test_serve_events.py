"""The events feed's wire format (voiceloop/server/events.py), without a server: the page and
the end-to-end tests (test_serve_live.py, test_serve_browser.py) read exactly these keys."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path

from pydantic import TypeAdapter

from voiceloop.engine.timing import TurnRecord
from voiceloop.server.events import (
    ErrorEvent,
    FeedEvent,
    NoteEvent,
    SessionEvent,
    SessionStatus,
    Snapshot,
    StateEvent,
    TurnEvent,
    UserEvent,
)

ROOT = Path(__file__).parents[1]


def a_turn(**changes: object) -> TurnRecord:
    record = TurnRecord(
        turn_id=2,
        speech_started_at=10.0,
        speech_end_at=11.0,
        vad_speech_end_at=11.05,
        endpoint_at=11.25,
        asr_done_at=11.3,
        transcript="what time is it",
        reply_started_at=11.3,
        llm_first_token_at=11.4,
        first_sentence_at=11.45,
        tts_first_audio_at=11.5,
        playback_start_at=11.55,
        heard_text="You said: what time is it.",
        backend="echo",
        outcome="answered",
    )
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def test_a_turn_is_sent_with_the_keys_in_the_feeds_order() -> None:
    before = time.time()
    wire = TurnEvent.of(a_turn()).wire()

    assert list(wire) == [
        "type", "turn", "greeting", "user", "reply", "outcome", "interrupted", "backend", "errors",
        "timings_ms", "at",
    ]  # fmt: skip
    assert {key: wire[key] for key in list(wire)[:-1]} == {
        "type": "turn",
        "turn": 2,
        "greeting": False,
        "user": "what time is it",
        "reply": "You said: what time is it.",
        "outcome": "answered",
        "interrupted": False,
        "backend": "echo",
        "errors": [],
        "timings_ms": {
            "voice_to_voice": 550.0,
            "endpoint": 250.0,
            "asr": 50.0,
            "llm_ttft": 100.0,
            "tts_first_audio": 50.0,
        },
    }
    assert before - 0.001 <= wire["at"] <= time.time() + 0.001 and round(wire["at"], 3) == wire["at"]


def test_a_greeting_cut_off_is_marked_and_missing_timings_are_null() -> None:
    record = a_turn(turn_id=0, transcript="", user_text="", barge_in_at=11.6, playback_start_at=None)
    wire = TurnEvent.of(record).wire()
    assert wire["greeting"] is True and wire["interrupted"] is True and wire["user"] == ""
    assert wire["timings_ms"]["voice_to_voice"] is None


def test_every_kind_has_its_documented_keys_and_reads_back_as_itself() -> None:
    events = [
        SessionEvent(status="started", source="demo", detail="virtual"),
        StateEvent(state="user_speaking"),
        UserEvent(turn=1, text="hello there"),
        TurnEvent.of(a_turn()),
        ErrorEvent(message="session failed: no LLM"),
        NoteEvent(message="LLM: echo"),
    ]
    keys = {
        "session": ["type", "status", "source", "detail", "at"],
        "state": ["type", "state", "at"],
        "user": ["type", "turn", "text", "at"],
        "error": ["type", "message", "at"],
        "note": ["type", "message", "at"],
    }
    adapter: TypeAdapter[FeedEvent] = TypeAdapter(FeedEvent)
    for event in events:
        wire = json.loads(json.dumps(event.wire()))
        if wire["type"] in keys:
            assert list(wire) == keys[wire["type"]]
        assert adapter.validate_python(wire) == event
    assert StateEvent(state="user_speaking").wire()["state"] == "user_speaking"  # the value, not the enum


def test_the_snapshot_holds_the_status_and_each_event_whole() -> None:
    status = SessionStatus(
        running=True, source="browser", state="listening", turns=1, session_dir="/runs/x", started_at=5.5
    )
    turn = TurnEvent.of(a_turn())
    wire = Snapshot(session=status, events=[UserEvent(turn=2, text="hi"), turn]).wire()

    assert list(wire) == ["type", "session", "events"] and wire["type"] == "snapshot"
    assert wire["session"] == {
        "running": True,
        "source": "browser",
        "state": "listening",
        "turns": 1,
        "session_dir": "/runs/x",
        "started_at": 5.5,
    }
    assert wire["events"][1] == turn.wire()  # not cut down to a common base


def test_every_file_of_the_page_is_packaged() -> None:
    """The page is ES modules in static/ and static/js/: a file the wheel leaves out is a page
    that does not start after `pip install`."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "voiceloop.server"
    ]
    server = ROOT / "voiceloop" / "server"
    packaged = {path for pattern in patterns for path in server.glob(pattern) if path.is_file()}
    page = {
        path for path in (server / "static").rglob("*") if path.is_file() and "__pycache__" not in path.parts
    }
    assert page - packaged == set()
    assert (server / "static" / "js" / "live.js") in packaged
