"""Throughput and latency of `POST /v1/audio/transcriptions` under concurrent load.

Starts `voiceloop serve` as its own process (so its memory is measured apart from the load
generator's), then sends rounds of N concurrent requests of 5 s speech clips and reports, over
all requests after a warm-up round: latency median / p95 / max, requests per second, seconds
of audio recognised per second of wall time, and the server's RSS after each round.

    python scripts/bench_serve.py                                  # pocketsphinx, offline profile
    python scripts/bench_serve.py --asr paraformer --asr-model tiny --workers 1 --batch-max 8
    python scripts/bench_serve.py --asr paraformer --asr-model large --device cuda   # on a GPU
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LINES = ["what time is it", "turn on the lights", "play some music", "tell me a joke", "how are you"]


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def model_dir(choice: str, workdir: Path) -> str:
    if choice not in ("tiny", "large"):
        return choice
    from voiceloop.asr.paraformer import import_automodel
    from voiceloop.testing.tiny_funasr import LARGE, TINY, build_paraformer

    import_automodel()
    target = workdir / f"seaco-{choice}"
    if not (target / "model.pt").exists():
        build_paraformer(target, seaco=True, shape=LARGE if choice == "large" else TINY)
    return str(target)


def start_server(args: argparse.Namespace, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VOICELOOP_LOG__DIR": str(workdir / "runs"),
        "VOICELOOP_SERVE__WORKERS": str(args.workers),
        "VOICELOOP_SERVE__BATCH_MAX": str(args.batch_max),
        "VOICELOOP_SERVE__QUEUE": str(max(args.concurrency, 64)),
    }
    if args.asr_model:
        env["VOICELOOP_ASR__PARAFORMER__MODEL"] = model_dir(args.asr_model, workdir)
    if args.device:
        env["VOICELOOP_ASR__PARAFORMER__DEVICE"] = args.device
    command = [str(ROOT / ".venv/bin/voiceloop"), "serve", "-c", args.config, "--port", str(port)]
    if args.asr:
        command += ["--asr", args.asr]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(url: str, server: subprocess.Popen[bytes], timeout_s: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"the server exited: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the server did not start")


async def load(args: argparse.Namespace, url: str, pid: int) -> dict[str, Any]:
    import httpx
    import psutil

    from voiceloop.testing.clips import encoded, spoken_clip

    clips = [encoded(spoken_clip(line, seconds=args.clip_s, seed=i)) for i, line in enumerate(LINES)]
    server = psutil.Process(pid)
    rounds: list[dict[str, Any]] = []
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    rss_start = server.memory_info().rss / 2**20
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one(k: int) -> tuple[float, bool]:
            start = time.perf_counter()
            response = await client.post(
                "/v1/audio/transcriptions", files={"file": (f"clip{k}.wav", clips[k % len(clips)])}
            )
            return time.perf_counter() - start, response.status_code == 200

        for round_index in range(args.rounds + 1):
            start = time.perf_counter()
            results = await asyncio.gather(*(one(k) for k in range(args.concurrency)))
            wall = time.perf_counter() - start
            failed = sum(1 for _, ok in results if not ok)
            rss = server.memory_info().rss / 2**20
            row = {
                "round": round_index,
                "warm_up": round_index == 0,
                "wall_s": round(wall, 3),
                "requests_per_s": round(args.concurrency / wall, 2),
                "audio_s_per_s": round(args.concurrency * args.clip_s / wall, 1),
                "latency_median_ms": round(statistics.median(t for t, _ in results) * 1000, 1),
                "latency_p95_ms": round(p95([t for t, _ in results]) * 1000, 1),
                "errors": failed,
                "server_rss_mb": round(rss, 1),
            }
            rounds.append(row)
            print(json.dumps(row), flush=True)
            if round_index > 0:
                latencies.extend(t for t, _ in results)
                errors += failed
        info = (await client.get("/info")).json()
    measured = [r for r in rounds if not r["warm_up"]]
    return {
        "asr": info["asr"]["description"],
        "device": info["device"],
        "workers": args.workers,
        "batch_max": args.batch_max,
        "concurrency": args.concurrency,
        "clip_s": args.clip_s,
        "rounds": args.rounds,
        "requests": len(latencies),
        "errors": errors,
        "latency_ms": {
            "median": round(statistics.median(latencies) * 1000, 1),
            "p95": round(p95(latencies) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
        },
        "throughput": {
            "requests_per_s_median": round(statistics.median(r["requests_per_s"] for r in measured), 2),
            "audio_s_per_s_median": round(statistics.median(r["audio_s_per_s"] for r in measured), 1),
        },
        "server_rss_mb": {
            "start": round(rss_start, 1),
            "after_warm_up": rounds[0]["server_rss_mb"],
            "end": rounds[-1]["server_rss_mb"],
            "growth_after_warm_up": round(rounds[-1]["server_rss_mb"] - rounds[0]["server_rss_mb"], 1),
        },
        "queue": info["queue"],
        "per_round": rounds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="offline")
    parser.add_argument("--asr", default=None, help="pocketsphinx (the profile's), paraformer, openai")
    parser.add_argument(
        "--asr-model", default=None, help="paraformer: tiny, large (random-init), an id or a dir"
    )
    parser.add_argument("--device", default=None, help="paraformer: cpu, cuda, auto")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds, after one warm-up round")
    parser.add_argument("--clip-s", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch-max", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    args = parser.parse_args(argv)

    from voiceloop.testing.llm_server import unused_port

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        port = unused_port()
        server = start_server(args, Path(folder), port)
        url = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(wait_ready(url, server))
            summary = asyncio.run(load(args, url, server.pid))
        finally:
            server.terminate()
            server.wait(30)
    print(json.dumps({k: v for k, v in summary.items() if k != "per_round"}, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
