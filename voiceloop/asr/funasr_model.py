"""FunASR's AutoModel, loaded once per process per (model, VAD, punctuation, device, threads):
imported lazily (11-13 s), never asked to look for updates, its banners and logging set-up kept
out of the host program's output."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceloop.asr.base import AsrError


@dataclass
class LoadedModel:
    """One AutoModel and the lock that serialises its calls (it is not reentrant)."""

    automodel: Any
    lock: threading.Lock
    model_class: str
    load_s: float


_LOADED: dict[tuple[Any, ...], LoadedModel] = {}
_LOAD_LOCK = threading.Lock()


@contextlib.contextmanager
def root_logging_kept() -> Iterator[None]:
    """FunASR logs through the logging module's functions, which call logging.basicConfig when
    the root logger has no handler (and AutoModel calls it itself): undo that on the way out,
    so the host program's logging stays as it was."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


@contextlib.contextmanager
def _quiet_funasr() -> Iterator[None]:
    """Also swallows the banners FunASR prints to stdout on import and construction (stdout is
    where `transcribe --format txt` writes results). Only for loading: swapping sys.stdout is
    process-wide, so it must not happen while the loop runs inference in a worker thread."""
    with root_logging_kept(), contextlib.redirect_stdout(io.StringIO()):
        yield


def import_automodel() -> Any:
    """`funasr.AutoModel`, imported once (11-13 s: transformers, modelscope, sklearn)."""
    try:
        with _quiet_funasr():
            from funasr import AutoModel
    except ImportError as exc:
        raise AsrError(
            f"the paraformer adapter needs FunASR ({exc.name or exc}); install it with "
            "`pip install 'voiceloop[paraformer]'` (torch first: see scripts/setup.sh)"
        ) from None
    return AutoModel


def default_ncpu() -> int:
    """All cores but one (the audio loop, VAD and echo canceller need one), at most 4.

    Under CPU contention the LSTM layers degrade badly with more threads than free cores.
    """
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def pick_device(requested: str) -> str:
    """`auto` → `cuda:0` when torch sees a GPU, else `cpu`; an unusable explicit choice fails."""
    import torch

    choice = requested.strip().lower()
    if choice == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if choice == "cpu":
        return "cpu"
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU-only build")
            raise AsrError(
                f"asr.device = '{requested}' but torch sees no CUDA device ({build}); use 'auto' or 'cpu'"
            )
        index = int(choice.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise AsrError(
                f"asr.device = '{requested}' but there are {torch.cuda.device_count()} CUDA device(s)"
            )
        return f"cuda:{index}"
    if choice == "mps":
        if not torch.backends.mps.is_available():
            raise AsrError("asr.device = 'mps' but torch sees no Apple GPU")
        return "mps"
    raise AsrError(f"unknown asr.device '{requested}': use auto, cpu, cuda or cuda:N")


def load_model(
    model_dir: Path, vad_dir: Path | None, punc_dir: Path | None, device: str, ncpu: int
) -> LoadedModel:
    """The process's AutoModel for these directories and device, built on first use."""
    key = (str(model_dir), str(vad_dir), str(punc_dir), device, ncpu)
    with _LOAD_LOCK:
        loaded = _LOADED.get(key)
        if loaded is not None:
            return loaded
        AutoModel = import_automodel()
        start = time.perf_counter()
        try:
            with _quiet_funasr():
                automodel = AutoModel(
                    model=str(model_dir),
                    vad_model=str(vad_dir) if vad_dir else None,
                    punc_model=str(punc_dir) if punc_dir else None,
                    device=device,
                    ncpu=ncpu,
                    disable_update=True,  # otherwise it asks PyPI for a newer funasr
                    disable_pbar=True,
                    log_level="ERROR",
                )
        except Exception as exc:
            raise AsrError(f"FunASR could not load {model_dir}: {type(exc).__name__}: {exc}") from exc
        loaded = LoadedModel(
            automodel, threading.Lock(), type(automodel.model).__name__, time.perf_counter() - start
        )
        _LOADED[key] = loaded
        return loaded


def unload_all() -> None:
    """Drops every cached AutoModel (frees its memory once nothing else holds it)."""
    with _LOAD_LOCK:
        _LOADED.clear()
