#!/usr/bin/env python
"""Does a change to the Smart Turn path (features, session settings, the graph) leave its answers
alone? The detector's probabilities over the turn corpora, asked where the loop asks, saved on
one checkout and compared on another.

Each line of voiceloop/configs/turns-corpus.toml and turns-corpus-zh.toml is rendered as the
virtual room speaks it (the script's espeak voice and rate, its pauses, -50 dBFS room tone) and
the detector hears the turn so far at every point where a VAD stop comes: after each piece of
speech, with 100, 200, 300 and 600 ms of the silence that follows (a pause, or the end): 339
inputs. The int8 model answers in coarse steps and one rounding inside it can move P by 0.4,
so a change passes only with |ΔP| < 0.01 on every input and no decision flipped.

    PYTHONPATH=/work/main .venv/bin/python scripts/check_turn_agreement.py --save before.json   # on main
    PYTHONPATH=$PWD .venv/bin/python scripts/check_turn_agreement.py --against before.json      # on the change
        [--corpus FILE ...] [--threads N]

Exit status 1 when the comparison fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.audio.script import Pause, load_script
from voiceloop.config.settings import CONFIGS_DIR
from voiceloop.tts.espeak import render
from voiceloop.turn.smart_turn import SmartTurnOptions, create

CORPORA = ("turns-corpus.toml", "turns-corpus-zh.toml")
SILENCES_MS = (100, 200, 300, 600)
LEAD_S = 0.5
MAX_DELTA = 0.01
ROOM_TONE_DBFS = -50.0


def detector_inputs(path: Path) -> list[tuple[str, np.ndarray]]:
    """(label, the turn so far) at every VAD stop a corpus line holds."""
    script = load_script(path)
    rng = np.random.default_rng(0)
    inputs = []
    for number, line in enumerate(script.turns, 1):
        pieces = line.text_parts
        if not pieces:
            continue
        audio = np.zeros(int(LEAD_S * SAMPLE_RATE), np.float32)
        for index, piece in enumerate(pieces):
            if isinstance(piece, Pause):
                continue
            audio = np.concatenate([audio, render(piece, script.voice, script.rate_wpm)])
            following = pieces[index + 1] if index + 1 < len(pieces) else None
            gap_ms = following.pause_ms if isinstance(following, Pause) else max(SILENCES_MS)
            for silence_ms in (s for s in SILENCES_MS if s <= gap_ms):
                heard = np.concatenate([audio, np.zeros(silence_ms * SAMPLE_RATE // 1000, np.float32)])
                tone = rng.standard_normal(heard.size) * 10 ** (ROOM_TONE_DBFS / 20)
                label = f"line {number} {line.spoken_text[:40]!r} piece {index} +{silence_ms} ms"
                inputs.append((label, heard + tone.astype(np.float32)))
            if isinstance(following, Pause):
                audio = np.concatenate(
                    [audio, np.zeros(following.pause_ms * SAMPLE_RATE // 1000, np.float32)]
                )
    return inputs


def probabilities(corpora: list[Path], threads: int) -> list[tuple[str, float]]:
    detector = create(SmartTurnOptions(threads=threads))
    rows = [
        (f"{corpus.name}: {label}", detector.predict(audio).probability)
        for corpus in corpora
        for label, audio in detector_inputs(corpus)
    ]
    detector.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, nargs="+", default=[CONFIGS_DIR / name for name in CORPORA])
    parser.add_argument("--threads", type=int, default=2)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--save", type=Path, help="write the probabilities here (JSON)")
    what.add_argument("--against", type=Path, help="compare with probabilities saved by --save")
    args = parser.parse_args()
    rows = probabilities(args.corpus, args.threads)
    if args.save:
        args.save.write_text(json.dumps([{"input": label, "probability": p} for label, p in rows], indent=1))
        print(f"{len(rows)} probabilities saved to {args.save}")
        return 0
    saved = {row["input"]: row["probability"] for row in json.loads(args.against.read_text())}
    missing = [label for label, _ in rows if label not in saved]
    if missing or len(saved) != len(rows):
        print(f"{args.against} holds other inputs ({len(saved)} saved, {len(rows)} now): save it again")
        return 1
    threshold = SmartTurnOptions().threshold
    pairs = [(label, saved[label], p) for label, p in rows]
    deltas = np.array([abs(after - before) for _, before, after in pairs])
    flips = [(label, a, b) for label, a, b in pairs if (a > threshold) != (b > threshold)]
    worst = pairs[int(deltas.argmax())]
    print(f"{len(pairs)} detector inputs from {', '.join(c.name for c in args.corpus)}")
    print(
        f"|ΔP| max {deltas.max():.6f} (at {worst[0]}: {worst[1]:.4f} → {worst[2]:.4f}), identical {int((deltas == 0).sum())}"
    )
    print(f"decisions that differ at threshold {threshold}: {len(flips)}")
    for label, a, b in flips:
        print(f"  {label}: {a:.4f} → {b:.4f}")
    return 0 if float(deltas.max()) < MAX_DELTA and not flips else 1


if __name__ == "__main__":
    sys.exit(main())
