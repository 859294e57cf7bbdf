#!/usr/bin/env python
"""The Edge voice against the loopback service: time to first audio, decode cost, and how
long the espeak fallback takes to speak when the service fails.

- first audio: from `synthesize()` to the first 16 kHz chunk, with the real edge-tts client
  (websocket handshake, speech.config, SSML, first MP3 message, first decoded frame). The
  loopback service answers at once, so this is the client side's own cost; the real service
  adds its network round trips and synthesis time on top.
- decode: `Mp3StreamDecoder` fed the service's MP3 in its 1440-byte messages; milliseconds of
  CPU per second of speech (the 24 → 16 kHz resampling included).
- fallback: from `synthesize()` to the first audio from espeak, per fault. A stall is bounded
  by `first_audio_timeout_s` (set here by --first-audio-timeout), the rest by round trips.

Medians over --runs. Run with `.venv/bin/python scripts/bench_tts.py [--runs 7] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.build import build_adapter, build_voice
from voiceloop.config import Settings
from voiceloop.testing.edge_server import EdgeFault, EdgeServer
from voiceloop.testing.llm_server import unused_port
from voiceloop.tts.mp3 import Mp3StreamDecoder

TEXT = "Sure thing, here is the weather for today: sunny in the morning, with rain later on."
VOICE = "en-US-EmmaMultilingualNeural"


def settings_for(first_audio_timeout_s: float, fallback: str | None) -> Settings:
    settings = Settings()
    settings.tts.name = "edge"
    settings.tts.voice = VOICE
    settings.tts.fallback = fallback
    settings.tts.fallback_retry_s = 0  # every piece tries Edge first
    settings.tts.edge.first_audio_timeout_s = first_audio_timeout_s
    return settings


async def first_audio(server: EdgeServer, runs: int) -> dict[str, float]:
    voice = build_adapter(settings_for(3.0, None), "tts", "edge")
    [_ async for _ in voice.synthesize(TEXT)]  # the service renders and caches the text once
    firsts, totals, speech = [], [], 0.0
    for _ in range(runs):
        started = time.perf_counter()
        first = None
        samples = 0
        async for chunk in voice.synthesize(TEXT):
            first = first if first is not None else time.perf_counter() - started
            samples += chunk.size
        totals.append(time.perf_counter() - started)
        firsts.append(first or float("nan"))
        speech = samples / SAMPLE_RATE
    return {
        "first_audio_ms": round(statistics.median(firsts) * 1000, 1),
        "whole_piece_ms": round(statistics.median(totals) * 1000, 1),
        "speech_s": round(speech, 2),
        "chunks_per_s": round(server.requests[-1].audio_messages / speech, 1),
    }


def decode_cost(server: EdgeServer, runs: int) -> dict[str, float]:
    mp3 = server.rendered(TEXT).mp3  # exactly what the service streams for TEXT
    step = server.chunk_bytes
    costs, speech = [], 0.0
    for _ in range(max(runs, 5)):
        decoder = Mp3StreamDecoder()
        started = time.perf_counter()
        samples = sum(decoder.feed(mp3[i : i + step]).size for i in range(0, len(mp3), step))
        samples += decoder.flush().size
        costs.append(time.perf_counter() - started)
        speech = samples / SAMPLE_RATE
    per_second = statistics.median(costs) / speech
    return {"decode_ms_per_speech_s": round(per_second * 1000, 3), "decode_x_realtime": round(1 / per_second)}


async def fallback_times(server: EdgeServer, runs: int, first_audio_timeout_s: float) -> dict[str, float]:
    import edge_tts.communicate

    faults: dict[str, EdgeFault | str] = {
        "refused": f"ws://127.0.0.1:{unused_port()}/edge/v1?x=y",
        "dns": "wss://edge-tts.invalid/edge/v1?x=y",
        "403": EdgeFault(status=403),
        "503": EdgeFault(status=503),
        "stall": EdgeFault(stall_s=60),
        "cut": EdgeFault(cut_after_chunks=3),
    }
    results: dict[str, float] = {}
    loopback = edge_tts.communicate.WSS_URL
    for name, fault in faults.items():
        voice = build_voice(settings_for(first_audio_timeout_s, "espeak"))
        voice.notify = lambda _: None
        times = []
        for _ in range(runs):
            if isinstance(fault, str):
                edge_tts.communicate.WSS_URL = fault
            else:
                server.fail_always(fault)
            try:
                times.append(await time_to_fallback(voice))
            finally:
                edge_tts.communicate.WSS_URL = loopback
                server.fail_always(None)
        results[f"fallback_{name}_ms"] = round(statistics.median(times) * 1000, 1)
    return results


async def time_to_fallback(voice: Any) -> float:
    """Seconds from the call to the first chunk the fallback voice made."""
    before = voice.fallback_pieces
    started = time.perf_counter()
    elapsed = float("nan")
    async for _chunk in voice.synthesize(TEXT):
        if voice.fallback_pieces > before and np.isnan(elapsed):
            elapsed = time.perf_counter() - started
    return elapsed


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with EdgeServer() as server, server.patched():
        report: dict[str, Any] = {"runs": args.runs, "first_audio_timeout_s": args.first_audio_timeout}
        report.update(await first_audio(server, args.runs))
        report.update(decode_cost(server, args.runs))
        report.update(await fallback_times(server, args.runs, args.first_audio_timeout))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--first-audio-timeout", type=float, default=1.0, help="seconds (tts.edge.first_audio_timeout_s)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return
    print(f"Edge voice on the loopback service, medians of {args.runs} runs")
    print(
        f"  first audio            {report['first_audio_ms']:8.1f} ms   (whole {report['speech_s']} s piece: {report['whole_piece_ms']} ms)"
    )
    print(
        f"  decode                 {report['decode_ms_per_speech_s']:8.3f} ms per second of speech ({report['decode_x_realtime']}x real time)"
    )
    print(
        f"  fallback to espeak, from the call to its first audio (first_audio_timeout_s = {args.first_audio_timeout:g}):"
    )
    for key, value in report.items():
        if key.startswith("fallback_"):
            print(f"    {key[len('fallback_') : -3]:<20} {value:8.1f} ms")


if __name__ == "__main__":
    main()
