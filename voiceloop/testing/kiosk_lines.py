"""Kiosk mode for the scripted benches (the soak, the turn bench): a script's requests said after
the wake word, passers-by talking while the kiosk sleeps, and the one figure that must stay 0:
turns started by passers-by, counted from the room's ground truth in the session log."""

from __future__ import annotations

import random
from typing import Any

from voiceloop.audio.script import ScriptTurn, UserScript
from voiceloop.testing.kiosk_hour import PASSERS_BY

WAKE_PHRASE = "okay nabu"  # what espeak says for the `okay_nabu` model (it accepts en-us+m3)


def kiosk_script(
    script: UserScript, attention_s: float, seed: int = 1, passer_every: int = 3, wake: str = WAKE_PHRASE
) -> UserScript:
    """Every line said when the loop may be asleep (not over a reply) starts with the wake word;
    before every `passer_every`-th, a passer-by talks once the attention window has run out."""
    rng = random.Random(seed)
    turns: list[ScriptTurn] = []
    requests = 0
    for turn in script.turns:
        if turn.interrupt_after_ms is not None or turn.say is None:
            turns.append(turn)  # over a reply (awake), or not speech: as it was
            continue
        requests += 1
        changes: dict[str, Any] = {"wake": wake}
        if passer_every and requests % passer_every == 0:
            turns.append(
                ScriptTurn(
                    say=rng.choice(PASSERS_BY),
                    passer_by=True,
                    pause_ms=round(attention_s * 1000) + 1500,  # the kiosk asleep again by then
                    reply_timeout_ms=20_000,  # (the wait for the reply to the line before)
                )
            )
            changes["reply_timeout_ms"] = 2000  # nobody answers a passer-by: go on soon
        turns.append(turn.model_copy(update=changes))
    budget = script.max_session_s + 10.0 * len(turns)
    return script.model_copy(update={"turns": turns, "max_session_s": budget})


def passer_by_turns(log: list[dict[str, Any]]) -> list[int]:
    """Turns whose speech overlaps what a passer-by said (session-relative times)."""
    passers = [(u["start"], u["end"]) for u in log if u["event"] == "user_utterance" and u.get("passer_by")]
    turns = []
    for line in log:
        if line["event"] != "turn" or line.get("speech_started_at") is None:
            continue
        start, end = line["speech_started_at"], line.get("speech_end_at") or line["speech_started_at"]
        if any(start < b and a < end for a, b in passers):
            turns.append(line["turn_id"])
    return turns
