#!/usr/bin/env python
"""Paraformer on a CPU: PyTorch vs ONNX fp32 vs ONNX int8, and "2pass" streaming (issue 17).

Models are random-init at the real sizes (SeACo-Paraformer-large: 50 encoder blocks of 512, 16
decoder blocks, 8404 tokens; the streaming model likewise), built with FunASR's classes and
exported with `voiceloop.asr.onnx_export` (what `voiceloop models export --int8` runs), so the
compute per second of audio is the real one without downloading weights.

  --onnx       RTF, load time and peak RSS of each runtime on the same clips (median of --repeat)
  --streaming  the streaming model's compute per chunk (--chunk-ms 600 or 480), PyTorch vs ONNX
               int8 (as fast as it goes), and the cadence of partial text when fed in real time
  --two-pass   the wait from the endpoint to the final text for 2/5/10/20 s utterances: offline
               only (the whole utterance decoded at the endpoint) vs 2pass (the streaming model
               fed in real time from a worker, and the offline model decoding up to each pause
               while the user speaks, as the loop does), and the cadence of the partial texts

    python scripts/bench_asr_cpu.py --onnx --threads 2 --durations 5,10
    python scripts/bench_asr_cpu.py --streaming --durations 10
    python scripts/bench_asr_cpu.py --two-pass --threads 2 --utterances 2,5,10,20 --streaming-runtime onnx
    python scripts/bench_asr_cpu.py --two-pass --utterances 10 --repeat 5 --chunk-ms 480

Partial text is timed from the speech's first sound, as the loop would show it: the utterance
starts with the VAD's pre-roll (room noise), the VAD (silero + the endpointer) finds the onset,
and the streaming model is fed from where voiceloop/engine/partials.py starts it. A partial
counts only once its text covers some of the speech (a chunk's text ends a look-ahead before
the audio fed): a random-weight model makes text out of the pre-roll's noise, a real one would
not. `first_partial_heard_ms` says how much speech the first one covered.
(also reachable as `python scripts/bench_asr.py --cpu-onnx|--two-pass ...`)

Wall time is the figure that matters (it is what the user waits); on this shared 2-core machine
it depends on what else runs, so every figure is printed with the load average (`uptime`) it was
measured under: compare runtimes measured side by side, not figures from different moments.
Process CPU time is printed too, but it is no steadier: onnxruntime's and PyTorch's idle worker
threads spin while they wait (the paraformer-onnx adapter turns that off), and that spinning
counts as CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SAMPLE_RATE = 16000


def load_average() -> float:
    """The 1-minute load average: how many runnable tasks shared the 2 cores meanwhile."""
    return os.getloadavg()[0]


def large_seaco(workdir: Path, seaco: bool = True, stock_cif: bool = False) -> Path:
    """The real-size SeACo-Paraformer (`paraformer-zh`, the default; with `seaco=False` the plain
    Paraformer-large, `paraformer`) with a CJK vocabulary (funasr-onnx needs one), exported
    (`stock_cif`: with FunASR's looped CIF, as before voiceloop.asr.onnx_cif)."""
    from voiceloop.asr.funasr_model import import_automodel
    from voiceloop.asr.onnx_export import export
    from voiceloop.testing.tiny_funasr import LARGE, build_paraformer
    from voiceloop.testing.tiny_funasr_onnx import cjk_vocabulary

    target = workdir / (
        ("seaco-large-cjk" if seaco else "paraformer-large-cjk") + ("-stock-cif" if stock_cif else "")
    )
    if not (target / "model_quant.onnx").is_file():
        import_automodel()
        build_paraformer(target, seaco=seaco, shape=LARGE, tokens=cjk_vocabulary(LARGE["vocab"]))
        started = time.perf_counter()
        export(str(target), quantize=True, ncpu=2, loop_free=not stock_cif)
        print(f"exported {target} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return target


def large_streaming(workdir: Path, onnx: bool = False) -> Path:
    """The real-size streaming Paraformer (and, with `onnx`, its int8 export)."""
    from voiceloop.asr.funasr_model import import_automodel
    from voiceloop.asr.onnx_export import export
    from voiceloop.testing.tiny_funasr import LARGE
    from voiceloop.testing.tiny_funasr_streaming import build_once

    import_automodel()
    target = build_once(workdir / "streaming-large", LARGE)
    if onnx and not (target / "decoder_quant.onnx").is_file():
        started = time.perf_counter()
        export(str(target), quantize=True, ncpu=2)
        print(f"exported {target} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return target


def streamer(runtime: str, workdir: Path, threads: int = 1, chunk_ms: int = 600) -> Any:
    """The streaming model on `runtime` (pytorch | onnx | onnx-fp32), loaded and warmed."""
    if runtime == "pytorch":
        from voiceloop.asr.paraformer_streaming import StreamingParaformer

        model: Any = StreamingParaformer(str(large_streaming(workdir)), ncpu=threads, chunk_ms=chunk_ms)
    else:
        from voiceloop.asr.paraformer_streaming_onnx import StreamingParaformerOnnx

        directory = str(large_streaming(workdir, onnx=True))
        model = StreamingParaformerOnnx(
            directory, threads=threads, quantize=runtime == "onnx", chunk_ms=chunk_ms
        )
    model.warm_up()
    return model


def bench_onnx(args: argparse.Namespace) -> dict[str, Any]:
    """PyTorch (the paraformer adapter) vs the paraformer-onnx adapter in fp32 and int8."""
    from bench_asr import PeakMemory, speech_clip

    from voiceloop.asr.paraformer import ParaformerRecognizer
    from voiceloop.asr.paraformer_onnx import ParaformerOnnxRecognizer

    directory = str(large_seaco(args.workdir, seaco=args.model == "seaco", stock_cif=args.stock_cif))
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
                times, cpu_times, loads = [], [], []
                for _ in range(args.repeat):
                    started, cpu = time.perf_counter(), time.process_time()
                    result = recognizer.transcribe(clip)
                    times.append(time.perf_counter() - started)
                    cpu_times.append(time.process_time() - cpu)
                    loads.append(load_average())
                median, cpu_median = statistics.median(times), statistics.median(cpu_times)
                # Random weights fire CIF about every other 60 ms frame: the decoder gets more
                # tokens than real speech (~4-5 characters a second) would give it.
                tokens = len(result.timestamps) or len(result.text.replace(" ", ""))
                rows.append(
                    {"runtime": runtime, "model": args.model, "stock_cif": args.stock_cif, "duration_s": duration, "median_s": round(median, 3),
                     "rtf": round(median / duration, 4), "cpu_rtf": round(cpu_median / duration, 4),
                     "load_s": round(load_s, 2), "tokens": tokens, "load_avg": round(max(loads), 1)}
                )  # fmt: skip
                print(
                    f"{runtime:10} {duration:5.0f} s  RTF {median / duration:.4f} (CPU time "
                    f"{cpu_median / duration:.4f})  load {load_s:.1f} s  {tokens} tokens  "
                    f"[load average {max(loads):.1f}]",
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


def speech_onset(audio: Any) -> int:
    """The speech's first sound: the first 10 ms frame over -45 dBFS (as `pauses` hears it)."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    loud = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12) >= -45
    return int(np.argmax(loud)) * 160


def vad_onset(clip: Any) -> int:
    """Where the loop's VAD (silero + the endpointer, default settings) puts the onset."""
    from voiceloop.vad.endpointer import EndpointConfig, Endpointer
    from voiceloop.vad.silero import CHUNK_SAMPLES as VAD_CHUNK
    from voiceloop.vad.silero import SileroVad

    vad, endpointer = SileroVad(), Endpointer(EndpointConfig())
    for start in range(0, len(clip) - VAD_CHUNK + 1, VAD_CHUNK):
        chunk = clip[start : start + VAD_CHUNK]
        for event in endpointer.feed(chunk, vad.speech_probability(chunk), start / SAMPLE_RATE):
            if type(event).__name__ == "SpeechStarted":
                return round(event.at * SAMPLE_RATE)
    raise RuntimeError("the VAD heard no speech in the clip")


def utterance(speech: Any, preroll_ms: int, stop_ms: int, streaming_preroll_ms: int) -> tuple[Any, int, int]:
    """What the loop hands on: the VAD's pre-roll (room noise), the speech, the stop window's
    silence; with where the speech begins (the partial gaps count from there) and where the
    streaming model's feed begins (the loop's rule, voiceloop/engine/partials.py: the VAD's
    onset less `streaming_preroll_ms`, within the pre-roll)."""
    rng = np.random.default_rng(0)
    quiet = 10 ** (-55 / 20)
    before = rng.standard_normal(int(preroll_ms / 1000 * SAMPLE_RATE)) * quiet
    after = rng.standard_normal(int(stop_ms / 1000 * SAMPLE_RATE)) * quiet
    clip = np.concatenate([before, speech, after]).astype(np.float32)
    onset = len(before) + speech_onset(speech)
    heard = vad_onset(clip)
    stream_from = max(0, heard - streaming_preroll_ms * SAMPLE_RATE // 1000)
    print(
        f"speech onset {onset / SAMPLE_RATE:.3f} s into the clip, the VAD's {heard / SAMPLE_RATE:.3f} s, "
        f"the streaming model fed from {stream_from / SAMPLE_RATE:.3f} s",
        file=sys.stderr,
    )
    return clip, onset, stream_from


def feed_in_real_time(
    stream: Any,
    recognizer: Any,
    clip: Any,
    clip_from: float,
    stop: threading.Event,
    partials: list[tuple[float, int]],
    chunk_ms: list[float],
    stream_from: int = 0,
    onset: int = 0,
    one_worker: bool = False,
) -> None:
    """The loop's threads (voiceloop/engine/partials.py): this one, the loop's, hands each chunk
    (from `stream_from` on) to the streaming worker as soon as it has been spoken (sample 0 at
    `clip_from`), never earlier, and at each pause after the onset (SpeechPaused, 100 ms into
    it) reserves the audio up to it as an offline segment for the offline worker to decode; the
    streaming worker takes what has queued and feeds it in one go. After `stop` (the endpoint)
    no more chunks are decoded. `one_worker`: the loop before, one worker decoding the segments
    first, then the chunks. `partials` gets (time, sample) for each partial: when it came, and
    the end of the audio its text covers (the audio fed, less the look-ahead)."""
    size = stream.recognizer.chunk_samples
    lookahead = stream.recognizer.lookahead_samples
    chunks_in: queue.SimpleQueue[Any] = queue.SimpleQueue()
    segments_in: queue.SimpleQueue[Any] = chunks_in if one_worker else queue.SimpleQueue()

    def stream_worker() -> None:
        while True:
            batch = [chunks_in.get()]
            while True:
                try:
                    batch.append(chunks_in.get_nowait())
                except queue.Empty:
                    break
            for item in batch:
                if item is not None and item[0] == "pause":  # only with one_worker
                    recognizer.decode(item[1], item[2])
            fresh = [item[1] for item in batch if item is not None and item[0] == "chunk"]
            if fresh and not stop.is_set():
                started = time.perf_counter()
                if stream.feed(np.concatenate(fresh)):
                    decoded = stream_from + round(stream.decoded_s * SAMPLE_RATE)
                    partials.append((time.perf_counter(), decoded - lookahead))
                chunk_ms.append((time.perf_counter() - started) * 1000)
            if None in batch:
                return

    def segment_worker() -> None:
        while (item := segments_in.get()) is not None:
            recognizer.decode(item[1], item[2])

    threads = [threading.Thread(target=stream_worker)]
    if not one_worker:
        threads.append(threading.Thread(target=segment_worker))
    for thread in threads:
        thread.start()
    chunks = [(start + size, "chunk", start) for start in range(stream_from, len(clip), size)]
    cuts = [(begin + int(0.1 * SAMPLE_RATE), "pause", begin) for begin, _ in pauses(clip) if begin > onset]
    for ready, kind, at in sorted(chunks + cuts):
        time.sleep(max(0.0, clip_from + min(ready, len(clip)) / SAMPLE_RATE - time.perf_counter()))
        if stop.is_set():
            break
        if kind == "pause":
            if recognizer is None:  # --streaming: partials alone
                continue
            prefix = clip[: at + int(0.05 * SAMPLE_RATE)]
            if (segment := recognizer.reserve(prefix)) is not None:
                segments_in.put(("pause", segment, prefix))
            continue
        chunks_in.put(("chunk", clip[at : at + size], None))
    chunks_in.put(None)
    if not one_worker:
        segments_in.put(None)
    for thread in threads:
        thread.join()


def partial_gaps(
    partials: list[tuple[float, int]], clip_from: float, onset: int
) -> tuple[list[float], float]:
    """The gaps between partial texts from the speech's onset on, counting only partials that
    have heard some of the speech (a random-weight model "hears" text in the pre-roll's noise,
    a real one would not), and how much speech the first of them had heard (ms)."""
    heard = [(at, end) for at, end in partials if end > onset]
    marks = [clip_from + onset / SAMPLE_RATE, *(at for at, _ in heard)]
    first_heard_ms = (heard[0][1] - onset) / SAMPLE_RATE * 1000 if heard else 0.0
    return [b - a for a, b in zip(marks, marks[1:], strict=False)], first_heard_ms


def bench_streaming(args: argparse.Namespace) -> dict[str, Any]:
    """Per-chunk compute of each streaming runtime on the same clip, fed as fast as it goes
    (what a chunk costs), then fed in real time (how often partial text arrives)."""
    from bench_asr import speech_clip

    rows: list[dict[str, Any]] = []
    for runtime in args.streaming_runtimes:
        model = streamer(runtime, args.workdir, args.streaming_threads, args.chunk_ms)
        size = model.chunk_samples
        for duration in args.durations:
            speech = speech_clip(duration, seed=int(duration))
            chunk_ms, loads = [], []
            started_all = time.perf_counter()
            for _ in range(args.repeat):
                stream = model.start()
                for start in range(0, len(speech), size):
                    started = time.perf_counter()
                    stream.feed(speech[start : start + size], final=start + size >= len(speech))
                    chunk_ms.append((time.perf_counter() - started) * 1000)
                loads.append(load_average())
            rtf = (time.perf_counter() - started_all) / (args.repeat * duration)
            clip, onset, stream_from = utterance(speech, args.preroll_ms, 0, args.streaming_preroll_ms)
            partials: list[tuple[float, int]] = []
            live_chunk_ms: list[float] = []
            clip_from = time.perf_counter()
            feed_in_real_time(
                model.start(), None, clip, clip_from, threading.Event(), partials, live_chunk_ms,
                stream_from, onset,
            )  # fmt: skip
            loads.append(load_average())
            gaps, first_heard_ms = partial_gaps(partials, clip_from, onset)
            row = {
                "runtime": runtime,
                "chunk_ms": args.chunk_ms,
                "duration_s": duration,
                "chunk_compute_ms_median": round(statistics.median(chunk_ms)),
                "chunk_compute_ms_max": round(max(chunk_ms)),
                "rtf": round(rtf, 3),
                "realtime_chunk_ms_median": round(statistics.median(live_chunk_ms)),
                "partials": len(gaps),
                "first_partial_ms": round(gaps[0] * 1000) if gaps else None,
                "first_partial_heard_ms": round(first_heard_ms),
                "partial_gap_ms_median": round(statistics.median(gaps) * 1000) if gaps else None,
                "partial_gap_ms_max": round(max(gaps) * 1000) if gaps else None,
                "load_avg": round(max(loads), 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
        del model
    return {"streaming": rows}


def bench_two_pass(args: argparse.Namespace) -> dict[str, Any]:
    """Endpoint → final text, offline only vs 2-pass; partial cadence while speaking."""
    from bench_asr import speech_clip

    from voiceloop.asr.paraformer_onnx import ParaformerOnnxRecognizer
    from voiceloop.asr.segments import PrefixDecodingRecognizer

    offline = ParaformerOnnxRecognizer(str(large_seaco(args.workdir)), quantize=True, threads=args.threads)
    offline.warm_up()
    first_pass = streamer(args.streaming_runtime, args.workdir, args.streaming_threads, args.chunk_ms)
    rows: list[dict[str, Any]] = []
    for duration in args.utterances:
        # The loop's utterance: the VAD's pre-roll, the speech, then the endpointer's stop
        # window of silence (vad.stop_ms, 200 ms); its SpeechPaused comes vad.speculate_ms
        # (100 ms) into a pause.
        speech = speech_clip(duration, seed=int(duration))
        clip, onset, stream_from = utterance(speech, args.preroll_ms, args.stop_ms, args.streaming_preroll_ms)
        offline_waits, two_pass_waits, gaps, firsts, chunk_ms, loads, tails = [], [], [], [], [], [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            offline.transcribe(clip)
            offline_waits.append(time.perf_counter() - started)

            # 2-pass: the streaming model gets each chunk as it is spoken (real time), in a
            # worker; at the endpoint its stream is dropped and the offline model decodes.
            stream, stop, partials = first_pass.start(), threading.Event(), []
            # Fresh (nothing reserved yet), with the loop's rule for the stop window's silence.
            two_pass = PrefixDecodingRecognizer(offline, silent_tail_s=args.stop_ms / 1000)
            clip_from, one = time.perf_counter(), args.one_worker
            worker = threading.Thread(
                target=feed_in_real_time,
                args=(stream, two_pass, clip, clip_from, stop, partials, chunk_ms, stream_from, onset, one),
            )
            worker.start()
            time.sleep(len(clip) / SAMPLE_RATE)  # the user speaks, then the stop window passes
            stop.set()
            started = time.perf_counter()  # the endpoint
            reserved = two_pass.reserved_samples()
            two_pass.transcribe(clip)  # waits for a segment still being decoded, then the rest
            two_pass_waits.append(time.perf_counter() - started)
            tails.append((len(clip) - reserved) / SAMPLE_RATE)
            worker.join()
            loads.append(load_average())
            run_gaps, first_heard_ms = partial_gaps(partials, clip_from, onset)
            gaps += run_gaps
            firsts += run_gaps[:1]
        row = {
            "utterance_s": duration,
            "offline_only_wait_ms": round(statistics.median(offline_waits) * 1000),
            "two_pass_wait_ms": round(statistics.median(two_pass_waits) * 1000),
            "tail_left_s_median": round(statistics.median(tails), 2),  # decoded after the endpoint
            "first_partial_ms_median": round(statistics.median(firsts) * 1000) if firsts else None,
            "first_partial_ms_max": round(max(firsts) * 1000) if firsts else None,
            "first_partial_heard_ms": round(first_heard_ms),
            "partial_gap_ms_median": round(statistics.median(gaps) * 1000) if gaps else None,
            "partial_gap_ms_max": round(max(gaps) * 1000) if gaps else None,
            "chunk_compute_ms_median": round(statistics.median(chunk_ms)) if chunk_ms else None,
            "streaming_runtime": args.streaming_runtime,
            "chunk_ms": args.chunk_ms,
            "streaming_preroll_ms": args.streaming_preroll_ms,
            "workers": 1 if args.one_worker else 2,
            "load_avg": round(max(loads), 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"two_pass": rows}


def parser_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--model",
        choices=("seaco", "paraformer"),
        default="seaco",
        help="--onnx: SeACo-Paraformer-large (paraformer-zh, hotwords, timestamps) or Paraformer-large",
    )
    parser.add_argument(
        "--stock-cif", action="store_true", help="--onnx: FunASR's looped CIF export (voiceloop.asr.onnx_cif)"
    )
    parser.add_argument("--durations", default="5,10", help="--onnx: clip lengths in seconds")
    parser.add_argument("--utterances", default="2,5,10,20", help="--two-pass: utterance lengths")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--streaming-runtime", default="onnx", help="--two-pass: pytorch, onnx, onnx-fp32")
    parser.add_argument(
        "--streaming-runtimes", default="pytorch,onnx", help="--streaming: the runtimes compared"
    )
    parser.add_argument("--streaming-threads", type=int, default=1, help="asr.streaming_ncpu")
    parser.add_argument("--stop-ms", type=int, default=200, help="--two-pass: vad.stop_ms")
    parser.add_argument("--chunk-ms", type=int, default=600, help="asr.streaming_chunk_ms: 600 or 480")
    parser.add_argument(
        "--one-worker",
        action="store_true",
        help="--two-pass: the loop before, one worker decoding pause segments before the next chunk",
    )
    parser.add_argument("--preroll-ms", type=int, default=300, help="vad.preroll_ms")
    parser.add_argument(
        "--streaming-preroll-ms",
        type=int,
        default=None,
        help="of the pre-roll, what the streaming model gets (the loop's: partials.STREAMING_PREROLL_MS)",
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/voiceloop-bench-asr-cpu"))
    parser.add_argument("--json", type=Path, default=None)


def run(args: argparse.Namespace, onnx: bool, two_pass: bool, streaming: bool = False) -> None:
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.durations = [float(d) for d in str(args.durations).split(",")]
    args.utterances = [float(d) for d in str(args.utterances).split(",")]
    args.streaming_runtimes = str(args.streaming_runtimes).split(",")
    if args.streaming_preroll_ms is None:
        from voiceloop.engine.partials import STREAMING_PREROLL_MS

        args.streaming_preroll_ms = STREAMING_PREROLL_MS
    result: dict[str, Any] = {}
    if onnx:
        result.update(bench_onnx(args))
    if streaming:
        result.update(bench_streaming(args))
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
    parser.add_argument("--streaming", action="store_true")
    parser_arguments(parser)
    args = parser.parse_args(argv)
    run(args, args.onnx or not (args.two_pass or args.streaming), args.two_pass, args.streaming)


if __name__ == "__main__":
    main()
