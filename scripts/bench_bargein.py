#!/usr/bin/env python
"""Barge-in in the virtual room: how often talking over a reply stops it, and how fast.

For each echo scenario, a scripted user asks questions and talks over each reply at a random
point (seeded) with a short command. Reaction = from the first sound of the interruption to
the moment playback stopped. Detection = interruptions that stopped the reply. Also counts
self-transcriptions, whether each interruption was transcribed right, and echo holds: a reply
held for "speech" while the user made no sound, its own echo heard as the user (the reply
stops mid-word until that speech ends, 0.2-0.6 s: a stutter).

Any room of voiceloop.audio.rooms.all_scenarios() can be named: the hard ones (clock drift,
a path that changes every few seconds, a clipping speaker at +10 dB) are played by the room's
echo path; their reply kind and length are the AEC bench's (here the loop's own TTS speaks).
`--aec speex` is the offline profile's canceller (speex + per-band residual suppression),
`speex+drift` speex with drift compensation, `speex+drift+recovery` with path-change recovery
too, `speex+drift+recovery+residual` with per-band residual echo suppression as well,
`speex+drift+recovery+residual+replay` with a filter rebuilt after a walk fed its recent frames
again while it re-learns (`[aec.speex] relearn_replay_every`), and `+duck` with the speaker
played quieter meanwhile (`[aec.speex] relearn_duck_db`): each as the default profile sets it.

    .venv/bin/python scripts/bench_bargein.py [--pairs 8] [--rooms desk-quiet,drift+60ppm] [--aec speex] [--json]

`--calibrated-drift` starts each room as a user who ran `voiceloop calibrate --drift-s 30` in
it: the drift those sweeps measure there (voiceloop.audio.virtual.calibrated_drift_ppm) is
`[aec] drift_ppm`, where the drift compensator starts (without it: 0 until measured from the
echo, at the end of the 1.4 s greeting).

`--keep DIR` keeps each room's session log (DIR/<room>/<session>/session.jsonl), its
conversation.wav and user_speech.json (when the scripted user spoke), to see at which stage a
missed interruption was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

from voiceloop.audio.rooms import all_scenarios
from voiceloop.audio.script import UserScript
from voiceloop.audio.virtual import VirtualRoom, calibrated_drift_ppm, room_as_configured
from voiceloop.build import build_adapter
from voiceloop.config import Settings, load_settings
from voiceloop.demo import build_report
from voiceloop.session.runner import conversation

QUESTIONS = ["what is the weather like today", "set a timer for five minutes", "what can you do"]
INTERRUPTIONS = ["never mind", "stop", "thank you", "turn off the lights", "goodbye"]


def interruption_script(pairs: int, seed: int) -> UserScript:
    rng = random.Random(seed)
    turns = []
    for index in range(pairs):
        turns.append({"say": QUESTIONS[index % len(QUESTIONS)], "pause_ms": 900})
        turns.append({"say": rng.choice(INTERRUPTIONS), "interrupt_after_ms": rng.randint(600, 1100)})
    return UserScript.model_validate({"voice": "en-us+m3", "turns": turns, "tail_ms": 1000})


async def run_room(settings: Settings, script: UserScript, room: str) -> dict:
    """voiceloop.demo.run_demo's loop, in a room whose echo path may drift or change."""
    scenario = all_scenarios()[room]
    virtual = VirtualRoom(script, room_as_configured(settings), conditions=scenario.conditions)
    llm = build_adapter(settings, "llm", "echo")
    async with conversation(settings, virtual, llm=llm) as talk:
        await talk.run()
    # When the scripted user spoke, beside the session log: with --keep, what tells the user's
    # speech from the reply's echo when a session is traced or replayed (seconds from the room's
    # first frame, the frame times of conversation.wav and of session.jsonl's `t`).
    lines = [
        {"expected": u.expected, "start_s": round(u.start_at, 4), "end_s": round(u.end_at, 4)}
        for u in virtual.user.utterances
    ]
    (talk.session.dir / "user_speech.json").write_text(json.dumps(lines, indent=1))
    return build_report(talk.finished_turns, virtual, settings.vad.stop_ms)


