#!/usr/bin/env python
"""What the Smart Turn detector costs per call, and what it says on a few espeak utterances.

The detector runs at every VAD stop, between the user's last word and the reply, so its median
time is latency a user hears (issue 14's target: <= 60 ms median on the 2-core machine). Its
input is always 8 s (800 frames), so the cost does not depend on the utterance; each call here
is a different utterance anyway, cycled, so no cache flatters it.

Per thread count: median / p90 wall ms of `predict` (features + inference), the median CPU ms
it burns (all threads of this process: what it takes from the ASR running beside it, and what
the wall time would approach on an idle machine), the features alone, and the model's load
time. The machine's load average is printed with the numbers: on a shared 2-core host the same
call has measured 25 ms idle and 200+ ms busy.

    .venv/bin/python scripts/bench_turn_detector.py [--calls 30] [--threads 1 2] [--spinning off|on|both]
        [--busy N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from voiceloop.testing.clips import spoken_clip
from voiceloop.turn import models
from voiceloop.turn.features import smart_turn_features
from voiceloop.turn.smart_turn import SmartTurnOptions, create, fast_int8_saturates

UTTERANCES = [
    ("turn off the kitchen lights.", True),
    ("I can't seem to, um", False),
    ("what is the weather like tomorrow in Paris?", True),
    ("set a timer for", False),
    ("stop", True),
    ("I would like to book a table for", False),
    ("thanks, that's all.", True),
    ("and then we could, uh", False),
]
TRAILING_SILENCE_S = 0.25


@contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """`count` processes that only burn CPU: a loaded machine, made on purpose."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(1.0 if burners else 0.0)
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def cpu_name() -> str:
    """The CPU's model name (Linux), or the platform's word for it: the cost depends on it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def int8_kernel() -> str:
    """Which onnxruntime int8 kernel the detector runs on here (smart_turn.fast_int8_saturates):
    on x86-64 without VNNI the exact one, 10-20 % slower; the figures are not comparable across."""
    if fast_int8_saturates():
        return "exact u8u8 (x86-64 without VNNI: the fast kernel would round)"
    return "fast (exact on this CPU: VNNI or not x86)"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench(configs: list[tuple[int, bool]], calls: int, clips: list[np.ndarray]) -> list[dict[str, Any]]:
    """One detector per (threads, spinning), called in turn call by call, so that a burst of
    load on the shared host lands on all of them alike."""
    detectors, loads = [], []
    for threads, spinning in configs:
        started = time.perf_counter()
        detector = create(SmartTurnOptions(threads=threads, spinning=spinning))
        loads.append((time.perf_counter() - started) * 1000)
        detector.warm_up()
        detectors.append(detector)
    total: list[list[float]] = [[] for _ in configs]
    cpu: list[list[float]] = [[] for _ in configs]
    features: list[float] = []
    for k in range(calls):
        audio = clips[k % len(clips)]
        for row, detector in enumerate(detectors):
            cpu_started = time.process_time()
            total[row].append(detector.predict(audio).elapsed_ms)
            cpu[row].append((time.process_time() - cpu_started) * 1000)
        t0 = time.perf_counter()
        smart_turn_features(audio)
        features.append((time.perf_counter() - t0) * 1000)
    for detector in detectors:
        detector.close()
    return [
        {
            "threads": threads,
            "spinning": spinning,
            "calls": calls,
            "median_ms": percentile(total[row], 50),
            "p90_ms": percentile(total[row], 90),
            "cpu_median_ms": percentile(cpu[row], 50),
            "features_median_ms": percentile(features, 50),
            "load_ms": loads[row],
        }
        for row, (threads, spinning) in enumerate(configs)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--spinning", choices=("off", "on", "both"), default="off")
    parser.add_argument("--busy", type=int, default=0, help="this many busy processes beside it, as load")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    models.resolve()  # the one-line "run `voiceloop models download smart-turn`" if it is missing
    clips = [spoken_clip(text, tail_s=TRAILING_SILENCE_S) for text, _ in UTTERANCES]

    detector = create()
    verdicts = [
        (text, expected, detector.predict(audio))
        for (text, expected), audio in zip(UTTERANCES, clips, strict=True)
    ]
    detector.close()
    spinning = {"off": [False], "on": [True], "both": [False, True]}[args.spinning]
    with busy_processes(args.busy):
        load_before = os.getloadavg()[0]
        configs = [(t, spin) for t in args.threads for spin in spinning]
        rows = bench(configs, args.calls, clips)
        load_after = os.getloadavg()[0]

    if args.json:
        print(json.dumps({
            "cost": rows,
            "load_average_1min": [load_before, load_after],
            "busy_processes": args.busy,
            "cpus": os.cpu_count(),
            "cpu": cpu_name(),
            "int8_kernel": int8_kernel(),
            "verdicts": [
                {"text": text, "complete_expected": expected, "probability": v.probability, "complete": v.complete}
                for text, expected, v in verdicts
            ],
        }, indent=2))  # fmt: skip
        return
    print(f"Smart Turn v3.2, {TRAILING_SILENCE_S * 1000:.0f} ms of trailing silence (espeak en-us):")
    for text, expected, v in verdicts:
        mark = "ok " if v.complete == expected else "MISS"
        print(f"  {mark} P={v.probability:.3f} {'complete  ' if v.complete else 'incomplete'}  {text!r}")
    print(f"\nCPU: {cpu_name()}; int8 kernel: {int8_kernel()}")
    print(
        f"cost per call, {args.calls} calls ({os.cpu_count()} CPUs, {args.busy} busy processes beside it, "
        f"load {load_before:.1f} → {load_after:.1f}):"
    )
    print(f"  {'threads':>7} {'spin':>4} {'median':>8} {'p90':>8} {'cpu':>8} {'features':>9} {'load':>7}")
    for row in rows:
        print(
            f"  {row['threads']:>7} {'on' if row['spinning'] else 'off':>4} {row['median_ms']:>6.1f}ms {row['p90_ms']:>6.1f}ms {row['cpu_median_ms']:>6.1f}ms "
            f"{row['features_median_ms']:>7.1f}ms {row['load_ms']:>5.0f}ms"
        )


if __name__ == "__main__":
    main()
