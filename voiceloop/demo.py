"""`voiceloop demo`: a scripted spoken conversation in the virtual room, and its report.

The report compares what the scripted user said with what the loop heard, and counts
self-transcriptions: transcripts of audio in which only the assistant was speaking, i.e. the
assistant hearing itself — the failure voiceloop exists to avoid.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voiceloop.asr.base import SpeechRecognizer
from voiceloop.audio.script import UserScript
from voiceloop.audio.virtual import VirtualRoom, room_as_configured
from voiceloop.build.llm import choose_llm
from voiceloop.config import Settings
from voiceloop.engine.runtime import Observer
from voiceloop.engine.timing import SUMMARY_TIMINGS, TurnRecord
from voiceloop.llm.base import ChatModel
from voiceloop.session.runner import conversation
from voiceloop.tts.base import SpeechSynthesizer


@dataclass
class DemoResult:
    report: dict[str, Any]
    turns: list[TurnRecord]
    session_dir: Path
    # (expected text, start, end) of each scripted line on the loop clock: the ground truth.
    user_lines: list[tuple[str, float, float]] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)  # what the LLM was last told


async def run_demo(
    settings: Settings,
    script: UserScript,
    *,
    say: Callable[[str], None] = print,
    observer: Observer | None = None,
    llm: ChatModel | None = None,
    tts: SpeechSynthesizer | None = None,
    asr: SpeechRecognizer | None = None,
) -> DemoResult:
    room = VirtualRoom(script, room_as_configured(settings))
    chosen_llm = llm if llm is not None else await choose_llm(settings, say)
    async with conversation(settings, room, llm=chosen_llm, asr=asr, tts=tts, observer=observer) as talk:
        await talk.run()
    report = build_report(talk.finished_turns, room, settings.vad.stop_ms)
    with (talk.session.dir / "report.json").open("w", encoding="utf-8") as out:
        import json

        json.dump(report, out, indent=2, ensure_ascii=False)
    user_lines = [
        (u.expected, start, end)
        for u, (start, end) in zip(room.user.utterances, room.user_speech_intervals(), strict=True)
    ]
    return DemoResult(report, list(talk.finished_turns), talk.session.dir, user_lines, talk.history.exchanges)


# A hold comes after the sound VAD heard: its start window and a chunk later, up to this long
# after the end of the shortest sound (a cough).
HOLD_AFTER_SOUND_S = 0.5


def _overlaps(a: tuple[float, float], b: tuple[float, float], slack: float = 0.05) -> bool:
    return a[0] < b[1] + slack and b[0] < a[1] + slack


def build_report(turns: Sequence[TurnRecord], room: VirtualRoom, stop_window_ms: float) -> dict[str, Any]:
    """One report entry per scripted line, matched to the turn(s) that heard it."""
    lines = room.user.utterances
    intervals = room.user_speech_intervals()
    entries: list[dict[str, Any]] = []
    for utterance, interval in zip(lines, intervals, strict=True):
        heard_by = [t for t in turns if _overlaps((t.speech_started_at, t.vad_speech_end_at), interval)]
        answered = [t for t in heard_by if t.outcome != "merged"] or heard_by
        last = answered[-1] if answered else None
        entries.append(
            {
                "expected": utterance.expected,
                "transcript": " ".join(t.transcript for t in heard_by if t.transcript).strip(),
                "reply": last.heard_text if last else "",
                "interrupted": bool(last and last.outcome == "interrupted"),
                "timings_ms": _report_timings(last),
                "outcome": last.outcome if last else "not_heard",
            }
        )
    self_heard = [
        t
        for t in turns
        if t.transcript
        and not any(_overlaps((t.speech_started_at, t.vad_speech_end_at), iv) for iv in intervals)
    ]
    overheads = [o for t in turns if (o := t.overhead_ms(stop_window_ms)) is not None]
    reactions = barge_in_reactions(turns, lines, intervals)
    errors = [error for t in turns for error in t.errors]
    return {
        "turns": entries,
        "self_transcriptions": len(self_heard),
        "self_transcribed_text": [t.transcript for t in self_heard],
        # The reply held for "speech" while the user made no sound: its own echo, heard as the
        # user, stopping it mid-word for the 0.2-0.6 s until that speech ends (a stutter).
        "echo_holds": len(echo_holds(turns, intervals)),
        "replies_played": sum(1 for t in turns if t.playback_start_at is not None),
        "barge_ins": sum(1 for t in turns if t.barge_in_at is not None),
        "barge_in": {
            "attempts": sum(1 for u in lines if u.over_reply and u.is_speech),
            "detected": len(reactions),
            "reaction_ms": reactions,
        },
        "errors": errors,
        "word_error_rate": word_error_rate(
            [e["expected"] for e in entries], [e["transcript"] for e in entries]
        ),
        "overhead_ms": {
            "median": round(statistics.median(overheads), 1) if overheads else None,
            "per_turn": overheads,
            "stop_window_ms": stop_window_ms,
        },
    }


def echo_holds(turns: Sequence[TurnRecord], intervals: list[tuple[float, float]]) -> list[float]:
    """When each hold of a reply began that no sound of the user's explains: one is taken
    after the onset it heard (VAD's start and a chunk: up to HOLD_AFTER_SOUND_S after the
    sound ends for the shortest), never before it."""
    return [
        at
        for turn in turns
        for at in turn.hold_starts
        if not any(start <= at <= end + HOLD_AFTER_SOUND_S for start, end in intervals)
    ]


def barge_in_reactions(
    turns: Sequence[TurnRecord], lines: list[Any], intervals: list[tuple[float, float]]
) -> list[float]:
    """For each scripted line spoken over a reply that it stopped, the time from its first
    sound until the assistant went quiet for it: the pause while its words are judged, or the
    stop itself where nothing paused first (what the user hears as the reaction)."""
    reactions = []
    for utterance, (start, end) in zip(lines, intervals, strict=True):
        if not (utterance.over_reply and utterance.is_speech):
            continue
        quiet = [
            t.playback_end_at if t.paused_at is None else min(t.paused_at, t.playback_end_at)
            for t in turns
            if t.barge_in_at is not None
            and t.playback_end_at is not None
            and start <= (t.paused_at or t.barge_in_at) <= end + 1.0
        ]
        if quiet:
            reactions.append(round((min(quiet) - start) * 1000, 1))
    return reactions


def _report_timings(turn: TurnRecord | None) -> dict[str, float | None]:
    timings = turn.timings_ms() if turn else {}
    return {key: timings.get(key) for key in SUMMARY_TIMINGS}


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    import jiwer

    pairs = [(r.lower(), h.lower()) for r, h in zip(references, hypotheses, strict=True) if r.strip()]
    if not pairs:
        return 0.0
    refs, hyps = zip(*pairs, strict=True)
    return round(float(jiwer.wer(list(refs), [h if h.strip() else "<none>" for h in hyps])), 3)
