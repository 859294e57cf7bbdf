"""Paraformer on FunASR's ONNX runtime (`funasr-onnx`): the CPU path, int8 by default.

On a CPU, FunASR's PyTorch Paraformer runs at a real-time factor of 0.10-0.20 on two threads;
the same model exported to ONNX and quantised to int8 runs at about 0.04 with the same error
rate (scripts/bench_asr.py measures both here). This adapter loads `funasr_onnx.Paraformer` or
`SeacoParaformer` (hotwords) and, optionally, `CT_Transformer` for punctuation, from a model
directory that `voiceloop models export NAME [--int8]` has filled.

Things funasr-onnx does that this module works around:
- Its classes export the model on first use when the ONNX file is missing (importing funasr and
  asking ModelScope for updates), and download when the directory is missing: both are checked
  first here, and a missing file is an error naming `voiceloop models export`.
- Its wheel pins `numpy<=1.26.4` for the sake of `Fsmn_vad` alone: it is installed `--no-deps`
  (scripts/setup.sh) and the loop's own VAD does the segmenting, so no fsmn-vad here.
- SeACo hotwords are one space-separated string, mapped character by character, padded to 10;
  a character outside the vocabulary silently becomes id 8403 and a longer hotword breaks the
  padding: both are refused here instead, as is a phrase with a space (it would be split).
- Its sessions let onnxruntime's idle worker threads spin while they wait for work (the
  default): on a CPU shared with the loop's own threads (audio, VAD, the streaming model) that
  spinning takes the cores the work needs. On this 2-core machine under load, 2 threads, int8,
  10 s: wall RTF 0.27 spinning vs 0.17 not, CPU time 0.20 vs 0.12 (scripts/bench_asr_cpu.py).
  Sessions are built with spinning off (`sessions_without_spinning`).
- Results come in two shapes (with timestamps for SeACo, as a (text, tokens) tuple otherwise),
  and an ONNX runtime error is logged and swallowed (an empty result): both become one
  Transcription.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceloop.asr import models
from voiceloop.asr.base import AsrError, AsrInputError, Transcription
from voiceloop.asr.funasr_model import default_ncpu
from voiceloop.asr.onnx_export import CONTEXTUAL_CLASSES, require_onnx
from voiceloop.asr.paraformer import DEFAULT_MODEL, MIN_AUDIO_S, join_units, usable_hotwords
from voiceloop.audio.frames import SAMPLE_RATE

if TYPE_CHECKING:
    from voiceloop.asr.options import ParaformerOnnxOptions
    from voiceloop.config.settings import AsrSettings

MAX_HOTWORD_CHARS = 10  # funasr-onnx pads each hotword's ids to 10
_SPECIAL_TOKENS = frozenset({"<s>", "</s>", "<unk>", "<blank>"})

_SESSIONS: dict[tuple[Any, ...], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def import_funasr_onnx() -> Any:
    try:
        import funasr_onnx
    except ImportError as exc:
        raise AsrError(
            f"asr.name = 'paraformer-onnx' needs funasr-onnx ({exc.name or exc}); install it with "
            "`pip install 'voiceloop[paraformer-onnx]' && pip install --no-deps funasr-onnx==0.4.3` "
            "(see scripts/setup.sh: its numpy pin must not be followed)"
        ) from None
    return funasr_onnx


@contextlib.contextmanager
def sessions_without_spinning() -> Iterator[None]:
    """funasr-onnx builds its `SessionOptions` itself (funasr_onnx/utils/utils.py) and takes no
    options: while this is active, the ones it builds have intra-op spinning off."""
    from funasr_onnx.utils import utils as ort_utils

    original = ort_utils.SessionOptions

    def without_spinning() -> Any:
        options = original()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    ort_utils.SessionOptions = without_spinning
    try:
        yield
    finally:
        ort_utils.SessionOptions = original


def _session(kind: str, directory: Path, quantize: bool, threads: int) -> Any:
    """One funasr-onnx model per (class, dir, int8, threads) per process: sessions are
    thread-safe to run, and a second recogniser with the same settings need not reload."""
    key = (kind, str(directory), quantize, threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            cls = getattr(import_funasr_onnx(), kind)
            try:
                with sessions_without_spinning():
                    _SESSIONS[key] = cls(str(directory), quantize=quantize, intra_op_num_threads=threads)
            except Exception as exc:
                raise AsrError(
                    f"funasr-onnx could not load {directory}: {type(exc).__name__}: {exc}"
                ) from exc
        return _SESSIONS[key]


def to_transcription(result: dict[str, Any] | None, audio_s: float, elapsed_s: float) -> Transcription:
    """One funasr-onnx result (either of its shapes) as a Transcription without punctuation."""
    if not result:
        return Transcription("", audio_s, elapsed_s)
    preds = result.get("preds")
    spans: list[list[int]]
    if isinstance(preds, tuple):  # no timestamps: (text, tokens)
        tokens, spans = list(preds[1]), []
    else:
        tokens, spans = (
            list(result.get("raw_tokens") or str(preds or "").split()),
            result.get("timestamp") or [],
        )
    units = [t for t in tokens if t not in _SPECIAL_TOKENS and not t.startswith("<")]
    timestamps: list[tuple[str, float, float]] = []
    if spans and len(spans) == len(units):
        timestamps = [(u, s / 1000, e / 1000) for u, (s, e) in zip(units, spans, strict=True)]
    return Transcription(join_units(units), audio_s, elapsed_s, timestamps)


class ParaformerOnnxRecognizer:
    """(SeACo-)Paraformer through onnxruntime; blocking, called from a worker thread."""

    name = "paraformer-onnx"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        punc_model: str | None = None,
        quantize: bool = True,
        threads: int | None = None,
        hotwords: Sequence[str] = (),
    ) -> None:
        wanted = [(model, "ASR model")] + ([(punc_model, "punctuation model")] if punc_model else [])
        dirs = models.resolve_all(wanted)
        self.model_dir = dirs[0]
        self.punc_dir = dirs[1] if punc_model else None
        self.model_class = require_onnx(model, self.model_dir, quantize)
        if punc_model and self.punc_dir is not None:
            require_onnx(punc_model, self.punc_dir, quantize, "punctuation model")
        self.model_name = model
        self.quantize = quantize
        self.threads = threads or default_ncpu()
        self.supports_hotwords = self.model_class in CONTEXTUAL_CLASSES
        kind = "SeacoParaformer" if self.supports_hotwords else "Paraformer"
        self.model = _session(kind, self.model_dir, quantize, self.threads)
        self.punc = (
            _session("CT_Transformer", self.punc_dir, quantize, self.threads) if self.punc_dir else None
        )
        self._vocabulary = set(json.loads((self.model_dir / "tokens.json").read_text(encoding="utf-8")))
        self._lock = threading.Lock()
        self.hotwords = self.check_hotwords(hotwords)
        precision = "int8" if quantize else "fp32"
        self.description = f"paraformer-onnx {model} ({precision}, {self.threads} threads)"

    def check_hotwords(self, hotwords: Sequence[str] | None) -> list[str]:
        """The cleaned list; raises if funasr-onnx would mangle or ignore them."""
        words = usable_hotwords(hotwords, self.supports_hotwords, self.model_name, self.model_class)
        spaced = [w for w in words if " " in w]
        if spaced:
            raise AsrInputError(
                f"paraformer-onnx takes hotwords without spaces (funasr-onnx splits on them): {', '.join(spaced)}"
            )
        unknown = [w for w in words if any(ch not in self._vocabulary for ch in w)]
        if unknown:
            raise AsrInputError(
                f"hotword(s) {', '.join(unknown)} contain characters missing from the model's "
                "vocabulary: the model would see <unk> and ignore them"
            )
        too_long = [w for w in words if len(w) > MAX_HOTWORD_CHARS]
        if too_long:
            raise AsrInputError(
                f"hotwords longer than {MAX_HOTWORD_CHARS} characters do not fit funasr-onnx's "
                f"hotword input: {', '.join(too_long)}"
            )
        return words

    def warm_up(self) -> None:
        """One inference on quiet noise: onnxruntime allocates and optimises on its first run."""
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.01
        self.transcribe(noise)

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        """`hotwords=None` uses the configured ones; `[]` means none for this call."""
        start = time.perf_counter()
        raw = self.recognize_raw(audio, hotwords)
        text = self._guarded(lambda: self.punctuate(raw.text), raw.audio_s)
        return Transcription(text, raw.audio_s, time.perf_counter() - start, raw.timestamps)

    def recognize_raw(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        """The words without punctuation (2pass decodes pieces, then punctuates their join)."""
        audio = np.ascontiguousarray(np.asarray(audio, dtype=np.float32))
        if audio.ndim != 1:
            raise AsrError(f"expected mono 16 kHz audio (1-D), got shape {audio.shape}")
        words = self.hotwords if hotwords is None else self.check_hotwords(hotwords)
        audio_s = len(audio) / SAMPLE_RATE
        start = time.perf_counter()
        if audio_s < MIN_AUDIO_S:
            return Transcription("", audio_s, 0.0)

        def run() -> list[dict[str, Any]]:
            if self.supports_hotwords:
                return list(self.model(audio, " ".join(words)))
            return list(self.model(audio))

        results = self._guarded(run, audio_s)
        return to_transcription(results[0] if results else None, audio_s, time.perf_counter() - start)

    def _guarded(self, call: Any, audio_s: float) -> Any:
        """One call into funasr-onnx at a time, its failures as AsrError."""
        try:
            with self._lock:
                return call()
        except AsrError:
            raise
        except Exception as exc:
            raise AsrError(
                f"funasr-onnx failed on {audio_s:.1f} s of audio: {type(exc).__name__}: {exc}"
            ) from exc

    def punctuate(self, text: str) -> str:
        """CT-Transformer's punctuation, when configured; its special tokens never reach the text."""
        if self.punc is None or not text.strip():
            return text
        # Class 0 of the punctuation list is "<unk>", which the model should never predict.
        return str(self.punc(text)[0]).replace("<unk>", "")

    def close(self) -> None:
        """Sessions stay loaded for the process (another recogniser may share them)."""


def create(options: ParaformerOnnxOptions, asr: AsrSettings, **kwargs: Any) -> ParaformerOnnxRecognizer:
    """From `[asr.paraformer-onnx]`, with the shared `[asr] hotwords`; keyword arguments override."""
    settings: dict[str, Any] = {
        "model": options.model or DEFAULT_MODEL,
        "punc_model": options.punc_model,
        "quantize": options.quantize,
        "threads": options.threads,
        "hotwords": list(asr.hotwords),
    }
    return ParaformerOnnxRecognizer(**{**settings, **kwargs})
