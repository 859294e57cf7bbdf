#!/usr/bin/env python
"""Paraformer against Qwen3-ASR-0.6B on the same clips: wall time, RTF, peak RSS and, on CUDA,
peak GPU memory (torch.cuda.max_memory_allocated, weights included), as JSON.

Each recogniser runs alone in the process (the other unloaded first), through voiceloop's
adapters (`transcribe` for one file, `transcribe_batch` for several), on speech-like clips of
each duration, `batch` copies shifted in time. Models:
  large  random-init at the real shape (SeACo-Paraformer-large ~220 M; Qwen3-ASR-0.6B 0.78 B with
         embeddings): the real compute per second of audio, without downloading weights
  tiny   tiny random-init models (fast; checks the plumbing, not speed)
  ID/DIR a cached model id (paraformer-zh, qwen3-asr) or a model directory: the real thing

A random-init Qwen3-ASR never emits EOS, so it always generates `--max-new-tokens` tokens: set
it to what a real transcript of the clip needs (~3-4 tokens per second of English speech) to
compare like with like. On a CPU the real shape costs ~0.25 s per generated token at 2 threads,
so the CPU defaults are small; `--device cuda` defaults to the published table's grid.

    python scripts/bench_asr.py --compare --device cpu --json bench-asr-compare.json
    python scripts/bench_asr.py --compare --device cuda    # 5/30/60/120 s, batches 1/4/8/16
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

CPU_DEFAULTS = {"durations": "5,30", "batches": "1,4", "max_new_tokens": 8}
CUDA_DEFAULTS = {"durations": "5,30,60,120", "batches": "1,4,8,16", "max_new_tokens": 256}


@dataclass
class CompareRow:
    model: str  # paraformer | qwen3
    duration_s: float
    batch: int
    wall_s: float
    cpu_s: float  # process CPU time, all threads: on a shared, busy CPU less noisy than wall time
    per_file_s: float
    rtf: float
    x_real_time: float
    peak_rss_mb: float  # the process's resident memory at its highest during the call
    peak_gpu_mb: float | None  # torch.cuda.max_memory_allocated during the call; None on CPU


class AbsolutePeaks:
    """Highest RSS (sampled every 2 ms) and, on CUDA, the allocator's peak during a block."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.rss_mb = 0.0
        self.gpu_mb: float | None = None

    @contextlib.contextmanager
    def measure(self) -> Iterator[None]:
        from bench_asr import _malloc_trim, _rss

        cuda = self.device.startswith("cuda")
        if cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        _malloc_trim()
        stop = threading.Event()
        peak = [_rss()]

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _rss())
                time.sleep(0.002)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            if cuda:
                import torch

                torch.cuda.synchronize()
                self.gpu_mb = torch.cuda.max_memory_allocated() / 2**20
            stop.set()
            sampler.join()
            self.rss_mb = peak[0] / 2**20


def paraformer(choice: str, device: str, workdir: Path, ncpu: int) -> Any:
    from bench_asr import model_dir

    from voiceloop.asr.paraformer import ParaformerRecognizer

    return ParaformerRecognizer(model_dir(choice, workdir), device=device, ncpu=ncpu)


def qwen3(choice: str, device: str, workdir: Path, batch_max: int, max_new_tokens: int) -> Any:
    from voiceloop.asr.qwen3 import Qwen3Recognizer

    path = choice
    if choice in ("tiny", "large"):
        from voiceloop.testing.tiny_qwen3 import build_once

        path = str(build_once(workdir, large=choice == "large"))
    return Qwen3Recognizer(
        path,
        device=device,
        language="en",  # a hint, as voiceloop passes [asr] language: no detection prefix to generate
        max_inference_batch_size=batch_max,
        max_new_tokens=max_new_tokens,
    )


