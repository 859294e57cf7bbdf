#!/usr/bin/env python
"""The wake word's margin over the kiosk corpus, offline: how far apart the lowest caught wake
word and the highest passer-by line score, and what each decision rule trades.

Every kiosk line (the word + a request in every voice, every passer-by line in every voice) is
said alone in the virtual room's noise, several noise draws each, through the word's model; each
stride's raw probability is kept. A decision rule (the sliding-window mean over the model's
window must exceed a cut-off, on `confirm` consecutive strides) is then judged on all of them:
wake words caught (per voice group), passer-by lines that would fire, and how long after the
word's end it fires. Faster than the kiosk hour (`bench_wake.py`) by two orders of magnitude,
so the trade-off curve is cheap; the kiosk hour checks the chosen rule in the running loop.

With `--schedule N` the lines are instead the kiosk hour's own (`kiosk_hour.kiosk_schedule`),
on one continuous track heard by one detector never reset, as in the running loop: the
frontend's noise estimate follows the passers-by's talk, so every line scores lower than alone.

    PYTHONPATH=$PWD .venv/bin/python scripts/wake_margin.py [--word okay_nabu] [--draws 3]
        [--schedule 110 --seed 11] [--windows 5,3,2] [--cutoffs 0.85,0.9] [--confirms 1,2]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.virtual import at_voice_level, trim_silence
from voiceloop.config.settings import RoomSettings
from voiceloop.testing.kiosk_hour import (
    ACCEPTED_VOICES,
    PASSERS_BY,
    REJECTED_VOICES,
    REQUESTS,
    kiosk_schedule,
)
from voiceloop.tts.espeak import render
from voiceloop.wake.micro import MicroWakeDetector
from voiceloop.wake.options import MicroWakeOptions

LEAD_S, TAIL_S = 1.0, 1.0
STRIDE_S = 0.03


def strides(detector: MicroWakeDetector, audio: np.ndarray) -> list[tuple[float, float]]:
    """(time of the stride's last sample, raw probability) for each model run over `audio`."""
    detector.reset()
    decision = detector.decisions[0]  # a window of one: its "mean" is each stride's probability
    out: list[tuple[float, float]] = []
    for k in range(audio.size // FRAME_SAMPLES):
        frame = audio[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES]
        for features in detector._features_of(frame):
            probability = decision.feed(features)
            if probability is not None:
                out.append(((k + 1) * FRAME_SAMPLES / SAMPLE_RATE, probability))
    return out


def fires(trace: list[tuple[float, float]], window: int, cutoff: float, confirm: int) -> float | None:
    """When the rule fires: the window's mean above `cutoff` on `confirm` strides in a row."""
    run = 0
    for i in range(window - 1, len(trace)):
        mean = sum(p for _, p in trace[i - window + 1 : i + 1]) / window
        run = run + 1 if mean > cutoff else 0
        if run >= confirm:
            return trace[i][0]
    return None


def peak_mean(trace: list[tuple[float, float]], window: int) -> float:
    means = [sum(p for _, p in trace[i - window + 1 : i + 1]) / window for i in range(window - 1, len(trace))]
    return max(means, default=0.0)


def corpus(word: str, draws: int, seed: int) -> list[dict]:
    room = RoomSettings()
    noise = float(10 ** (room.noise_dbfs / 20))
    rng = np.random.default_rng(seed)
    items = []
    spoken_word = word.replace("_", " ")
    for voice in ACCEPTED_VOICES + REJECTED_VOICES:
        said = trim_silence(render(spoken_word, voice, 165))
        for request in REQUESTS[:2]:
            gap = np.zeros(SAMPLE_RATE // 2, np.float32)
            audio = at_voice_level(np.concatenate([said, gap, trim_silence(render(request, voice, 165))]))
            items.append(("wake", voice, spoken_word, audio, said.size / SAMPLE_RATE))
        for text in PASSERS_BY:
            audio = at_voice_level(trim_silence(render(text, voice, 165)))
            items.append(("passer_by", voice, text, audio, None))
    out = []
    for kind, voice, text, audio, word_end in items:
        for _ in range(draws):
            # a random phase against the model's 30 ms stride, as in a running room
            lead = np.zeros(round((LEAD_S + rng.uniform(0, STRIDE_S)) * SAMPLE_RATE), np.float32)
            tail = np.zeros(round(TAIL_S * SAMPLE_RATE), np.float32)
            mic = np.concatenate([lead, audio, tail])
            mic = mic + noise * rng.standard_normal(mic.size).astype(np.float32)
            out.append(
                {
                    "kind": kind,
                    "voice": voice,
                    "text": text,
                    "mic": np.clip(mic, -1, 1),
                    "word_end": None if word_end is None else lead.size / SAMPLE_RATE + word_end,
                }
            )
    return out


def schedule_corpus(detector: MicroWakeDetector, cycles: int, seed: int) -> list[dict]:
    """The kiosk hour's own lines (`kiosk_schedule`) on one continuous track with the room's
    noise, heard by one detector that is never reset, as in the running loop: its frontend's
    noise estimate and gain follow the passers-by's talk, which scores lower than lines said
    alone. No echo of replies (the words said over one are scored without it)."""
    lines = kiosk_schedule(cycles, seed=seed)
    noise = float(10 ** (RoomSettings().noise_dbfs / 20))
    rng = np.random.default_rng(seed)
    total = round((lines[-1].end + 2.0) * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
    block = 60 * SAMPLE_RATE
    detector.reset()
    decision = detector.decisions[0]
    trace: list[tuple[float, float]] = []
    for start in range(0, total, block):
        size = min(block, total - start)
        mic = noise * rng.standard_normal(size).astype(np.float32)
        for line in lines:
            at = round(line.at * SAMPLE_RATE)
            lo, hi = max(at, start), min(at + line.audio.size, start + size)
            if lo < hi:
                mic[lo - start : hi - start] += line.audio[lo - at : hi - at]
        np.clip(mic, -1, 1, out=mic)
        for k in range(size // FRAME_SAMPLES):
            for features in detector._features_of(mic[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES]):
                probability = decision.feed(features)
                if probability is not None:
                    trace.append(((start + (k + 1) * FRAME_SAMPLES) / SAMPLE_RATE, probability))
    times = np.array([t for t, _ in trace])
    out = []
    for line in lines:
        until = line.wake_end + 1.0 if line.wake_end is not None else line.end + 0.5
        lo, hi = np.searchsorted(times, line.at), np.searchsorted(times, until, side="right")
        out.append(
            {
                "kind": "wake" if line.kind == "wake" else "passer_by",
                "voice": line.voice,
                "text": line.text,
                "word_end": line.wake_end,
                "trace": trace[lo:hi],
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--word", default="okay_nabu")
    parser.add_argument("--draws", type=int, default=3, help="noise draws per line")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--cutoffs", default="0.85,0.88,0.9,0.92,0.94,0.96")
    parser.add_argument("--windows", default="5,3")
    parser.add_argument("--confirms", default="1,2")
    parser.add_argument(
        "--schedule", type=int, default=0, help="score the kiosk hour's lines (this many cycles) instead"
    )
    args = parser.parse_args()
    detector = MicroWakeDetector([args.word], MicroWakeOptions(sliding_windows={args.word: 1}))
    if args.schedule:
        lines = schedule_corpus(detector, args.schedule, args.seed)
    else:
        lines = corpus(args.word, args.draws, args.seed)
        for line in lines:
            line["trace"] = strides(detector, line["mic"])
    accepted = [x for x in lines if x["kind"] == "wake" and x["voice"] in ACCEPTED_VOICES]
    passers = [x for x in lines if x["kind"] == "passer_by"]
    source = f"kiosk schedule, {args.schedule} cycles" if args.schedule else f"{args.draws} draws"
    print(f"{len(accepted)} accepted-voice wake lines, {len(passers)} passer-by lines ({source})")
    for window in (int(w) for w in args.windows.split(",")):
        wake_peaks = sorted(peak_mean(x["trace"], window) for x in accepted)
        passer_peaks = sorted(
            ((peak_mean(x["trace"], window), x["text"], x["voice"]) for x in passers), reverse=True
        )
        print(f"window {window}: lowest wake peaks {[round(p, 3) for p in wake_peaks[:6]]}")
        print("  highest passer-by peaks:")
        for peak, text, voice in passer_peaks[:6]:
            print(f"    {peak:.3f}  {text!r} ({voice})")
        others = [p for p in passer_peaks if "okay" not in p[1]]
        print(f"  highest without 'okay': {others[0][0]:.3f} {others[0][1]!r} ({others[0][2]})")
    rows = []
    for window in (int(w) for w in args.windows.split(",")):
        for confirm in (int(c) for c in args.confirms.split(",")):
            for cutoff in (float(c) for c in args.cutoffs.split(",")):
                caught, late = 0, []
                for x in accepted:
                    at = fires(x["trace"], window, cutoff, confirm)
                    if at is not None and at <= x["word_end"] + 1.0:
                        caught += 1
                        late.append(1000 * (at - x["word_end"]))
                false = sum(fires(x["trace"], window, cutoff, confirm) is not None for x in passers)
                rows.append(
                    {
                        "window": window,
                        "confirm": confirm,
                        "cutoff": cutoff,
                        "caught_pct": round(100 * caught / len(accepted), 1),
                        "passer_by_fired": false,
                        "late_ms_p50": round(float(np.percentile(late, 50))) if late else None,
                        "late_ms_max": round(max(late)) if late else None,
                    }
                )
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
