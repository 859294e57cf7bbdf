"""Qwen3-ASR (0.6B) in-process through the official `qwen-asr` package: batched, with a language
hint, hotwords as context, and word timestamps from Qwen3-ForcedAligner when one is configured.

Why `qwen_asr.Qwen3ASRModel` and not FunASR 1.4.16's `Qwen3ASR` wrapper: the wrapper is a thin
shell around the same `Qwen3ASRModel` (funasr/models/qwen3_asr/model.py imports it), so it adds
FunASR's 11-13 s import, its hub resolution (which voiceloop must keep from downloading) and
its per-call kwargs state, and it reports aligner timestamps as int(seconds) labelled
milliseconds. Calling qwen-asr directly gives batching (`max_inference_batch_size`),
per-clip `context` and `language`, and the aligner's float seconds with nothing in between.

Things qwen-asr does that this module works around:
- It rejects a bare ndarray (audio is passed as `(array, 16000)`), takes full language names
  (voiceloop's "zh"/"en" are mapped, see qwen3_languages) and returns them ("Chinese").
- Importing it costs tens of seconds (transformers, librosa, nagisa): it is imported after
  the model paths are checked, so a missing model fails in milliseconds.
- Generation stops at EOS or `max_new_tokens`; long files are split by qwen-asr itself
  (20 min pieces, 3 min with the aligner).
- On a CPU it is about ten times slower than Paraformer (~0.25 s per generated token for the
  real 0.6 B shape at 2 threads): `device = "auto"` says so once when no GPU is there.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceloop.asr import models, qwen3_languages
from voiceloop.asr.base import AsrError, Transcription
from voiceloop.audio.frames import SAMPLE_RATE

if TYPE_CHECKING:
    from voiceloop.asr.options import Qwen3Options
    from voiceloop.config.settings import AsrSettings

DEFAULT_MODEL = "qwen3-asr"
MIN_AUDIO_S = 0.05  # nobody spoke in less; shorter clips are not sent to the model
PAD_TO_S = 0.5  # qwen-asr pads its own short pieces to this; a short turn gets the same
CPU_WARNING = (
    "voiceloop: no CUDA GPU: Qwen3-ASR runs on the CPU, about 10x slower than Paraformer "
    "(set asr.name = 'paraformer', or asr.qwen3.device = 'cpu' to silence this)"
)
INSTALL_HINT = "install it with `pip install 'voiceloop[qwen3]'` (torch first: see scripts/setup.sh)"


@dataclass
class LoadedQwen3:
    """One Qwen3ASRModel and the lock that serialises its calls."""

    model: Any
    lock: threading.Lock
    load_s: float


_LOADED: dict[tuple[Any, ...], LoadedQwen3] = {}
_LOAD_LOCK = threading.Lock()


def resolve_dir(name: str, role: str) -> Path:
    """A complete local transformers directory for `name` (an alias, an id in the ModelScope
    cache, or a directory), or an error naming the download command, without importing torch."""
    path = Path(name).expanduser()
    if path.is_dir():
        missing = models.missing_transformers_files(path)
        if missing:
            raise AsrError(f"{role} directory {path} is not a Qwen3-ASR model: missing {', '.join(missing)}")
        return path.resolve()
    return models.resolve(name, role)


def torch_dtype(dtype: str, device: str) -> Any:
    """`auto` → bf16 on CUDA (fp16 where the GPU lacks bf16), fp32 on the CPU."""
    import torch

    if dtype == "auto":
        if not device.startswith("cuda"):
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]


def load(
    model_dir: Path, aligner_dir: Path | None, device: str, dtype: Any, batch_size: int, max_new_tokens: int
) -> LoadedQwen3:
    """The process's Qwen3ASRModel for these settings, loaded on first use."""
    key = (str(model_dir), str(aligner_dir), device, str(dtype), batch_size, max_new_tokens)
    with _LOAD_LOCK:
        loaded = _LOADED.get(key)
        if loaded is not None:
            return loaded
        try:
            from qwen_asr import Qwen3ASRModel
        except ImportError as exc:
            raise AsrError(
                f"the qwen3 recogniser needs qwen-asr ({exc.name or exc}); {INSTALL_HINT}"
            ) from None
        start = time.perf_counter()
        try:
            model = Qwen3ASRModel.from_pretrained(
                str(model_dir),
                dtype=dtype,
                device_map=device,
                max_inference_batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                forced_aligner=str(aligner_dir) if aligner_dir else None,
                forced_aligner_kwargs={"dtype": dtype, "device_map": device} if aligner_dir else None,
            )
        except Exception as exc:
            raise AsrError(f"qwen-asr could not load {model_dir}: {type(exc).__name__}: {exc}") from exc
        loaded = LoadedQwen3(model, threading.Lock(), time.perf_counter() - start)
        _LOADED[key] = loaded
        return loaded


def unload_all() -> None:
    """Drops every cached model (frees its memory once nothing else holds it)."""
    with _LOAD_LOCK:
        _LOADED.clear()


def context_for(hotwords: Sequence[str]) -> str:
    """Qwen3-ASR biases its vocabulary through `context`, free text that becomes the system
    prompt: the hotwords as a plain list is what its documentation shows."""
    return ", ".join(hotwords)


