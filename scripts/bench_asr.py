#!/usr/bin/env python
"""RTF and peak memory of the paraformer adapter against `AutoModel.generate` called directly.

Both run on the same AutoModel instance, the same audio and the same generate options, in
alternating order (median of --repeat runs), so the ratio adapter/direct is the adapter's own
cost. Models:
  tiny   tiny random-init SeACo-Paraformer (fast; measures overhead, not speed)
  large  random-init SeACo-Paraformer at the real model's size (~250M parameters): real compute
         per second of audio without downloading weights (the default)
  ID/DIR a cached model id (paraformer-zh) or a model directory: the real thing

    python scripts/bench_asr.py --device cuda --durations 5,30,60,120 --batches 1,4,16
    python scripts/bench_asr.py --device cpu --model tiny --json bench-asr.json

`--compare` runs the Paraformer vs Qwen3-ASR side-by-side instead (scripts/bench_asr_compare.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SAMPLE_RATE = 16000
TEXT = (
    "what time is it. turn on the lights in the kitchen. tell me a joke about computers. "
    "set a timer for five minutes. what is the weather like today in the city. play some music"
)


@dataclass
class Row:
    duration_s: float
    batch: int
    precision: str
    method: str  # adapter | direct
    median_s: float
    cpu_s: float  # process CPU time (all threads): on a shared CPU, less noisy than wall time
    rtf: float
    x_real_time: float
    peak_mb: float
    own_ms: float = 0.0  # adapter only: its own work per call, FunASR's generate stubbed out


def own_cost_ms(recognizer: Any, adapter: Callable[[], Any], calls: int = 50) -> float:
    """The adapter's own time per call: `generate` replaced by a stub returning the real
    results of this input, so only the adapter's code runs. Immune to the CPU noise that
    swamps a 1% difference in the end-to-end figures on a shared machine."""
    automodel = recognizer.automodel
    captured: list[Any] = []
    real = automodel.generate

    def recording(*args: Any, **kwargs: Any) -> Any:
        captured.append(real(*args, **kwargs))
        return captured[-1]

    automodel.generate = recording
    try:
        adapter()
        canned = captured[-1]
        automodel.generate = lambda *args, **kwargs: canned
        start = time.perf_counter()
        for _ in range(calls):
            adapter()
        return (time.perf_counter() - start) / calls * 1000
    finally:
        del automodel.generate  # back to the class's method


def speech_clip(seconds: float, seed: int) -> np.ndarray:
    """Speech-like audio of `seconds`: espeak sentences with pauses, over low room noise."""
    from voiceloop.tts.espeak import render

    rng = np.random.default_rng(seed)
    sentences = [render(s.strip(), "en-us") for s in TEXT.split(".") if s.strip()]
    pause = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
    pieces: list[np.ndarray] = []
    total = 0
    while total < seconds * SAMPLE_RATE:
        piece = sentences[int(rng.integers(len(sentences)))]
        pieces += [piece, pause]
        total += len(piece) + len(pause)
    audio = np.concatenate(pieces)[: int(seconds * SAMPLE_RATE)]
    return (audio + rng.standard_normal(len(audio)) * 10 ** (-55 / 20)).astype(np.float32)


class PeakMemory:
    """Peak memory during a block: CUDA allocator peak on a GPU, else RSS sampled every 2 ms
    (above the RSS at the start, in MB)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak_mb = 0.0

    @contextlib.contextmanager
    def measure(self) -> Iterator[None]:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            yield
            torch.cuda.synchronize()
            self.peak_mb = max(self.peak_mb, (torch.cuda.max_memory_allocated() - base) / 2**20)
            return
        _malloc_trim()  # hand freed heap back first, or the previous run's memory hides this one's
        stop = threading.Event()
        base = _rss()
        peak = [base]

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _rss())
                time.sleep(0.002)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            stop.set()
            sampler.join()
            self.peak_mb = max(self.peak_mb, (peak[0] - base) / 2**20)


def _malloc_trim() -> None:
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def model_dir(choice: str, workdir: Path) -> str:
    if choice not in ("tiny", "large"):
        return choice
    from voiceloop.asr.funasr_model import import_automodel
    from voiceloop.testing.tiny_funasr import LARGE, TINY, build_paraformer

    import_automodel()  # fills FunASR's class registry, quietly

    target = workdir / f"seaco-{choice}"
    if not (target / "model.pt").exists():
        build_paraformer(target, seaco=True, shape=LARGE if choice == "large" else TINY)
    return str(target)


def timed(fn: Callable[[], Any], device: str) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu


