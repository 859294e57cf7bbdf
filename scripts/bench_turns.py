#!/usr/bin/env python
"""Turn-taking on natural speech (issue 14): the corpus in the virtual room, counted from the
room's ground truth in the session log (scripted lines' true start, end and inner pauses),
never from the VAD under test.

Stacks:
  offline    voiceloop/configs/offline.toml as `voiceloop demo` runs it (silero, speex, espeak, the echo
             LLM), except the recogniser: the demo restricts pocketsphinx to its own phrases;
             here it runs open-vocabulary (free speech offline; it misses many words of
             synthetic speech, which matters for transcripts, not for the audio spans counted).
  idealised  scripts/bench_loop.py's stages: stop window 0.2 s, ASR padded to 100 ms, a local
             OpenAI-compatible server (first token 50 ms, then 10 ms per token), TTS first audio
             20 ms. Its recogniser is pocketsphinx restricted to the corpus's own phrases: an
             ideal recogniser, fast enough for the 100 ms pad.
Detectors (side by side): "none" (silence window only), "words" (the transcript's last word
holds a stop that trails off) and "smart-turn" (the audio model, then the words), passed as the
override {"turn": {"name": ...}} where the settings have a [turn] section; without one only
the silence window runs, and the output says so.

Figures: premature endpoints (an endpoint inside a paused line), replies audible while the user
was still mid-utterance, lines reaching the LLM as one message, backchannels that stopped a
reply, real interruptions caught and reaction time (first sound → playback paused or stopped),
voice-to-voice p50/p90 on complete turns, detector ms/call where the log has it.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench_turns.py [--stack offline|idealised|both]
        [--lines N] [--seed S] [--speed X] [--corpus FILE] [--keep DIR] [--json] [--out FILE] [--kiosk]

--kiosk: kiosk mode (loop.wake = "okay_nabu", attention 3 s): each line said when the loop may
sleep starts with the wake word, and passers-by talk between; "passer-by turns" must be 0.

--speed runs the room faster than real time: the counts hold, but stage work then takes
`speed` times longer in room time, so latencies are only true at 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_loop, run as a script

from bench_loop import STOP_WINDOW_MS, idealised_llm, idealised_stages  # noqa: E402

from voiceloop.audio.script import ScriptTurn, UserScript, load_script  # noqa: E402
from voiceloop.build import build_adapter  # noqa: E402
from voiceloop.config import Settings, load_settings  # noqa: E402
from voiceloop.config.settings import CONFIGS_DIR  # noqa: E402
from voiceloop.demo import run_demo  # noqa: E402
from voiceloop.session.log import read_session  # noqa: E402
from voiceloop.testing.kiosk_lines import kiosk_script, passer_by_turns  # noqa: E402
from voiceloop.testing.turn_metrics import analyse  # noqa: E402

DETECTORS = ("none", "words", "smart-turn")
KIOSK_ATTENTION_S = 3.0
LINE_KEYS = {"passer_by": "x"}  # else a kind's first letter


def has_turn_section() -> bool:
    return "turn" in Settings.model_fields


def sample_lines(script: UserScript, lines: int | None, seed: int) -> UserScript:
    """About `lines` lines, in corpus order, each line spoken over a reply kept with the line
    whose reply it talks over."""
    groups: list[list[ScriptTurn]] = []
    for turn in script.turns:
        if turn.interrupt_after_ms is not None and groups:
            groups[-1].append(turn)
        else:
            groups.append([turn])
    if lines is not None and lines < len(script.turns):
        rng = random.Random(seed)
        order = rng.sample(range(len(groups)), len(groups))
        chosen: list[int] = []
        for index in order:
            if sum(len(groups[i]) for i in chosen) >= lines:
                break
            chosen.append(index)
        groups = [groups[i] for i in sorted(chosen)]
    turns = [turn for group in groups for turn in group]
    budget_s = 20.0 * len(turns) + 60  # a line and its reply take well under 20 s
    return script.model_copy(update={"turns": turns, "max_session_s": max(script.max_session_s, budget_s)})


def corpus_phrases(script: UserScript) -> list[str]:
    """Every line, every piece of a line and every part between its commas: what an ideal
    recogniser could be asked to hear. espeak pauses at a comma, and the VAD may hand over
    either side of it alone ("that is wrong" of "hold on, that is wrong", said over a reply)."""
    phrases = {turn.spoken_text for turn in script.turns if turn.say is not None}
    pieces = {p.strip() for turn in script.turns for p in turn.text_parts if isinstance(p, str)}
    phrases |= pieces | {part.strip() for piece in pieces for part in piece.split(",")}
    return sorted(phrase.lower().replace(",", "") for phrase in phrases if phrase.strip())


def settings_for(
    stack: str,
    detector: str | None,
    script: UserScript,
    out_dir: Path,
    speed: float,
    llm: dict[str, str],
    exact_int8: bool = False,
) -> Settings:
    overrides: dict[str, Any] = {
        "log": {"dir": str(out_dir), "record_wav": False},
        "audio": {"room": {"speed": speed}},
        "llm": {**llm, "fallback_to_echo": False} if llm else {},
    }
    if stack == "idealised":
        overrides["vad"] = {"stop_ms": STOP_WINDOW_MS}
    if detector is not None:
        overrides["turn"] = {"name": detector}
        if exact_int8 and detector == "smart-turn":
            overrides["turn"]["smart-turn"] = {"exact_int8": True}
    if any(turn.wake for turn in script.turns):
        overrides["loop"] = {"wake": "okay_nabu", "attention_s": KIOSK_ATTENTION_S}
    phrases = corpus_phrases(script) if stack == "idealised" else []
    return load_settings("offline", replacing={"asr": {"pocketsphinx": {"phrases": phrases}}}, **overrides)


async def one_run(
    stack: str,
    detector: str | None,
    script: UserScript,
    out_dir: Path,
    speed: float,
    exact_int8: bool = False,
) -> dict:
    if stack == "offline":
        settings = settings_for(stack, detector, script, out_dir, speed, {}, exact_int8)
        result = await run_demo(
            settings, script, say=lambda _: None, llm=build_adapter(settings, "llm", "echo")
        )
    else:
        with idealised_llm() as llm:
            settings = settings_for(stack, detector, script, out_dir, speed, llm, exact_int8)
            result = await run_demo(settings, script, say=lambda _: None, **idealised_stages(settings))
    log = read_session(result.session_dir / "session.jsonl")
    figures = analyse(log, preroll_s=settings.vad.preroll_ms / 1000).summary()
    if any(turn.wake for turn in script.turns):
        figures["passer_by_turns"] = len(passer_by_turns(log))
        figures["wakes"] = sum(1 for line in log if line["event"] == "wake")
    figures["session"] = str(result.session_dir)
    figures["stop_ms"] = settings.vad.stop_ms
    return figures


ROWS = (
    ("lines", lambda f: " ".join(f"{LINE_KEYS.get(k, k[0])}{v}" for k, v in sorted(f["lines"].items()))),
    ("premature endpoints", lambda f: f"{f['premature_endpoints']} in {f['paused_lines']} paused lines"),
    ("paused lines cut", lambda f: _pct(f["paused_lines_cut_pct"])),
    ("replies mid-utterance", lambda f: _pct(f["replies_mid_utterance_pct"])),
    ("whole as one message", lambda f: f"{_pct(f['whole_as_one_message_pct'])} of {f['lines_to_answer']}"),
    (
        "backchannels stopping",
        lambda f: f"{_pct(f['backchannels_stopping_pct'])} of {f['backchannels_over_reply']}",
    ),
    (
        "interruptions caught",
        lambda f: f"{_pct(f['interruptions_caught_pct'])} of {f['interruptions_over_reply']}",
    ),
    ("barge-in p50/p90 ms", lambda f: _p(f["barge_in_decision_ms"])),
    ("reaction p50/p90 ms", lambda f: _p(f["reaction_ms"])),
    ("complete v2v p50/p90", lambda f: _p(f["complete_voice_to_voice_ms"])),
    ("detector ms/call", lambda f: _p(f["detector_ms_per_call"])),
    ("said after the reply", lambda f: str(len(f["over_reply_lines_said_after_the_reply"]))),
    ("passer-by turns (kiosk)", lambda f: str(f.get("passer_by_turns", "-"))),
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _p(figure: dict) -> str:
    return "-" if not figure["n"] else f"{figure['p50']} / {figure['p90']} (n={figure['n']})"


def print_table(report: dict) -> None:
    columns = [(stack, detector) for stack, runs in report["runs"].items() for detector in runs]
    labels = [f"{stack}/{detector}" for stack, detector in columns]
    width = max(24, *(len(label) + 2 for label in labels))
    print(f"\n{'':24s}" + "".join(f"{label:>{width}s}" for label in labels))
    for name, cell in ROWS:
        values = [cell(report["runs"][stack][detector]) for stack, detector in columns]
        print(f"{name:24s}" + "".join(f"{value:>{width}s}" for value in values))
    print(
        "lines: b backchannel, c complete, i interruption, p paused (n noise, x passer-by); reaction = first sound"
    )
    print("to playback paused/stopped (loop clock); barge-in = first sound to the loop's decision")
    for note in report["notes"]:
        print(f"note: {note}")


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", choices=("offline", "idealised", "both"), default="both")
    parser.add_argument("--corpus", type=Path, default=CONFIGS_DIR / "turns-corpus.toml")
    parser.add_argument("--lines", type=int, default=None, help="sample about this many lines")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=1.0, help="room speed; latencies true only at 1")
    parser.add_argument("--detector", choices=(*DETECTORS, "all"), default="all")
    parser.add_argument("--keep", type=Path, default=None, help="keep the session logs here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    parser.add_argument("--kiosk", action="store_true", help="the wake word before lines, passers-by")
    parser.add_argument(
        "--exact-int8",
        action="store_true",
        help="smart-turn with onnxruntime's exact int8 kernel ([turn.smart-turn] exact_int8)",
    )
    args = parser.parse_args()

    script = sample_lines(load_script(args.corpus), args.lines, args.seed)
    if args.kiosk:
        script = kiosk_script(script, KIOSK_ATTENTION_S, args.seed)
    stacks = ("offline", "idealised") if args.stack == "both" else (args.stack,)
    wanted = DETECTORS if args.detector == "all" else (args.detector,)
    notes = []
    detectors: tuple[str | None, ...]
    if has_turn_section():
        detectors = wanted
    else:
        detectors = (None,)
        notes.append(
            "these settings have no [turn] section: only the silence window ran (detector off); "
            "no smart-turn column"
        )
    if args.speed != 1.0:
        notes.append(f"room speed {args.speed:g}: counts hold, latencies are not true ones")
    report: dict[str, Any] = {
        "corpus": str(args.corpus),
        "lines": len(script.turns),
        "speed": args.speed,
        "runs": {},
        "notes": notes,
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for stack in stacks:
            for detector in detectors:
                label = detector or "none"
                if not args.json:
                    print(f"{stack} / detector {label}: {len(script.turns)} lines ...", file=sys.stderr)
                figures = await one_run(
                    stack, detector, script, root / f"{stack}-{label}", args.speed, args.exact_int8
                )
                report["runs"].setdefault(stack, {})[label] = figures
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
