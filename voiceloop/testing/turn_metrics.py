"""Turn-taking figures from a virtual-room session log, counted against the room's ground truth.

The room writes each scripted line's true start, end and inner pauses (`user_utterance`); the
loop writes its turns (`turn`: when it heard speech start and stop, its endpoint, when its
reply played and whether it was stopped). Matching the two says what the loop made of natural
speech without trusting the VAD that is under test: a turn the loop closed (every `turn` line
is one: dropped speculations leave none) whose speech stopped inside a line was ended
prematurely, whatever it became (answered, merged, or thrown away as no speech); a reply that
starts playing inside a line was heard by a user still talking. The VAD's stop and the reply's
first sound are times of the room's frames; `endpoint_at` is not used, as it is the loop's
clock when the engine got there, which runs ahead of the frames on a loaded machine.

All times are seconds from the session start, as the log holds them.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import Any

SLACK_S = 0.05  # VAD onsets and offsets land a few frames off the true edges
PREROLL_S = 0.3  # [vad] preroll_ms's default
# A line spoken over a reply "stopped" it if a barge-in came while it was said or this soon after.
BARGE_IN_WINDOW_S = 1.0
# Session-log keys that may carry the end-of-turn detector's cost per call.
DETECTOR_KEYS = re.compile(r"(detector|turn).*(_ms|ms_per_call)$|^decision_ms$")


@dataclass
class Utterance:
    index: int
    kind: str
    text: str
    start: float
    end: float
    pauses: list[list[float]]
    over_reply: bool
    is_speech: bool


@dataclass
class TurnFigures:
    lines: dict[str, int] = field(default_factory=dict)
    paused: int = 0
    premature_endpoints: int = 0  # endpoints inside a paused line, all of them
    paused_cut: int = 0  # paused lines with at least one endpoint inside
    paused_answered_mid: int = 0  # paused lines with a reply audible before they ended
    whole_as_one: int = 0  # lines that reached the LLM as one message
    to_answer: int = 0  # lines that should each have reached the LLM (not spoken over a reply)
    reached_llm: int = 0  # lines that reached the LLM at all
    backchannels_over_reply: int = 0
    backchannels_stopping: int = 0
    interruptions_over_reply: int = 0
    interruptions_caught: int = 0
    reaction_ms: list[float] = field(default_factory=list)  # first sound → playback paused/stopped
    barge_in_ms: list[float] = field(default_factory=list)  # first sound → the loop's barge-in
    complete_v2v_ms: list[float] = field(default_factory=list)
    detector_ms: list[float] = field(default_factory=list)
    not_over_reply: list[str] = field(default_factory=list)  # over-reply lines said after the reply

    def summary(self) -> dict[str, Any]:
        def rate(part: int, whole: int) -> float | None:
            return round(100 * part / whole, 1) if whole else None

        return {
            "lines": self.lines,
            "paused_lines": self.paused,
            "premature_endpoints": self.premature_endpoints,
            "paused_lines_cut_pct": rate(self.paused_cut, self.paused),
            "replies_mid_utterance_pct": rate(self.paused_answered_mid, self.paused),
            "lines_to_answer": self.to_answer,
            "whole_as_one_message_pct": rate(self.whole_as_one, self.to_answer),
            "lines_reaching_llm": self.reached_llm,
            "backchannels_over_reply": self.backchannels_over_reply,
            "backchannels_stopping_pct": rate(self.backchannels_stopping, self.backchannels_over_reply),
            "interruptions_over_reply": self.interruptions_over_reply,
            "interruptions_caught_pct": rate(self.interruptions_caught, self.interruptions_over_reply),
            "reaction_ms": percentiles(self.reaction_ms),
            "barge_in_decision_ms": percentiles(self.barge_in_ms),
            "complete_voice_to_voice_ms": percentiles(self.complete_v2v_ms),
            "detector_ms_per_call": percentiles(self.detector_ms),
            "over_reply_lines_said_after_the_reply": self.not_over_reply,
        }


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p90": None}
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else values[0]
    return {"n": len(values), "p50": round(statistics.median(values), 1), "p90": round(p90, 1)}


def utterances(log: list[dict[str, Any]]) -> list[Utterance]:
    return [
        Utterance(
            e["index"],
            e["kind"],
            e["text"],
            e["start"],
            e["end"],
            e["pauses"],
            e["over_reply"],
            e["is_speech"],
        )
        for e in log
        if e["event"] == "user_utterance"
    ]


def _heard(turn: dict[str, Any], u: Utterance) -> bool:
    """The turn's speech span overlaps the line."""
    start, end = turn["speech_started_at"], turn["vad_speech_end_at"]
    return start < u.end + SLACK_S and u.start < end + SLACK_S


