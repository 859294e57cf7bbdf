#!/usr/bin/env python
"""What a refit copy costs (`turn.hear_refit_copy`, voiceloop/aec/refit.py), beside the
recognition it comes with.

Held speech over a reply that both of the canceller's copies were heard as nothing in is heard
once more, cancelled again by a filter fitted to the FIT_S seconds of echo before it. The fit
runs in the recogniser's worker, only then; this measures it against the recognition of the
same span (the offline profile's pocketsphinx, the hearing it replaces needed that alone), over
the assistant's English reply through a seeded room (45 ms, +6 dB, RT60 0.4 s, the desk of
tests/test_aec_drift.py), for held speech of --spans seconds.

Per span: fit_ms and recognise_ms, medians of --repeat runs (thread CPU time, so other load on
the machine is not counted), their ratio, and echo_removed_db: how far under the mic's echo the
fit leaves it over the span (no user: echo only).

    .venv/bin/python scripts/bench_refit.py [--json] [--spans 0.4,0.8,1.6] [--repeat 9]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable

import numpy as np

from voiceloop.aec.refit import FIT_S, refit_residual
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.audio.virtual import room_impulse_response
from voiceloop.build import build_adapter
from voiceloop.config import load_settings
from voiceloop.testing.replies import english_reply

ECHO_DELAY_S = 0.045
ECHO_GAIN_DB = 6.0
RT60_S = 0.4


def desk_echo(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(mic, reference): the reply's echo through the desk room, with room noise."""
    samples = int(seconds * SAMPLE_RATE)
    reference = np.tile(english_reply(), 1 + samples // english_reply().size)[:samples].astype(np.float64)
    rir = room_impulse_response(RT60_S, np.random.default_rng(0)).astype(np.float64)
    echo = np.convolve(reference, rir)[:samples] * 10 ** (ECHO_GAIN_DB / 20)
    delay = int(ECHO_DELAY_S * SAMPLE_RATE)
    echo = np.concatenate([np.zeros(delay), echo])[:samples]
    noise = 10 ** (-55 / 20) * np.random.default_rng(1).standard_normal(samples)
    return (echo + noise).astype(np.float32), reference.astype(np.float32)


def thread_ms(work: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.thread_time()
        work()
        runs.append((time.thread_time() - start) * 1000)
    return statistics.median(runs)


def level_db(audio: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(audio.astype(np.float64) ** 2) + 1e-12))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", default="0.4,0.8,1.6", help="held speech lengths, seconds")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    recogniser = build_adapter(load_settings("offline"), "asr")
    fit = int(FIT_S * SAMPLE_RATE)
    rows = []
    for span_s in (float(s) for s in args.spans.split(",")):
        mic, reference = desk_echo(3.0 + FIT_S + span_s)
        start = int(3.0 * SAMPLE_RATE) - fit  # past the room's first seconds
        held = slice(start, start + fit + int(span_s * SAMPLE_RATE))
        left = refit_residual(mic[held], reference[held], fit)
        span_mic = mic[held][fit:]
        fit_ms = thread_ms(functools.partial(refit_residual, mic[held], reference[held], fit), args.repeat)
        recognise_ms = thread_ms(functools.partial(recogniser.transcribe, span_mic), args.repeat)
        rows.append(
            {
                "span_s": span_s,
                "fit_ms": round(fit_ms, 1),
                "recognise_ms": round(recognise_ms, 1),
                "fit_over_recognise": round(fit_ms / recognise_ms, 2),
                "echo_removed_db": round(level_db(span_mic) - level_db(left), 1),
            }
        )
    if args.json:
        print(json.dumps({"fit_s": FIT_S, "repeat": args.repeat, "spans": rows}, indent=1))
    else:
        print(f"fit over the {FIT_S:.1f} s before; medians of {args.repeat} runs (thread CPU)")
        print("span s   fit ms   recognise ms   fit/recognise   echo removed dB")
        for row in rows:
            print(
                f"{row['span_s']:>6}   {row['fit_ms']:>6}   {row['recognise_ms']:>12}   "
                f"{row['fit_over_recognise']:>13}   {row['echo_removed_db']:>15}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
