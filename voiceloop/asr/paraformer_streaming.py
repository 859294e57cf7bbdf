"""FunASR's streaming Paraformer (`paraformer-zh-streaming`): partial text while the user speaks.

This is the first pass of FunASR's "2pass" scheme: the online model decodes 600 ms chunks as
they arrive, carrying its encoder and predictor state in a per-utterance cache, and says what
it has heard so far; at the endpoint the offline recogniser (`asr.name`, PyTorch or ONNX, with
punctuation) decodes the whole segment, and that is the turn's text. Partials are for showing,
never for answering.

The settings are FunASR's published ones: `chunk_size=[0, 10, 5]` (600 ms chunks, 300 ms of
look-ahead), `encoder_chunk_look_back=4`, `decoder_chunk_look_back=1`. The model is loaded once
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
CHUNK_SIZE = [0, 10, 5]  # in 60 ms frames: no look-back, 600 ms chunk, 300 ms look-ahead
CHUNK_SAMPLES = CHUNK_SIZE[1] * 960  # 600 ms at 16 kHz
ENCODER_LOOK_BACK = 4
DECODER_LOOK_BACK = 1


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
        while len(self.pending) >= CHUNK_SAMPLES or (final and len(self.pending)):
            take = CHUNK_SAMPLES if len(self.pending) >= CHUNK_SAMPLES else len(self.pending)
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
    chunk_samples = CHUNK_SAMPLES

    def __init__(self, model: str = DEFAULT_MODEL, ncpu: int = 1) -> None:
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
        noise = np.random.default_rng(0).standard_normal(2 * CHUNK_SAMPLES).astype(np.float32) * 0.01
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
                    chunk_size=CHUNK_SIZE,
                    encoder_chunk_look_back=ENCODER_LOOK_BACK,
                    decoder_chunk_look_back=DECODER_LOOK_BACK,
                    disable_pbar=True,
                )
        except Exception as exc:
            raise AsrError(f"the streaming model failed on a chunk: {type(exc).__name__}: {exc}") from exc
        self.last_chunk_s = time.perf_counter() - start
        return str(results[0].get("text", "")) if results else ""