def bench(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from voiceloop.asr.paraformer import ParaformerRecognizer

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-asr-"))
    path = model_dir(args.model, workdir)
    recognizer = ParaformerRecognizer(path, device=args.device, ncpu=args.ncpu, fp16=False)
    device = recognizer.device
    precisions = (
        args.precision.split(",")
        if args.precision
        else (["fp32", "fp16"] if device.startswith("cuda") else ["fp32"])
    )
    automodel = recognizer.automodel
    options = recognizer.generate_options([])  # exactly what the adapter passes to generate
    recognizer.warm_up()
    print(
        f"device {device} ({torch.cuda.get_device_name(device) if device.startswith('cuda') else platform.processor() or 'cpu'}), "
        f"model {args.model}, ncpu {recognizer.ncpu}, torch {torch.__version__}",
        flush=True,
    )

    rows: list[Row] = []
    for precision in precisions:
        recognizer.fp16 = precision == "fp16"
        if recognizer.fp16:
            try:
                recognizer.transcribe(speech_clip(2.0, 0), [])
            except Exception as exc:  # noqa: BLE001  (any failure means: no fp16 figures)
                print(f"fp16: this model cannot run under autocast ({exc}); skipped", flush=True)
                continue
        autocast = (
            (lambda: torch.autocast("cuda", dtype=torch.float16))
            if recognizer.fp16
            else contextlib.nullcontext
        )
        for duration in args.durations:
            clip = speech_clip(duration, seed=int(duration))
            for batch in args.batches:
                clips = [np.roll(clip, i * 1601) for i in range(batch)]
                audio_s = duration * batch

                def adapter(clips: list[np.ndarray] = clips) -> Any:
                    if len(clips) == 1:
                        return recognizer.transcribe(clips[0], [])
                    return recognizer.transcribe_batch(clips, [])

                def direct(clips: list[np.ndarray] = clips, autocast: Callable[[], Any] = autocast) -> Any:
                    with autocast():
                        if len(clips) == 1:
                            return automodel.generate(input=clips[0], **options)
                        return automodel.generate(input=clips, **{**options, "batch_size": len(clips)})

                adapter(), direct()  # untimed: kernels for this shape
                times: dict[str, list[float]] = {"adapter": [], "direct": []}
                cpu: dict[str, list[float]] = {"adapter": [], "direct": []}
                memory = {"adapter": PeakMemory(device), "direct": PeakMemory(device)}
                for r in range(args.repeat):
                    order = ("adapter", "direct") if r % 2 == 0 else ("direct", "adapter")
                    for name in order:
                        fn = adapter if name == "adapter" else direct
                        with memory[name].measure():
                            wall, cpu_s = timed(fn, device)
                        times[name].append(wall)
                        cpu[name].append(cpu_s)
                for name in ("adapter", "direct"):
                    median = statistics.median(times[name])
                    rows.append(
                        Row(
                            duration,
                            batch,
                            precision,
                            name,
                            round(median, 4),
                            round(statistics.median(cpu[name]), 4),
                            round(median / audio_s, 5),
                            round(audio_s / median, 1),
                            round(memory[name].peak_mb, 1),
                        )
                    )
                rows[-2].own_ms = round(own_cost_ms(recognizer, adapter), 3)
                a, d = rows[-2], rows[-1]
                print(
                    f"{precision} {duration:>5.0f} s x{batch:<3d} adapter {a.median_s:8.3f} s ({a.x_real_time:7.1f}x RT, "
                    f"{a.peak_mb:7.1f} MB)  direct {d.median_s:8.3f} s ({d.x_real_time:7.1f}x RT, {d.peak_mb:7.1f} MB)  "
                    f"ratio wall {a.median_s / d.median_s:.3f} cpu {a.cpu_s / max(d.cpu_s, 1e-9):.3f}; "
                    f"adapter's own work {a.own_ms:.3f} ms = {a.own_ms / 1000 / d.median_s:.2%}",
                    flush=True,
                )
    pairs = list(zip(rows[::2], rows[1::2], strict=True))
    ratios = [a.median_s / d.median_s for a, d in pairs]
    cpu_ratios = [a.cpu_s / max(d.cpu_s, 1e-9) for a, d in pairs]
    return {
        "device": device,
        "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
        "model": args.model,
        "ncpu": recognizer.ncpu,
        "torch": torch.__version__,
        "repeat": args.repeat,
        "rows": [asdict(r) for r in rows],
        "ratio_adapter_over_direct": {
            "median": round(statistics.median(ratios), 4),
            "max": round(max(ratios), 4),
            "total_time": round(sum(r.median_s for r in rows[::2]) / sum(r.median_s for r in rows[1::2]), 4),
            "cpu_median": round(statistics.median(cpu_ratios), 4),
            "own_work_max_fraction": round(max(a.own_ms / 1000 / d.median_s for a, d in pairs), 5),
            "cpu_total": round(
                sum(r.cpu_s for r in rows[::2]) / max(sum(r.cpu_s for r in rows[1::2]), 1e-9), 4
            ),
        },
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if {"--cpu-onnx", "--two-pass", "--streaming"} & set(argv):  # issue 17: bench_asr_cpu.py
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_asr_cpu

        cpu_parser = argparse.ArgumentParser(description=bench_asr_cpu.__doc__)
        cpu_parser.add_argument("--cpu-onnx", action="store_true")
        cpu_parser.add_argument("--two-pass", action="store_true")
        cpu_parser.add_argument("--streaming", action="store_true")
        bench_asr_cpu.parser_arguments(cpu_parser)
        args = cpu_parser.parse_args(argv)
        bench_asr_cpu.run(args, args.cpu_onnx, args.two_pass, args.streaming)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--model", default="large", help="tiny, large (random-init, real size), or an id/dir")
    parser.add_argument("--durations", default="5,30,120", help="clip lengths in seconds")
    parser.add_argument("--batches", default="1,4,16", help="files per batch")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ncpu", type=int, default=None, help="CPU threads (default: the adapter's)")
    parser.add_argument("--precision", default=None, help="fp32, fp16 or fp32,fp16 (default: both on CUDA)")
    parser.add_argument("--workdir", default=None, help="where generated models go (kept for reuse)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    import bench_asr_compare  # the side-by-side (this script's folder is on sys.path)

    bench_asr_compare.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.compare:
        bench_asr_compare.main_compare(args)
        return
    args.durations = [float(d) for d in args.durations.split(",")]
    args.batches = [int(b) for b in args.batches.split(",")]
    result = bench(args)
    ratio = result["ratio_adapter_over_direct"]
    print(
        f"adapter/direct wall time: median {ratio['median']:.3f}, worst {ratio['max']:.3f}, "
        f"all configs {ratio['total_time']:.3f}; CPU time: median {ratio['cpu_median']:.3f}, "
        f"all configs {ratio['cpu_total']:.3f}; the adapter's own work is at most "
        f"{ratio['own_work_max_fraction']:.3%} of a direct call"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