def _reached_llm(turn: dict[str, Any]) -> bool:
    return turn.get("reply_started_at") is not None


def _inside(at: float | None, u: Utterance) -> bool:
    return at is not None and u.start + SLACK_S < at < u.end - SLACK_S


def _is_playback_pause(event: str) -> bool:
    """Playback paused for a barge-in candidate, under whatever name the engine logs it."""
    return event in ("pause", "paused") or ("playback" in event and "pause" in event)


def analyse(log: list[dict[str, Any]], preroll_s: float = PREROLL_S) -> TurnFigures:
    """`preroll_s`: the audio the loop keeps before a VAD onset (`[vad] preroll_ms`): a line whose
    first sound is that much before the onset is still whole in what the recogniser hears
    (silero hears an unvoiced "s" or "th" late: onsets 50-90 ms after the true start)."""
    turns = [e for e in log if e["event"] == "turn" and e.get("turn_id", 0) > 0]
    lines = utterances(log)
    pauses_of_playback = [e for e in log if _is_playback_pause(e["event"])]
    out = TurnFigures()
    for u in lines:
        out.lines[u.kind] = out.lines.get(u.kind, 0) + 1
        if not u.is_speech or u.kind == "passer_by":  # nothing may come of it (kiosk_lines.py)
            continue
        heard_by = [t for t in turns if _heard(t, u)]
        if u.kind == "paused":
            out.paused += 1
            cuts = [t for t in heard_by if _inside(t["vad_speech_end_at"], u)]
            out.premature_endpoints += len(cuts)
            out.paused_cut += bool(cuts)
            out.paused_answered_mid += any(_inside(t.get("playback_start_at"), u) for t in turns)
        if u.kind in ("paused", "complete") or not u.over_reply:
            _count_whole(out, u, heard_by, preroll_s)
        if u.kind in ("backchannel", "interruption"):
            _count_over_reply(out, u, turns, pauses_of_playback)
        if u.kind == "complete" and not u.over_reply:
            answered = [t for t in heard_by if t.get("playback_start_at") is not None]
            if answered and answered[-1]["playback_start_at"] >= u.end:
                out.complete_v2v_ms.append(round((answered[-1]["playback_start_at"] - u.end) * 1000, 1))
    out.detector_ms = [
        float(v)
        for e in log
        for k, v in e.items()
        if DETECTOR_KEYS.search(k) and isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return out


def _count_whole(out: TurnFigures, u: Utterance, heard_by: list[dict[str, Any]], preroll_s: float) -> None:
    """One message: the LLM was asked once, and that request's speech (with the turns merged
    into it, which the LLM never answered audibly) spans the whole line."""
    out.to_answer += 1  # a line that never reached the LLM (lost, or thrown away) counts against
    asked = [t for t in heard_by if _reached_llm(t)]
    if not asked:
        return
    out.reached_llm += 1
    final = asked[-1]
    earlier = asked[:-1]
    merged_only = all(t["outcome"] == "merged" and t.get("playback_start_at") is None for t in earlier)
    first_start = min(t["speech_started_at"] for t in asked) if merged_only else final["speech_started_at"]
    covers = first_start - preroll_s <= u.start and final["vad_speech_end_at"] >= u.end - SLACK_S
    out.whole_as_one += bool(merged_only and covers)


def _count_over_reply(
    out: TurnFigures, u: Utterance, turns: list[dict[str, Any]], paused_events: list[dict[str, Any]]
) -> None:
    if not u.over_reply:
        out.not_over_reply.append(u.text)
        return
    window = (u.start, u.end + BARGE_IN_WINDOW_S)
    stopped = [
        t
        for t in turns
        if t.get("barge_in_at") is not None
        and window[0] <= t["barge_in_at"] <= window[1]
        and t["outcome"] in ("interrupted", "merged")
    ]
    if u.kind == "backchannel":
        out.backchannels_over_reply += 1
        out.backchannels_stopping += bool(stopped)
        return
    out.interruptions_over_reply += 1
    if not stopped:
        return
    out.interruptions_caught += 1
    out.barge_in_ms.append(round((min(t["barge_in_at"] for t in stopped) - u.start) * 1000, 1))
    # First silence of the reply: playback paused (where the loop logs a pause) or stopped.
    # `playback_end_at` is the loop's clock when it stopped the queue, as demo.py's barge-in
    # reaction counts it: on a machine too slow for its recogniser the room's frames lag that
    # clock, and the barge-in decision (a frame time) is the steadier figure.
    reacted = [t["playback_end_at"] for t in stopped if t.get("playback_end_at") is not None]
    reacted += [e["t"] for e in paused_events if "t" in e and window[0] <= e["t"] <= window[1]]
    if reacted:
        out.reaction_ms.append(round((min(reacted) - u.start) * 1000, 1))
