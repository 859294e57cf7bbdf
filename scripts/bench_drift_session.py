#!/usr/bin/env python
"""A long session in a drifting room: does the canceller still remove the echo minutes in?

bench_aec plays one reply per room; a session plays many, with pauses between them, and a
speaker whose clock runs fast moves its echo earlier against the reference the whole time, so
the drift compensator's reader must be set back now and then (in a pause). This plays a room
of voiceloop.audio.rooms.all_scenarios() (default drift+120ppm) as a session of --reply-s
replies and --pause-s pauses for --seconds, through the default profile's canceller, and
prints per reply the echo its linear filter removed (ERLE of speex's own output, from 1 s into
the reply) and of the whole canceller, plus how often the reader was set back and how far the
mic the filter hears lags the real one at the end.

`--reader-alone` sets the reader back without the mic (the rule before: each re-centring moves
the echo against the reference the filter learnt, and the reference's lead is used up).

    .venv/bin/python scripts/bench_drift_session.py [--room drift+120ppm] [--seconds 150] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import numpy as np

from voiceloop.aec import compensated
from voiceloop.aec.compensated import DriftCompensated
from voiceloop.aec.metrics import erle_db
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.build import build_adapter
from voiceloop.config import load_settings
from voiceloop.testing.drift_session import drifting_session

SETTLE_S = 1.0  # each reply's first second is not counted (the filter's first learning)


def run(room: str, seconds: float, reply_s: float, pause_s: float) -> dict:
    mic, reference, starts = drifting_session(room, seconds, reply_s, pause_s)
    settings = load_settings("default")
    settings.aec.speex.drift_compensation = True
    settings.aec.speex.residual_suppression = True  # keeps speex's own output readable
    canceller = build_adapter(settings, "aec", "speex")
    assert isinstance(canceller, DriftCompensated)
    inner = canceller.inner
    frames = mic.size // FRAME_SAMPLES
    linear, output = np.zeros_like(mic), np.zeros_like(mic)
    lag = np.zeros(frames, int)  # the canceller's output lags the mic by this, frame by frame
    for k in range(frames):
        span = slice(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES)
        output[span] = canceller.process(mic[span], reference[span])
        linear[span] = inner._residual  # speex's own output, before any suppression
        lag[k] = canceller.mic_delay_samples
    replies = []
    for start in starts:
        first = int((start + SETTLE_S) * SAMPLE_RATE)
        last = int((start + reply_s) * SAMPLE_RATE)
        shift = int(lag[first // FRAME_SAMPLES])
        out_shift = shift + inner.output_delay_samples
        replies.append(
            {
                "at_s": round(start, 1),
                "linear_erle_db": round(erle_db(mic[first:last], linear[first + shift : last + shift]), 1),
                "erle_db": round(erle_db(mic[first:last], output[first + out_shift : last + out_shift]), 1),
            }
        )
    later = [r["linear_erle_db"] for r in replies[1:]]
    return {
        "room": room,
        "drift_ppm_measured": round(canceller.drift_ppm, 1),
        "recentred": canceller.recentred,
        "mic_delay_ms": round(canceller.mic_delay_samples * 1000 / SAMPLE_RATE, 1),
        "linear_erle_db_after_first_reply": {
            "median": statistics.median(later) if later else None,
            "min": min(later) if later else None,
        },
        "replies": replies,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--room", default="drift+120ppm")
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--reply-s", type=float, default=6.0)
    parser.add_argument("--pause-s", type=float, default=3.0)
    parser.add_argument(
        "--reader-alone", action="store_true", help="the rule before: the mic is never set back"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.reader_alone:
        compensated.MAX_MIC_DELAY_SAMPLES = 0
    result = run(args.room, args.seconds, args.reply_s, args.pause_s)
    result["rule"] = "reader alone" if args.reader_alone else "reader and mic"
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{result['room']} ({result['rule']}): drift {result['drift_ppm_measured']} ppm, "
        f"set back {result['recentred']} times, mic {result['mic_delay_ms']} ms behind"
    )
    for entry in result["replies"]:
        print(
            f"  reply at {entry['at_s']:6.1f} s: linear {entry['linear_erle_db']:5.1f} dB, output {entry['erle_db']:5.1f} dB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
