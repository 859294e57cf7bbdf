"""FunASR's streaming Paraformer (`paraformer-zh-streaming`): partial text while the user speaks.

This is the first pass of FunASR's "2pass" scheme: the online model decodes 600 ms chunks as
they arrive, carrying its encoder and predictor state in a per-utterance cache, and says what
it has heard so far; at the endpoint the offline recogniser (`asr.name`, PyTorch or ONNX, with
punctuation) decodes the whole segment, and that is the turn's text. Partials are for showing,
never for answering.

The settings are FunASR's published ones: `chunk_size=[0, 10, 5]` (600 ms chunks, 300 ms of
look-ahead), `encoder_chunk_look_back=4`, `decoder_chunk_look_back=1`; `asr.streaming_chunk_ms =
480` takes its other published setting, `[0, 8, 4]` (480 ms chunks, 240 ms of look-ahead: the
model, SANMEncoderChunkOpt, is trained on several chunk sizes), for earlier, more frequent
partials at a little more compute per second of audio (scripts/bench_asr_cpu.py `--streaming`).
A chunk's text covers the audio up to its look-ahead: the first partial has heard half a chunk. The model is loaded once
per process through `funasr_model.load_model` (quiet, no update checks, no downloads).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voiceloop.asr import models
from voiceloop.asr.base import AsrError
from voiceloop.asr.funasr_model import load_model, root_logging_kept
from voiceloop.asr.paraformer import join_units
from voiceloop.audio.frames import SAMPLE_RATE

DEFAULT_MODEL = "paraformer-zh-streaming"
FRAME_SAMPLES = 960  # one 60 ms frame (the model's 6-fold low frame rate) at 16 kHz
# In 60 ms frames: no look-back, the chunk, its look-ahead (FunASR's two published settings).
CHUNK_SIZES = {600: [0, 10, 5], 480: [0, 8, 4]}
CHUNK_MS = 600  # FunASR's; the loop's default on PyTorch (build/pipeline.py streaming_chunk_ms)
CHUNK_SIZE = CHUNK_SIZES[CHUNK_MS]
CHUNK_SAMPLES = CHUNK_SIZE[1] * FRAME_SAMPLES  # 600 ms at 16 kHz
ENCODER_LOOK_BACK = 4
DECODER_LOOK_BACK = 1


def chunk_size(chunk_ms: int, sizes: dict[int, list[int]] = CHUNK_SIZES) -> list[int]:
    """The model's chunk_size for `asr.streaming_chunk_ms`; other lengths were never trained."""
    if chunk_ms not in sizes:
        choices = " or ".join(str(ms) for ms in sizes)
        raise AsrError(f"asr.streaming_chunk_ms = {chunk_ms}: the streaming Paraformer takes {choices}")
    return list(sizes[chunk_ms])


@dataclass
class PartialStream:
    """One utterance's decoding state: feed it audio as it arrives, read `text`."""

    recognizer: StreamingParaformer
    cache: dict[str, Any] = field(default_factory=dict)
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    pieces: list[str] = field(default_factory=list)
    decoded_s: float = 0.0

    @property
    def text(self) -> str:
        return join_units([unit for piece in self.pieces for unit in piece.split()])

    def feed(self, audio: np.ndarray, final: bool = False) -> bool:
        """Decodes every whole chunk now buffered (and the rest with `final`); True when the
        text grew."""
        self.pending = np.concatenate([self.pending, np.asarray(audio, np.float32)])
        grew = False
        size = self.recognizer.chunk_samples
        while len(self.pending) >= size or (final and len(self.pending)):
            take = size if len(self.pending) >= size else len(self.pending)
            chunk, self.pending = self.pending[:take], self.pending[take:]
            last = final and not len(self.pending)
            piece = self.recognizer.decode_chunk(chunk, self.cache, last)
            self.decoded_s += take / SAMPLE_RATE
            if piece:
                self.pieces.append(piece)
                grew = True
        return grew


class StreamingParaformer:
    """The online model; `start()` gives each utterance its own stream (and cache)."""

    name = "paraformer-streaming"

    def __init__(self, model: str = DEFAULT_MODEL, ncpu: int = 1, chunk_ms: int = CHUNK_MS) -> None:
        self.chunk_size = chunk_size(chunk_ms)
        self.chunk_samples = self.chunk_size[1] * FRAME_SAMPLES
        self.lookahead_samples = self.chunk_size[2] * FRAME_SAMPLES
        self.model_dir = models.resolve(model, "streaming model")
        self.model_name = model
        self._loaded = load_model(self.model_dir, None, None, "cpu", ncpu)
        if self._loaded.model_class != "ParaformerStreaming":
            raise AsrError(
                f"asr.streaming_model {model} is a {self._loaded.model_class}, not a streaming "
                "Paraformer (use 'paraformer-zh-streaming')"
            )
        self.load_s = self._loaded.load_s
        self.last_chunk_s = 0.0

    def warm_up(self) -> None:
        """One utterance's worth of calls on quiet noise: the first chunk is the slow one."""
        noise = np.random.default_rng(0).standard_normal(2 * self.chunk_samples).astype(np.float32) * 0.01
        self.start().feed(noise, final=True)

    def start(self) -> PartialStream:
        return PartialStream(self)

    def decode_chunk(self, chunk: np.ndarray, cache: dict[str, Any], final: bool) -> str:
        """FunASR's `generate` on one chunk: the text this chunk added (often empty)."""
        start = time.perf_counter()
        try:
            with self._loaded.lock, root_logging_kept():
                results = self._loaded.automodel.generate(
                    input=chunk,
                    cache=cache,
                    is_final=final,
                    chunk_size=self.chunk_size,
                    encoder_chunk_look_back=ENCODER_LOOK_BACK,
                    decoder_chunk_look_back=DECODER_LOOK_BACK,
                    disable_pbar=True,
                )
        except Exception as exc:
            raise AsrError(f"the streaming model failed on a chunk: {type(exc).__name__}: {exc}") from exc
        self.last_chunk_s = time.perf_counter() - start
        return str(results[0].get("text", "")) if results else ""