def run_one(
    name: str, make: Callable[[], Any], clips: dict[float, np.ndarray], batches: list[int], device: str
) -> tuple[list[CompareRow], dict[str, Any]]:
    """Every (duration, batch) for one recogniser, which is unloaded afterwards."""
    from bench_asr import timed

    start = time.perf_counter()
    recognizer = make()
    recognizer.warm_up()
    info = {
        "description": recognizer.description,
        "load_and_warm_up_s": round(time.perf_counter() - start, 2),
    }
    print(
        f"{name}: {info['description']}, loaded and warmed up in {info['load_and_warm_up_s']} s", flush=True
    )
    rows = []
    for duration, clip in clips.items():
        for batch in batches:
            files = [np.roll(clip, i * 1601) for i in range(batch)]

            def call(files: list[np.ndarray] = files, recognizer: Any = recognizer) -> Any:
                if len(files) == 1:
                    return recognizer.transcribe(files[0], [])
                return recognizer.transcribe_batch(files, [])

            peaks = AbsolutePeaks(device)
            with peaks.measure():
                wall, cpu_s = timed(call, device)
            audio_s = duration * batch
            row = CompareRow(
                name,
                duration,
                batch,
                round(wall, 3),
                round(cpu_s, 3),
                round(wall / batch, 3),
                round(wall / audio_s, 4),
                round(audio_s / wall, 1),
                round(peaks.rss_mb, 1),
                None if peaks.gpu_mb is None else round(peaks.gpu_mb, 1),
            )
            rows.append(row)
            gpu = "" if row.peak_gpu_mb is None else f", GPU peak {row.peak_gpu_mb:8.1f} MB"
            print(
                f"{name:10s} {duration:5.0f} s x{batch:<3d} {wall:8.2f} s (CPU {cpu_s:8.2f} s; "
                f"{row.per_file_s:7.2f} s/file, "
                f"RTF {row.rtf:.3f}), RSS peak {row.peak_rss_mb:8.1f} MB{gpu}",
                flush=True,
            )
    recognizer.close()
    del recognizer
    _unload(name)
    return rows, info


def _unload(name: str) -> None:
    if name == "paraformer":
        from voiceloop.asr.funasr_model import unload_all
    else:
        from voiceloop.asr.qwen3 import unload_all
    unload_all()
    gc.collect()
    with contextlib.suppress(ImportError):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Runs the side-by-side; `args` from `add_arguments` (through bench_asr.py --compare)."""
    import torch
    from bench_asr import speech_clip

    from voiceloop.asr.funasr_model import pick_device

    device = pick_device(args.device)
    defaults = CUDA_DEFAULTS if device.startswith("cuda") else CPU_DEFAULTS
    durations = [float(d) for d in (args.compare_durations or defaults["durations"]).split(",")]
    batches = [int(b) for b in (args.compare_batches or defaults["batches"]).split(",")]
    max_new_tokens = args.max_new_tokens or int(defaults["max_new_tokens"])
    ncpu = args.ncpu or os.cpu_count() or 1
    workdir = Path(args.workdir) if args.workdir else Path.home() / ".cache" / "voiceloop-bench"
    workdir.mkdir(parents=True, exist_ok=True)
    clips = {d: speech_clip(d, seed=int(d)) for d in durations}
    models = {
        "paraformer": lambda: paraformer(args.paraformer_model, device, workdir, ncpu),
        "qwen3": lambda: qwen3(args.qwen3_model, device, workdir, max(batches), max_new_tokens),
    }
    rows: list[CompareRow] = []
    info: dict[str, Any] = {}
    for name in args.models.split(","):
        torch.set_num_threads(ncpu)  # FunASR sets it process-wide: both run on the same count
        more, info[name] = run_one(name, models[name], clips, batches, device)
        rows += more
    return {
        "device": device,
        "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
        "cpu": platform.processor() or platform.machine(),
        "threads": ncpu,
        "torch": torch.__version__,
        "paraformer_model": args.paraformer_model,
        "qwen3_model": args.qwen3_model,
        "qwen3_max_new_tokens": max_new_tokens,
        "models": info,
        "rows": [asdict(r) for r in rows],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The side-by-side's own flags (bench_asr.py's --device, --ncpu, --workdir, --json too)."""
    group = parser.add_argument_group("--compare: Paraformer vs Qwen3-ASR")
    group.add_argument("--compare", action="store_true", help="run the Paraformer vs Qwen3-ASR side-by-side")
    group.add_argument(
        "--compare-durations", default=None, help="seconds (default: 5,30 CPU; 5,30,60,120 CUDA)"
    )
    group.add_argument(
        "--compare-batches", default=None, help="files per batch (default: 1,4 CPU; 1,4,8,16 CUDA)"
    )
    group.add_argument("--models", default="paraformer,qwen3", help="which of the two, in this order")
    group.add_argument("--paraformer-model", default="large", help="large, tiny, or an id/dir")
    group.add_argument("--qwen3-model", default="large", help="large, tiny, or an id/dir (qwen3-asr)")
    group.add_argument(
        "--max-new-tokens", type=int, default=None, help="Qwen3 tokens per clip (default: 8 CPU, 256 CUDA)"
    )


def main_compare(args: argparse.Namespace) -> None:
    result = compare(args)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    else:
        print(json.dumps(result, indent=2))
