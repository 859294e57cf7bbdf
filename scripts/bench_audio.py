#!/usr/bin/env python
"""Real audio devices, measured on a private PulseAudio daemon (no sound card needed).

For each backend, on the null sink `vl_speaker` and its monitor `vl_loopback_mic`:

  calibration        `voiceloop calibrate`'s measurement (three chirps): the device's output-to-
                     input delay, per chirp, against what PortAudio's timestamps said
  callback_cost_us   time spent inside our audio callback per block (median, p99, max): the
                     callback only moves blocks between rings, so this is the binding's overhead
  xruns              over a --seconds loopback run with speech playing throughout: mic blocks
                     dropped (input_overruns), speaker blocks played as silence
                     (output_underruns), and PortAudio's own xrun flags
  mic_frame_age_ms   from a mic frame's capture to its delivery to the loop (median, p95):
                     the input side's share of every reply's latency
  loopback           the device delay seen in each 10 s of the run (what was played against what
                     came back: a drift check), their median correlation, and the delays the
                     echo tracker adopted along the way
  aec_erle_db        speex over the whole run with the calibrated delay, echo-only speech:
                     the end-to-end proof that the reference is aligned

The loop side does what `voiceloop run` does per frame (speex on every frame), so the callback
competes with real work for the GIL.

    .venv/bin/python scripts/bench_audio.py [--seconds 60] [--json]
        [--backend sounddevice|sounddevice-full|pyaudio|all]

sounddevice runs with separate streams (the default, audio.duplex = "separate") and, as
`sounddevice-full`, as one full-duplex stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voiceloop.audio.calibration import calibrate
from voiceloop.audio.devices import DeviceDuplex, estimate_delay
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.audio.playback import PlaybackQueue
from voiceloop.build import build_adapter
from voiceloop.config import Settings, load_settings
from voiceloop.testing.pulse import LOOPBACK_MIC, SPEAKER_DEVICE, private_pulse

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "It is going to rain this afternoon, so take an umbrella.",
    "Set a timer for five minutes and remind me to call my sister.",
    "Voice assistants must not answer their own voice.",
)


VARIANTS = {
    "sounddevice": ("sounddevice", "separate"),
    "sounddevice-full": ("sounddevice", "full"),  # one full-duplex stream
    "pyaudio": ("pyaudio", "separate"),
}


def settings_for(variant: str, delay_ms: float | None = None) -> Settings:
    backend, duplex = VARIANTS[variant]
    settings = load_settings("offline")
    settings.audio.backend = backend
    settings.audio.duplex = duplex
    settings.audio.input_device = LOOPBACK_MIC
    settings.audio.output_device = SPEAKER_DEVICE
    settings.aec.delay_ms = delay_ms
    return settings


def speech_loop(seconds: float) -> np.ndarray:
    """espeak sentences with short pauses, repeated to fill `seconds`."""
    from voiceloop.tts.espeak import render

    pause = np.zeros(int(0.3 * SAMPLE_RATE), dtype=np.float32)
    one_round = np.concatenate(
        [part for text in SENTENCES for part in (render(text, "en-us", 175) * 0.5, pause)]
    )
    repeats = int(np.ceil(seconds * SAMPLE_RATE / one_round.size))
    return np.tile(one_round, repeats)[: int(seconds * SAMPLE_RATE)].astype(np.float32)


async def loopback_run(device: DeviceDuplex, settings: Settings, seconds: float) -> dict[str, Any]:
    from voiceloop.aec.metrics import erle_db

    aec = build_adapter(settings, "aec", "speex")
    signal = speech_loop(seconds)
    queue = PlaybackQueue()
    queue.open_turn(1)
    piece = queue.begin_piece(1, "bench", spoken=False)
    assert piece is not None
    queue.append(1, piece, signal)
    queue.end_piece(1, piece)
    queue.close_turn(1)
    played: list[np.ndarray] = []
    mic: list[np.ndarray] = []
    cleaned: list[np.ndarray] = []
    ages: list[float] = []
    device.tap = lambda m, s: played.append(s)
    frames_needed = int(seconds * SAMPLE_RATE / 160)
    async for frame in device.frames(queue):
        ages.append(device.now() - frame.captured_at)
        mic.append(frame.mic_frame)
        cleaned.append(aec.process(frame.mic_frame, frame.reference_frame))
        if len(mic) >= frames_needed:
            break
    await device.aclose()
    played_all, mic_all = np.concatenate(played), np.concatenate(mic)
    out_all = np.concatenate(cleaned)
    ten = 10 * SAMPLE_RATE
    windows = [
        estimate_delay(played_all[i : i + ten], mic_all[i : i + ten], SAMPLE_RATE // 2)
        for i in range(0, played_all.size - ten + 1, ten)
    ]
    skip = 3 * SAMPLE_RATE  # convergence
    shift = int(getattr(aec, "output_delay_samples", 0))
    erle = erle_db(mic_all[skip : mic_all.size - shift], out_all[skip + shift :])
    age_ms = np.array(ages) * 1000
    return {
        "stats": device.stats.as_dict(),
        "device": device.describe(),
        "mic_frame_age_ms": {
            "median": round(float(np.median(age_ms)), 1),
            "p95": round(float(np.percentile(age_ms, 95)), 1),
        },
        "loopback": {
            "lag_per_10s_ms": [round(w.delay_ms - device.own_s * 1000, 1) for w in windows],
            "correlation": round(float(np.median([w.correlation for w in windows])), 3),
            "delay_tracked_ms": device.describe().get("echo_delay_changes_ms", []),
        },
        "aec_erle_db": round(erle, 1),
    }


def bench(variant: str, seconds: float) -> dict[str, Any]:
    started = time.monotonic()
    backend = VARIANTS[variant][0]
    device = build_adapter(settings_for(variant), "audio", backend)
    result = asyncio.run(calibrate(device))
    calibration = {
        "delay_ms": result.delay_ms,
        "per_chirp_ms": result.per_chirp_ms,
        "portaudio_delay_ms": result.portaudio_delay_ms,
        "echo_level_db": result.echo_level_db,
        "sharpness": result.sharpness,
        "sample_rate": result.sample_rate,
    }
    settings = settings_for(variant, delay_ms=result.delay_ms)
    run = asyncio.run(loopback_run(build_adapter(settings, "audio", backend), settings, seconds))
    stats = run.pop("stats")
    return {
        "backend": variant,
        "seconds": seconds,
        "calibration": calibration,
        "callback_cost_us": stats.pop("callback_cost_us"),
        "xruns": stats,
        **run,
        "wall_s": round(time.monotonic() - started, 1),
    }


def show(report: dict[str, Any]) -> None:
    cal, x, cost = report["calibration"], report["xruns"], report["callback_cost_us"]
    print(
        f"== {report['backend']} ({report['device']['input']} → {report['device']['output']}, {cal['sample_rate']} Hz)"
    )
    print(
        f"  calibrated delay {cal['delay_ms']} ms (chirps {cal['per_chirp_ms']}), PortAudio said "
        f"{cal['portaudio_delay_ms']} ms; echo level {cal['echo_level_db']} dB"
    )
    print(
        f"  callback cost per block: median {cost['median']} µs, p99 {cost['p99']} µs, max {cost['max']} µs"
    )
    print(
        f"  {report['seconds']:.0f} s loopback: {x['callbacks']} callbacks; mic blocks dropped "
        f"{x['input_overruns']}, speaker underruns {x['output_underruns']} ({x['startup_underruns']} at "
        f"start-up), speaker overruns "
        f"{x['output_overruns']}; PortAudio flags: input overflow {x['device_input_overflows']}, "
        f"output underflow {x['device_output_underflows']}"
    )
    age, loop = report["mic_frame_age_ms"], report["loopback"]
    print(f"  mic frame age at delivery: median {age['median']} ms, p95 {age['p95']} ms")
    print(
        f"  loopback delay per 10 s: {loop['lag_per_10s_ms']} ms (correlation {loop['correlation']}); "
        f"echo tracker adopted {loop['delay_tracked_ms']} ms"
    )
    print(f"  speex ERLE, calibrated delay then tracked: {report['aec_erle_db']} dB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--backend", choices=(*VARIANTS, "all"), default="all")
    args = parser.parse_args()
    backends = tuple(VARIANTS) if args.backend == "all" else (args.backend,)
    reports = []
    with private_pulse() as server, server.activate():
        for backend in backends:
            reports.append(bench(backend, args.seconds))
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for report in reports:
            show(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