class Qwen3Recognizer:
    """`transcribe` blocks; the runtime calls it from a worker thread. `transcribe_batch` is the
    throughput path (`voiceloop transcribe`, the server's queue): one padded `generate` per
    `max_inference_batch_size` clips."""

    name = "qwen3"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        aligner: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        max_inference_batch_size: int = 8,
        max_new_tokens: int = 256,
        language: str | None = None,
        hotwords: Sequence[str] = (),
    ) -> None:
        # Paths and language first: mistakes fail in milliseconds, before the long import.
        self.model_dir = resolve_dir(model, "ASR model")
        self.aligner_dir = resolve_dir(aligner, "forced aligner") if aligner else None
        self.language = qwen3_languages.hint(language)
        from voiceloop.asr.funasr_model import pick_device  # torch only, no FunASR

        self.device = pick_device(device)
        if device.strip().lower() == "auto" and self.device == "cpu":
            print(CPU_WARNING, file=sys.stderr)
        self.dtype = torch_dtype(dtype, self.device)
        self.model_name = model
        self.hotwords = self.check_hotwords(hotwords)
        self._loaded = load(
            self.model_dir,
            self.aligner_dir,
            self.device,
            self.dtype,
            max_inference_batch_size,
            max_new_tokens,
        )
        dtype_name = str(self.dtype).removeprefix("torch.")
        self.description = f"qwen3 {model} on {self.device} ({dtype_name})" + (
            ", with forced aligner" if self.aligner_dir else ""
        )

    @property
    def model(self) -> Any:
        """The shared qwen_asr.Qwen3ASRModel (for benchmarks that call it directly)."""
        return self._loaded.model

    def check_hotwords(self, hotwords: Sequence[str] | None) -> list[str]:
        """The cleaned list. Any text can go in a context, so nothing is refused."""
        return [w.strip() for w in hotwords or () if w and w.strip()]

    def warm_up(self) -> None:
        """One inference on quiet noise: loads kernels (on CUDA, tunes them) before the first turn."""
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.01
        self.transcribe(noise, self.hotwords or None)

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        """`hotwords=None` uses the configured ones; `[]` means none for this call."""
        return self.transcribe_batch([audio], hotwords)[0]

    def transcribe_batch(
        self, audios: Sequence[np.ndarray], hotwords: list[str] | None = None
    ) -> list[Transcription]:
        """Every clip's result in order; elapsed time is shared out by each clip's length."""
        clips = [_as_input(a) for a in audios]
        durations = [len(c) / SAMPLE_RATE for c in clips]
        live = [i for i, d in enumerate(durations) if d >= MIN_AUDIO_S]
        words = self.hotwords if hotwords is None else self.check_hotwords(hotwords)
        start = time.perf_counter()
        results = (
            self._call([_padded(clips[i]) for i in live], context_for(words), sum(durations)) if live else []
        )
        elapsed = time.perf_counter() - start
        total = sum(durations[i] for i in live) or 1.0
        by_index = dict(zip(live, results, strict=True))
        out = []
        for i, audio_s in enumerate(durations):
            result = by_index.get(i)
            if result is None:
                out.append(Transcription("", audio_s, 0.0, language=_code(self.language)))
                continue
            out.append(
                Transcription(
                    result.text.strip(),
                    audio_s,
                    elapsed * audio_s / total,
                    _timestamps(result.time_stamps, audio_s),
                    language=qwen3_languages.codes(result.language or ""),
                )
            )
        return out

    def _call(self, clips: list[np.ndarray], context: str, audio_s: float) -> list[Any]:
        try:
            with self._loaded.lock:
                return list(
                    self._loaded.model.transcribe(
                        audio=[(clip, SAMPLE_RATE) for clip in clips],
                        context=context,
                        language=self.language,
                        return_time_stamps=self.aligner_dir is not None,
                    )
                )
        except Exception as exc:
            hint = ""
            if "out of memory" in str(exc).lower():
                hint = "; lower asr.qwen3.max_inference_batch_size or transcribe fewer files at once"
            raise AsrError(
                f"Qwen3-ASR failed on {len(clips)} clip(s), {audio_s:.1f} s of audio: "
                f"{type(exc).__name__}: {exc}{hint}"
            ) from exc

    def close(self) -> None:
        """The model stays loaded for the process (see unload_all): a server or a second
        recogniser with the same settings shares it."""


def _as_input(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise AsrError(f"expected mono 16 kHz audio (1-D), got shape {audio.shape}")
    return np.ascontiguousarray(audio)


def _padded(clip: np.ndarray) -> np.ndarray:
    short = int(PAD_TO_S * SAMPLE_RATE) - len(clip)
    return np.pad(clip, (0, short)) if short > 0 else clip


def _code(name: str | None) -> str:
    return qwen3_languages.codes(name) if name else ""


def _timestamps(aligned: Any, audio_s: float) -> list[tuple[str, float, float]]:
    """The aligner's words (CJK characters, other languages' words) in seconds, kept inside the
    clip (the padding of a short clip is not speech)."""
    if not aligned:
        return []
    return [
        (str(item.text), min(float(item.start_time), audio_s), min(float(item.end_time), audio_s))
        for item in aligned
    ]


def create(options: Qwen3Options, asr: AsrSettings, **kwargs: Any) -> Qwen3Recognizer:
    """From `[asr.qwen3]`, with the shared `[asr] language` and `hotwords`; keyword arguments override."""
    settings: dict[str, Any] = {
        "model": options.model or DEFAULT_MODEL,
        "aligner": options.aligner,
        "device": options.device,
        "dtype": options.dtype,
        "max_inference_batch_size": options.max_inference_batch_size,
        "max_new_tokens": options.max_new_tokens,
        "language": options.language if options.language is not None else asr.language,
        "hotwords": list(asr.hotwords),
    }
    return Qwen3Recognizer(**{**settings, **kwargs})
