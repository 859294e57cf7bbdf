#!/usr/bin/env python
"""Paraformer on a CPU: PyTorch vs ONNX fp32 vs ONNX int8, and "2pass" streaming (issue 17).

Models are random-init at the real sizes (SeACo-Paraformer-large: 50 encoder blocks of 512, 16
decoder blocks, 8404 tokens; the streaming model likewise), built with FunASR's classes and
exported with `voiceloop.asr.onnx_export` (what `voiceloop models export --int8` runs), so the
compute per second of audio is the real one without downloading weights.

  --onnx      RTF, load time and peak RSS of each runtime on the same clips (median of --repeat)
  --two-pass  the wait from the endpoint to the final text for 2/5/10/20 s utterances: offline
              only (the whole utterance decoded at the endpoint) vs 2pass (the streaming model
              fed in real time from a worker, and the offline model decoding up to each pause
              while the user speaks, as the loop does), and the cadence of the partial texts

    python scripts/bench_asr_cpu.py --onnx --threads 2 --durations 5,10
    python scripts/bench_asr_cpu.py --two-pass --threads 2 --utterances 2,5,10,20
(also reachable as `python scripts/bench_asr.py --cpu-onnx|--two-pass ...`)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SAMPLE_RATE = 16000


def large_seaco(workdir: Path) -> Path:
    """The real-size SeACo-Paraformer with a CJK vocabulary (funasr-onnx needs one), exported."""
    from voiceloop.asr.funasr_model import import_automodel
    from voiceloop.asr.onnx_export import export
    from voiceloop.testing.tiny_funasr import LARGE, build_paraformer
    from voiceloop.testing.tiny_funasr_onnx import cjk_vocabulary

    target = workdir / "seaco-large-cjk"
    if not (target / "model_quant.onnx").is_file():
        import_automodel()
        build_paraformer(target, seaco=True, shape=LARGE, tokens=cjk_vocabulary(LARGE["vocab"]))
        started = time.perf_counter()
        export(str(target), quantize=True, ncpu=2)
        print(f"exported {target} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return target


def large_streaming(workdir: Path) -> Path:
    from voiceloop.asr.funasr_model import import_automodel
    from voiceloop.testing.tiny_funasr import LARGE
    from voiceloop.testing.tiny_funasr_streaming import build_once

    import_automodel()
    return build_once(workdir / "streaming-large", LARGE)


def bench_onnx(args: argparse.Namespace) -> dict[str, Any]:
    """PyTorch (the paraformer adapter) vs the paraformer-onnx adapter in fp32 and int8."""
    from bench_asr import PeakMemory, speech_clip

    from voiceloop.asr.paraformer import ParaformerRecognizer
    from voiceloop.asr.paraformer_onnx import ParaformerOnnxRecognizer

    directory = str(large_seaco(args.workdir))
    clips = {d: speech_clip(d, seed=int(d)) for d in args.durations}
    rows: list[dict[str, Any]] = []
    builders = {
        "pytorch": lambda: ParaformerRecognizer(directory, device="cpu", ncpu=args.threads),
        "onnx-fp32": lambda: ParaformerOnnxRecognizer(directory, quantize=False, threads=args.threads),
        "onnx-int8": lambda: ParaformerOnnxRecognizer(directory, quantize=True, threads=args.threads),
    }
    for runtime, build in builders.items():
        memory = PeakMemory("cpu")
        with memory.measure():
            started = time.perf_counter()
            recognizer = build()
            load_s = time.perf_counter() - started
            recognizer.warm_up()
            for duration, clip in clips.items():
                times, cpu_times = [], []
                for _ in range(args.repeat):
                    started, cpu = time.perf_counter(), time.process_time()
                    recognizer.transcribe(clip)
                    times.append(time.perf_counter() - started)
                    cpu_times.append(time.process_time() - cpu)
                median, cpu_median = statistics.median(times), statistics.median(cpu_times)
                # CPU time (all threads) is the steadier measure on a shared machine: wall time
                # there depends on what else runs.
                rows.append(
                    {"runtime": runtime, "duration_s": duration, "median_s": round(median, 3),
                     "rtf": round(median / duration, 4), "cpu_rtf": round(cpu_median / duration, 4),
                     "load_s": round(load_s, 2)}
                )  # fmt: skip
                print(
                    f"{runtime:10} {duration:5.0f} s  RTF {median / duration:.4f} (CPU time "
                    f"{cpu_median / duration:.4f})  load {load_s:.1f} s",
                    flush=True,
                )
        for row in rows:
            if row["runtime"] == runtime:
                row["peak_rss_mb"] = round(memory.peak_mb)
        print(f"{runtime:10} peak RSS over the start: {memory.peak_mb:.0f} MB", flush=True)
        del recognizer
    for duration in args.durations:
        rtf = {r["runtime"]: r["rtf"] for r in rows if r["duration_s"] == duration}
        cpu = {r["runtime"]: r["cpu_rtf"] for r in rows if r["duration_s"] == duration}
        print(
            f"{duration:.0f} s: int8 is {rtf['pytorch'] / rtf['onnx-int8']:.2f}x PyTorch's speed "
            f"(CPU time: {cpu['pytorch'] / cpu['onnx-int8']:.2f}x), fp32 {rtf['pytorch'] / rtf['onnx-fp32']:.2f}x"
        )
    return {"onnx": rows}


def pauses(clip: Any, min_s: float = 0.2) -> list[tuple[int, int]]:
    """(start, end) samples of the silent runs of at least `min_s` (10 ms frames under -45 dBFS)."""
    import numpy as np

    frames = clip[: len(clip) // 160 * 160].reshape(-1, 160)
    quiet = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12) < -45
    runs, start = [], None
    for index, silent in enumerate([*quiet, False]):
        if silent and start is None:
            start = index
        elif not silent and start is not None:
            if (index - start) * 0.01 >= min_s:
                runs.append((start * 160, index * 160))
            start = None
    return runs


def feed_in_real_time(
    stream: Any,
    recognizer: Any,
    clip: Any,
    speaking_from: float,
    stop: threading.Event,
    partial_times: list[float],
    chunk_ms: list[float],
) -> None:
    """The loop's worker: each 600 ms chunk to the streaming model as soon as it has been spoken,
    never earlier, and (as voiceloop/engine/partials.py does at each SpeechPaused, 100 ms into a
    pause) the audio up to each pause to the offline model."""
    from voiceloop.asr.paraformer_streaming import CHUNK_SAMPLES

    chunks = [(start + CHUNK_SAMPLES, "chunk", start) for start in range(0, len(clip), CHUNK_SAMPLES)]
    cuts = [(begin + int(0.1 * SAMPLE_RATE), "pause", begin) for begin, _ in pauses(clip)]
    for ready, kind, at in sorted(chunks + cuts):
        time.sleep(max(0.0, speaking_from + min(ready, len(clip)) / SAMPLE_RATE - time.perf_counter()))
        if stop.is_set():
            return
        if kind == "pause":
            prefix = clip[: at + int(0.05 * SAMPLE_RATE)]
            if (segment := recognizer.reserve(prefix)) is not None:
                recognizer.decode(segment, prefix)
            continue
        started = time.perf_counter()
        if stream.feed(clip[at : at + CHUNK_SAMPLES]):
            partial_times.append(time.perf_counter())
        chunk_ms.append((time.perf_counter() - started) * 1000)


def bench_two_pass(args: argparse.Namespace) -> dict[str, Any]:
    """Endpoint → final text, offline only vs 2-pass; partial cadence while speaking."""
    from bench_asr import speech_clip

    from voiceloop.asr.paraformer_onnx import ParaformerOnnxRecognizer
    from voiceloop.asr.paraformer_streaming import StreamingParaformer
    from voiceloop.asr.segments import PrefixDecodingRecognizer

    offline = ParaformerOnnxRecognizer(str(large_seaco(args.workdir)), quantize=True, threads=args.threads)
    offline.warm_up()
    streamer = StreamingParaformer(str(large_streaming(args.workdir)), ncpu=1)
    streamer.warm_up()
    rows: list[dict[str, Any]] = []
    for duration in args.utterances:
        clip = speech_clip(duration, seed=int(duration))
        offline_waits, two_pass_waits, gaps, chunk_ms = [], [], [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            offline.transcribe(clip)
            offline_waits.append(time.perf_counter() - started)

            # 2-pass: the streaming model gets each 600 ms as it is spoken (real time), in a
            # worker; at the endpoint its stream is dropped and the offline model decodes.
            stream, stop, partial_times = streamer.start(), threading.Event(), []
            two_pass = PrefixDecodingRecognizer(offline)  # fresh: nothing reserved yet
            speaking_from = time.perf_counter()
            worker = threading.Thread(
                target=feed_in_real_time,
                args=(stream, two_pass, clip, speaking_from, stop, partial_times, chunk_ms),
            )
            worker.start()
            time.sleep(duration)  # the user speaks
            stop.set()
            started = time.perf_counter()  # the endpoint
            two_pass.transcribe(clip)  # waits for a segment still being decoded, then the rest
            two_pass_waits.append(time.perf_counter() - started)
            worker.join()
            marks = [speaking_from, *partial_times]
            gaps += [b - a for a, b in zip(marks, marks[1:], strict=False)]
        row = {
            "utterance_s": duration,
            "offline_only_wait_ms": round(statistics.median(offline_waits) * 1000),
            "two_pass_wait_ms": round(statistics.median(two_pass_waits) * 1000),
            "partial_gap_ms_median": round(statistics.median(gaps) * 1000) if gaps else None,
            "partial_gap_ms_max": round(max(gaps) * 1000) if gaps else None,
            "chunk_compute_ms_median": round(statistics.median(chunk_ms)) if chunk_ms else None,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"two_pass": rows}


def parser_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--durations", default="5,10", help="--onnx: clip lengths in seconds")
    parser.add_argument("--utterances", default="2,5,10,20", help="--two-pass: utterance lengths")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/voiceloop-bench-asr-cpu"))
    parser.add_argument("--json", type=Path, default=None)


def run(args: argparse.Namespace, onnx: bool, two_pass: bool) -> None:
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.durations = [float(d) for d in str(args.durations).split(",")]
    args.utterances = [float(d) for d in str(args.utterances).split(",")]
    result: dict[str, Any] = {}
    if onnx:
        result.update(bench_onnx(args))
    if two_pass:
        result.update(bench_two_pass(args))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--onnx", action="store_true")
    parser.add_argument("--two-pass", action="store_true")
    parser_arguments(parser)
    args = parser.parse_args(argv)
    run(args, args.onnx or not args.two_pass, args.two_pass)


if __name__ == "__main__":
    main()
