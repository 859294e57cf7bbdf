"""The streaming Paraformer on FunASR's ONNX runtime (`asr.streaming_runtime = "onnx"`).

The same `paraformer-zh-streaming` model as `paraformer_streaming`, exported by
`voiceloop models export paraformer-zh-streaming --int8` (FunASR writes the encoder with the
CIF predictor as `model[_quant].onnx` and the decoder as `decoder[_quant].onnx`) and run by
`funasr_onnx.paraformer_online_bin.Paraformer`. Where the PyTorch runtime attends to four
chunks of cached encoder states per 600 ms chunk, funasr-onnx's encoder sees the chunk with
300 ms of overlap on each side (`chunk_size=[5, 10, 5]`, its default and its runtime's; `[4, 8,
4]` with `asr.streaming_chunk_ms = 480`: the exported encoder takes any length) and carries the CIF predictor's and the decoder's FSMN state. On this 2-core CPU a chunk cost
~220 ms int8 vs ~1250 ms on PyTorch (scripts/bench_asr_cpu.py `--streaming`, side by side):
what lets partials keep up with speech.

Things funasr-onnx does that this module works around:
- Its online frontend keeps its state (buffered samples, LFR splice) on the model object and
  resets it only on the final chunk, so an utterance dropped at its endpoint without one would
  leak into the next: each stream gets its own frontend, swapped in under a lock.
- A missing ONNX file makes it export (importing funasr) or download: checked first here, and
  the error names `voiceloop models export`.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voiceloop.asr import models
from voiceloop.asr.base import AsrError
from voiceloop.asr.onnx_export import STREAMING_CLASS, require_onnx
from voiceloop.asr.paraformer import join_units
from voiceloop.asr.paraformer_onnx import import_funasr_onnx, sessions_without_spinning
from voiceloop.asr.paraformer_streaming import CHUNK_MS, DEFAULT_MODEL, FRAME_SAMPLES, chunk_size
from voiceloop.audio.frames import SAMPLE_RATE

# 60 ms frames: overlap before, the chunk, look-ahead after (the encoder export is chunk-agnostic).
ONNX_CHUNK_SIZES = {600: [5, 10, 5], 480: [4, 8, 4]}
ONNX_CHUNK_SIZE = ONNX_CHUNK_SIZES[CHUNK_MS]


@dataclass
class OnnxPartialStream:
    """One utterance: its decoder/predictor cache and its own frontend state."""

    recognizer: StreamingParaformerOnnx
    frontend: Any
    cache: dict[str, Any] = field(default_factory=dict)
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    units: list[str] = field(default_factory=list)
    decoded_s: float = 0.0

    @property
    def text(self) -> str:
        return join_units(self.units)

    def feed(self, audio: np.ndarray, final: bool = False) -> bool:
        """Decodes every whole chunk now buffered (and the rest with `final`); True when the
        text grew."""
        self.pending = np.concatenate([self.pending, np.asarray(audio, np.float32).reshape(-1)])
        grew = False
        size = self.recognizer.chunk_samples
        while len(self.pending) >= size or (final and len(self.pending)):
            take = min(size, len(self.pending))
            chunk, self.pending = self.pending[:take], self.pending[take:]
            last = final and not len(self.pending)
            units = self.recognizer.decode_chunk(chunk, self, last)
            self.decoded_s += take / SAMPLE_RATE
            if units:
                self.units += units
                grew = True
        return grew


class StreamingParaformerOnnx:
    """funasr-onnx's online Paraformer; `start()` gives each utterance its own stream."""

    name = "paraformer-streaming-onnx"

    def __init__(
        self, model: str = DEFAULT_MODEL, threads: int = 1, quantize: bool = True, chunk_ms: int = CHUNK_MS
    ) -> None:
        self.chunk_size = chunk_size(chunk_ms, ONNX_CHUNK_SIZES)
        self.chunk_samples = self.chunk_size[1] * FRAME_SAMPLES
        self.lookahead_samples = self.chunk_size[2] * FRAME_SAMPLES
        self.model_dir = models.resolve(model, "streaming model")
        self.model_name = model
        found = require_onnx(model, self.model_dir, quantize, "streaming model")
        if found != STREAMING_CLASS:
            raise AsrError(
                f"asr.streaming_model {model} is a {found}, not a streaming Paraformer "
                "(use 'paraformer-zh-streaming')"
            )
        import_funasr_onnx()  # the clear error when it is missing
        from funasr_onnx import paraformer_online_bin as online

        started = time.perf_counter()
        try:
            with sessions_without_spinning():  # see paraformer_onnx: spinning starves the loop
                self.model = online.Paraformer(
                    str(self.model_dir),
                    chunk_size=list(self.chunk_size),
                    quantize=quantize,
                    intra_op_num_threads=threads,
                )
        except Exception as exc:
            raise AsrError(
                f"funasr-onnx could not load {self.model_dir}: {type(exc).__name__}: {exc}"
            ) from exc
        self.load_s = time.perf_counter() - started
        self._frontend = self.model.frontend  # the template each stream copies
        self._lock = threading.Lock()
        self.last_chunk_s = 0.0
        precision = "int8" if quantize else "fp32"
        self.description = f"{self.name} {model} ({precision}, {threads} threads, {chunk_ms} ms chunks)"

    def warm_up(self) -> None:
        """One utterance's worth of calls on quiet noise: onnxruntime optimises on first run."""
        noise = np.random.default_rng(0).standard_normal(2 * self.chunk_samples).astype(np.float32) * 0.01
        self.start().feed(noise, final=True)

    def start(self) -> OnnxPartialStream:
        frontend = copy.copy(self._frontend)
        frontend.cache_reset()  # fresh buffers of its own; the CMVN statistics stay shared
        return OnnxPartialStream(self, frontend)

    def decode_chunk(self, chunk: np.ndarray, stream: OnnxPartialStream, final: bool) -> list[str]:
        """One call of funasr-onnx's online model: the characters this chunk added."""
        started = time.perf_counter()
        try:
            with self._lock:
                self.model.frontend = stream.frontend
                results = self.model(chunk, param_dict={"cache": stream.cache, "is_final": final})
        except Exception as exc:
            raise AsrError(f"the streaming model failed on a chunk: {type(exc).__name__}: {exc}") from exc
        self.last_chunk_s = time.perf_counter() - started
        units: list[str] = []
        for result in results or []:
            preds = result.get("preds")
            if isinstance(preds, tuple | list) and len(preds) == 2:
                units += [str(u) for u in preds[1] if not str(u).startswith("<")]
        return units