async def bench_room(
    room: str, aec: str, pairs: int, seed: int, out: Path, record_wav: bool = False, calibrated: bool = False
) -> dict:
    name = aec.split("+")[0]
    scenario = all_scenarios()[room]
    drift_ppm = calibrated_drift_ppm(scenario.room, scenario.conditions) if calibrated else None
    overrides: dict = {
        "audio": {"room": scenario.room.model_dump()},
        "aec": {"name": name, "drift_ppm": drift_ppm},
        "log": {"dir": out, "record_wav": record_wav},
    }
    if "+drift" in aec:
        profile = load_settings("default").aec.speex  # +replay and +duck as it sets them
        overrides["aec"]["speex"] = {
            "drift_compensation": True,
            "path_change_recovery": "+recovery" in aec,
            "residual_suppression": "+residual" in aec,
            "relearn_duck_db": profile.relearn_duck_db if "+duck" in aec else 0.0,
            "relearn_replay_every": profile.relearn_replay_every if "+replay" in aec else 0,
        }
    settings = load_settings("offline", **overrides)
    script = interruption_script(pairs, seed)
    report = await run_room(settings, script, room)
    reactions = report["barge_in"]["reaction_ms"]
    spoken_over = [e for e, t in zip(report["turns"], script.turns, strict=True) if t.interrupt_after_ms]
    return {
        "attempts": report["barge_in"]["attempts"],
        "detected": report["barge_in"]["detected"],
        "detection_rate": round(report["barge_in"]["detected"] / max(report["barge_in"]["attempts"], 1), 3),
        "reaction_ms": {
            "median": round(statistics.median(reactions), 1) if reactions else None,
            "p90": round(statistics.quantiles(reactions, n=10)[-1], 1) if len(reactions) > 1 else None,
        },
        "interruptions_transcribed_right": sum(e["transcript"] == e["expected"] for e in spoken_over),
        "self_transcriptions": report["self_transcriptions"],
        "false_barge_ins": report["barge_ins"] - report["barge_in"]["detected"],
        "echo_holds": report["echo_holds"],
        "replies": report["replies_played"],
        **({"calibrated_drift_ppm": drift_ppm} if calibrated else {}),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=8, help="question + interruption pairs per room")
    parser.add_argument("--rooms", default="desk-quiet,living-room,kiosk-loud,laptop-clipping")
    parser.add_argument("--aec", default="speex")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--calibrated-drift",
        action="store_true",
        help="start each room's drift compensation from what `voiceloop calibrate --drift-s 30` measures there",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep each room's session log and conversation.wav under this folder (to trace a miss)",
    )
    args = parser.parse_args()
    results: dict = {"aec": args.aec, "rooms": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for room in args.rooms.split(","):
            out = args.keep / room if args.keep else Path(tmp)
            results["rooms"][room] = await bench_room(
                room,
                args.aec,
                args.pairs,
                args.seed,
                out,
                record_wav=args.keep is not None,
                calibrated=args.calibrated_drift,
            )
            if not args.json:
                print(room, results["rooms"][room], file=sys.stderr)
    all_attempts = sum(r["attempts"] for r in results["rooms"].values())
    all_detected = sum(r["detected"] for r in results["rooms"].values())
    results["overall_detection_rate"] = round(all_detected / max(all_attempts, 1), 3)
    replies = sum(r["replies"] for r in results["rooms"].values())
    results["echo_holds_per_reply"] = round(
        sum(r["echo_holds"] for r in results["rooms"].values()) / max(replies, 1), 2
    )
    medians = [
        r["reaction_ms"]["median"]
        for r in results["rooms"].values()
        if r["reaction_ms"]["median"] is not None
    ]
    # None when no interruption stopped a reply anywhere (speex in a drifting room at +10 dB).
    results["median_of_room_medians_ms"] = statistics.median(medians) if medians else None
    print(json.dumps(results, indent=None if not args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
