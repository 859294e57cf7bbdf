"""Throughput and latency of `POST /v1/audio/transcriptions` under concurrent load.

Starts `voiceloop serve` as its own process (so its memory is measured apart from the load
generator's), then sends rounds of N concurrent requests of 5 s speech clips and reports, over
all requests after a warm-up round: latency median / p95 / max, requests per second, seconds
of audio recognised per second of wall time, and the server's RSS after each round.

    python scripts/bench_serve.py                                  # pocketsphinx, offline profile
    python scripts/bench_serve.py --asr paraformer --asr-model tiny --workers 1 --batch-max 8
    python scripts/bench_serve.py --asr paraformer --asr-model large --device cuda   # on a GPU
    python scripts/bench_serve.py --memory        # peak RSS per request kind, then 1,000 mixed

`--memory` sends one request at a time of each kind (a 1 s clip, a 10 min file, a WebM that
holds 60 min but whose header says 1 s) and samples the server's RSS every 5 ms while it is in
flight: the peak growth over the RSS before it is what one request can cost. Then 1,000 mixed
requests (clips, long files, lying files, garbage) at 8 at once, and the RSS after.
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
    from voiceloop.asr.funasr_model import import_automodel
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


class PeakRss:
    """Samples a process's RSS from a thread while a request runs; `peak_mb` is the highest."""

    def __init__(self, pid: int, every_s: float = 0.005) -> None:
        import threading

        import psutil

        self.process = psutil.Process(pid)
        self.every_s = every_s
        self.base_mb = self.process.memory_info().rss / 2**20
        self.peak_mb = self.base_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.process.memory_info().rss / 2**20)
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self.process.memory_info().rss / 2**20)


def memory_files(workdir: Path) -> dict[str, tuple[str, bytes]]:
    import numpy as np

    from voiceloop.testing.clips import encoded, spoken_clip, webm_silence

    lying = workdir / "hour-says-1s.webm"
    if not lying.exists():
        lying.write_bytes(webm_silence(3600.0, claimed_s=1.0))  # ~30 s to encode
    rng = np.random.default_rng(0)
    ten_minutes = np.concatenate(
        [spoken_clip(LINES[k % len(LINES)], seconds=10.0, seed=k) for k in range(60)]
    ) + (rng.standard_normal(600 * 16000) * 1e-3).astype(np.float32)
    return {
        "1 s wav": ("one.wav", encoded(spoken_clip("stop", seconds=1.0))),
        "10 min flac": ("ten.flac", encoded(ten_minutes, "FLAC")),
        "60 min webm, header says 1 s": ("lying.webm", lying.read_bytes()),
    }


async def memory(
    url: str, pid: int, workdir: Path, repeats: int = 3, mixed_rounds: int = 3
) -> dict[str, Any]:
    import os

    import httpx

    files = memory_files(workdir)
    limit_mb = 600 * 16000 * 4 / 2**20  # the decoded audio serve.max_audio_s allows
    kinds: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        for kind, (name, data) in files.items():
            growths, walls, statuses = [], [], []
            for _ in range(repeats):
                with PeakRss(pid) as rss:
                    start = time.perf_counter()
                    response = await client.post("/v1/audio/transcriptions", files={"file": (name, data)})
                    walls.append(time.perf_counter() - start)
                growths.append(rss.peak_mb - rss.base_mb)
                statuses.append(response.status_code)
            kinds[kind] = {
                "upload_mb": round(len(data) / 2**20, 2),
                "status": statuses[-1],
                "wall_s_median": round(statistics.median(walls), 2),
                "peak_rss_growth_mb_median": round(statistics.median(growths), 1),
                "peak_rss_growth_mb_max": round(max(growths), 1),
                "times_the_limits_decoded_audio": round(max(growths) / limit_mb, 2),
            }
            print(json.dumps({kind: kinds[kind]}), flush=True)

        mixed = [
            ("one.wav", files["1 s wav"][1]),
            ("five.wav", encoded_clip(5.0)),
            ("lying.webm", files["60 min webm, header says 1 s"][1]),
            ("garbage.wav", os.urandom(20_000)),
        ]
        weights = [700, 250, 10, 40]
        plan = [item for item, count in zip(mixed, weights, strict=True) for _ in range(count)]
        statuses: dict[int, int] = {}
        gate = asyncio.Semaphore(8)

        async def send(item: tuple[str, bytes]) -> None:
            async with gate:
                response = await client.post("/v1/audio/transcriptions", files={"file": item})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        import psutil

        server = psutil.Process(pid)
        rss_mb = [round(server.memory_info().rss / 2**20, 1)]
        walls = []
        for _ in range(mixed_rounds):  # a leak keeps growing; a high-water mark levels off
            start = time.perf_counter()
            await asyncio.gather(*(send(item) for item in plan))
            walls.append(round(time.perf_counter() - start, 1))
            rss_mb.append(round(server.memory_info().rss / 2**20, 1))
            print(json.dumps({"mixed_round_rss_mb": rss_mb[-1]}), flush=True)
    return {
        "decoded_audio_the_limit_allows_mb": round(limit_mb, 1),
        "one_request_at_a_time": kinds,
        "mixed_1000": {
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "wall_s_per_round": walls,
            "rss_mb_before_and_after_each_round": rss_mb,
        },
    }


def encoded_clip(seconds: float) -> bytes:
    from voiceloop.testing.clips import encoded, spoken_clip

    return encoded(spoken_clip(LINES[0], seconds=seconds))


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
    parser.add_argument("--memory", action="store_true", help="peak RSS per request kind, then 1,000 mixed")
    args = parser.parse_args(argv)

    from voiceloop.testing.llm_server import unused_port

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        port = unused_port()
        server = start_server(args, Path(folder), port)
        url = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(wait_ready(url, server))
            if args.memory:
                summary = asyncio.run(memory(url, server.pid, Path(folder)))
            else:
                summary = asyncio.run(load(args, url, server.pid))
        finally:
            server.terminate()
            server.wait(30)
    print(json.dumps({k: v for k, v in summary.items() if k != "per_round"}, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
