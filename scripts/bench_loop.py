#!/usr/bin/env python
"""Voice-to-voice latency and the loop's own overhead, in the virtual room.

Overhead per turn = voice-to-voice latency − (endpoint silence window + ASR time + LLM time
to its first speakable piece + TTS time to first audio): what the loop itself costs (VAD lag
and chunk quantisation, scheduling, queues, frame alignment). Medians over the demo's turns,
over several runs.

Modes:
  offline    the demo as shipped: pocketsphinx, the echo backend, espeak.
  idealised  the set-up our Pipecat 1.14 figure was measured in (NOTES.md): stop window
             0.2 s, ASR padded to 100 ms, a local OpenAI-compatible server with the first
             token at 50 ms then one token per 10 ms, TTS first audio padded to 20 ms.
             Pipecat took 543 ms median (431 ms token by token) there; the target is ≤ 400.

    .venv/bin/python scripts/bench_loop.py [--runs 3] [--mode offline|idealised|both]
        [--turn none words smart-turn] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from voiceloop.audio.script import load_script
from voiceloop.build import build_adapter, build_voice
from voiceloop.config import load_settings
from voiceloop.config.settings import CONFIGS_DIR
from voiceloop.demo import run_demo
from voiceloop.testing.llm_server import LlmServer
from voiceloop.testing.pacing import FixedLatencyRecognizer, FixedLatencyVoice

STOP_WINDOW_MS = 200
FIGURES = (
    "voice_to_voice",
    "endpoint",
    "asr",
    "llm_first_piece",
    "tts_first_audio",
    "queue_to_play",
    "overhead",
)


def idealised_reply(messages: list[dict]) -> str:
    user = str(messages[-1]["content"])
    return f"Okay, here is what you asked about: {user}. I hope that answers it well."


@contextmanager
def idealised_llm() -> Iterator[dict[str, str]]:
    """A local OpenAI-compatible server, first token at 50 ms then one per 10 ms; yields the
    `[llm]` keys that point the loop at it. scripts/bench_turns.py runs on the same stages."""
    with LlmServer(reply=idealised_reply, first_token_delay_s=0.05, token_interval_s=0.01) as server:
        yield {"base_url": server.base_url, "model": "bench"}


def idealised_stages(settings: Any) -> dict[str, Any]:
    """The configured recogniser padded to 100 ms and voice to 20 ms first audio: run_demo's
    `asr` and `tts`."""
    return {
        "asr": FixedLatencyRecognizer(build_adapter(settings, "asr"), 0.100),
        "tts": FixedLatencyVoice(build_voice(settings), 0.020),
    }


async def one_run(mode: str, out_dir: Path, turn: str | None = None) -> list[dict]:
    settings = load_settings("offline")
    settings.vad.stop_ms = STOP_WINDOW_MS
    if turn is not None:
        settings.turn.name = turn
    settings.log.dir = out_dir
    settings.log.record_wav = False
    script = load_script(CONFIGS_DIR / "demo-script.toml")
    if mode == "offline":
        result = await run_demo(
            settings, script, say=lambda _: None, llm=build_adapter(settings, "llm", "echo")
        )
        return [_turn_figures(t) for t in result.turns]
    with idealised_llm() as llm:
        settings.llm.base_url = llm["base_url"]
        settings.llm.model = llm["model"]
        result = await run_demo(settings, script, say=lambda _: None, **idealised_stages(settings))
    return [_turn_figures(t) for t in result.turns]


def _turn_figures(turn) -> dict:  # type: ignore[no-untyped-def]
    t = turn.timings_ms()
    return {
        "outcome": turn.outcome,
        "voice_to_voice": t["voice_to_voice"],
        "endpoint": t["endpoint"],
        "asr": t["asr"],
        "llm_first_piece": t["llm_first_piece"],
        "tts_first_audio": t["tts_first_audio"],
        "queue_to_play": t["queue_to_play"],
        "overhead": turn.overhead_ms(STOP_WINDOW_MS),
    }


def summarise(turns: list[dict]) -> dict:
    out: dict = {"turns": len(turns)}
    for key in FIGURES:
        values = [t[key] for t in turns if t[key] is not None]
        out[key] = {
            "median": round(statistics.median(values), 1) if values else None,
            "p90": round(statistics.quantiles(values, n=10)[-1], 1) if len(values) >= 2 else None,
        }
    return out


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=("offline", "idealised", "both"), default="both")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    parser.add_argument(
        "--turn",
        nargs="+",
        choices=("none", "words", "smart-turn"),
        default=None,
        help="how turns end ([turn] name), each side by side; default: the offline profile's",
    )
    args = parser.parse_args()
    turns_by: list[str | None] = list(args.turn) if args.turn else [None]
    modes = [
        f"{mode}/{turn}" if turn else mode
        for mode in (("offline", "idealised") if args.mode == "both" else (args.mode,))
        for turn in turns_by
    ]
    report: dict = {"stop_window_ms": STOP_WINDOW_MS, "runs": args.runs, "modes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            turns: list[dict] = []
            per_run = []
            for run in range(args.runs):
                stack, _, turn = mode.partition("/")
                figures = await one_run(stack, Path(tmp) / f"{stack}-{turn}-{run}", turn or None)
                answered = [t for t in figures if t["voice_to_voice"] is not None]
                turns += answered
                per_run.append(summarise(answered)["overhead"]["median"])
                if not args.json:
                    print(f"{mode} run {run + 1}: {summarise(answered)}", file=sys.stderr)
            report["modes"][mode] = {**summarise(turns), "overhead_median_per_run": per_run}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for mode, figures in report["modes"].items():
            print(f"\n{mode}: {figures['turns']} turns over {args.runs} runs")
            for key in FIGURES:
                print(f"  {key:16s} median {figures[key]['median']:>7} ms   p90 {figures[key]['p90']:>7} ms")
            print(f"  overhead median per run: {figures['overhead_median_per_run']}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
