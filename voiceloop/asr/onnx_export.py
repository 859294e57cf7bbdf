"""Exporting a FunASR model directory to ONNX (`voiceloop models export NAME [--int8]`), and
checking that a directory holds the ONNX files a run needs.

A run never exports: funasr-onnx's classes would do it silently on first use (importing funasr,
12 s, and asking ModelScope for updates), so `paraformer_onnx` checks the files first and names
this command when one is missing.

The export itself is FunASR's own (`AutoModel.export(type="onnx", quantize=...)`): it writes
`model.onnx` (and `model_quant.onnx` with int8, `model_eb*.onnx` for SeACo's hotword embedder,
`decoder.onnx` for the streaming model) next to `model.pt`. On torch >= 2.9 `torch.onnx.export`
defaults to the dynamo exporter, which cannot trace the CIF predictor's data-dependent branch
(funasr/models/paraformer/cif_predictor.py); FunASR calls `torch.onnx.export` without saying
which exporter, so the call is made with `dynamo=False` (the TorchScript-based exporter that
FunASR's export code was written for) for the duration of the export. SeACo-Paraformer's CIF
predictor is exported without its frame-by-frame loops (`voiceloop.asr.onnx_cif`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from voiceloop.asr import models
from voiceloop.asr.base import AsrError
from voiceloop.asr.funasr_model import default_ncpu, load_model
from voiceloop.asr.onnx_cif import loop_free_cif

# FunASR model classes whose ONNX export adds a hotword embedder (model_eb.onnx).
CONTEXTUAL_CLASSES = frozenset({"SeacoParaformer", "ContextualParaformer"})
# The streaming Paraformer's export splits it: encoder + CIF predictor, and decoder.onnx.
STREAMING_CLASS = "ParaformerStreaming"
_EXPORT_LOCK = threading.Lock()


class OnnxModelMissing(AsrError):
    """A model directory lacks its exported ONNX files; the message names the export command."""


def onnx_files(model_class: str, quantize: bool) -> list[str]:
    """The files funasr-onnx loads for a model of `model_class`."""
    suffix = "_quant" if quantize else ""
    files = [f"model{suffix}.onnx"]
    if model_class in CONTEXTUAL_CLASSES:
        files.append(f"model_eb{suffix}.onnx")
    if model_class == STREAMING_CLASS:
        files.append(f"decoder{suffix}.onnx")
    return files


def model_class(directory: Path) -> str:
    """The `model:` of a FunASR config.yaml (read with PyYAML: no funasr import)."""
    import yaml

    try:
        config = yaml.safe_load((directory / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AsrError(f"cannot read {directory / 'config.yaml'}: {exc}") from None
    return str(config.get("model", ""))


def require_onnx(name: str, directory: Path, quantize: bool, role: str = "ASR model") -> str:
    """The directory's model class; raises OnnxModelMissing (naming the command) if its ONNX
    files for `quantize` are not there."""
    found_class = model_class(directory)
    missing = [f for f in onnx_files(found_class, quantize) if not (directory / f).is_file()]
    if missing:
        flag = " --int8" if quantize else ""
        raise OnnxModelMissing(
            f"{role} {name} has no {', '.join(missing)} in {directory}: run "
            f"`voiceloop models export {name}{flag}` once (needs funasr, onnx, onnxruntime)"
        )
    return found_class


@contextlib.contextmanager
def legacy_onnx_exporter() -> Iterator[None]:
    """`torch.onnx.export` defaults to `dynamo=False` while FunASR exports (see the module
    docstring); an explicit `dynamo=` from the caller still wins. Restored on the way out."""
    import torch.onnx

    original: Callable[..., Any] = torch.onnx.export

    def export(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("dynamo", False)
        return original(*args, **kwargs)

    torch.onnx.export = export
    try:
        yield
    finally:
        torch.onnx.export = original


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """FunASR prints each step to stdout, and it and onnxruntime's quantiser log every step and
    tensor (and an advice to pre-process) through the root logger, which AutoModel configures:
    keep them off the console; an export that fails raises instead."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def export(name: str, quantize: bool, ncpu: int | None = None, loop_free: bool = True) -> list[Path]:
    """Exports model `name` (an id in the cache or a directory) next to its weights; returns
    the ONNX files a run with this `quantize` setting will load. `loop_free=False` keeps
    FunASR's looped CIF (what its export writes by itself; to compare against)."""
    directory = models.resolve(name)
    with _quiet_export():
        loaded = load_model(directory, None, None, "cpu", ncpu or default_ncpu())
    cif = loop_free_cif() if loop_free else contextlib.nullcontext()
    with _EXPORT_LOCK, loaded.lock, legacy_onnx_exporter(), cif, _quiet_export():
        try:
            loaded.automodel.export(type="onnx", quantize=quantize, device="cpu")
        except Exception as exc:
            raise AsrError(f"exporting {name} to ONNX failed: {type(exc).__name__}: {exc}") from exc
    wanted = [directory / f for f in onnx_files(loaded.model_class, quantize)]
    missing = [str(p) for p in wanted if not p.is_file()]
    if missing:
        raise AsrError(f"FunASR's export of {name} finished without writing {', '.join(missing)}")
    return wanted
