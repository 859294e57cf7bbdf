"""Where FunASR models come from: a local directory, or a model id in ModelScope's cache.

FunASR resolves a model id by calling the hub, and offline that fails only after 20-40 s with
"model 'paraformer-zh' is not registered" (a typo'd local path fails the same way). So
voiceloop resolves every model to an existing local directory *before* FunASR sees it, without
importing funasr or modelscope (each costs seconds), and says exactly what is missing and how
to get it. Downloading is a separate, explicit step (`voiceloop models download NAME`) that
writes into ModelScope's own cache, where FunASR would look too.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceloop.asr.base import AsrError

# FunASR's short names (funasr/download/name_maps_from_hub.py, `name_maps_ms`), copied so that
# resolving one does not import funasr (11-13 s).
ALIASES: dict[str, str] = {
    "paraformer-zh": "iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
    "paraformer": "iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
    "paraformer-en": "iic/speech_paraformer-large-vad-punc_asr_nat-en-16k-common-vocab10020",
    "paraformer-zh-streaming": "iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-online",
    "fsmn-vad": "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch",
    "ct-punc": "iic/punc_ct-transformer_cn-en-common-vocab471067-large",
    "ct-punc-c": "iic/punc_ct-transformer_zh-cn-common-vocab272727-pytorch",
    # Transformers-layout models (config.json + safetensors), also served by ModelScope.
    "qwen3-asr": "Qwen/Qwen3-ASR-0.6B",
    "qwen3-aligner": "Qwen/Qwen3-ForcedAligner-0.6B",
}
DESCRIPTIONS: dict[str, str] = {
    "paraformer-zh": "SeACo-Paraformer-large, Mandarin+English, hotwords (the default)",
    "paraformer": "Paraformer-large, Mandarin, no hotwords",
    "paraformer-en": "Paraformer-large, English",
    "paraformer-zh-streaming": "Paraformer-large online (streaming) model",
    "fsmn-vad": "FSMN voice activity detection (splits long audio)",
    "ct-punc": "CT-Transformer punctuation, Chinese+English (large)",
    "ct-punc-c": "CT-Transformer punctuation, Chinese",
    "qwen3-asr": "Qwen3-ASR-0.6B, 30 languages with detection, context biasing (asr.name = qwen3)",
    "qwen3-aligner": "Qwen3-ForcedAligner-0.6B: word timestamps for qwen3 (asr.qwen3.aligner)",
}
_MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HUB_HOST = "www.modelscope.cn"
WEIGHT_FILES = ("model.pt", "model.pb", "model.safetensors", "pytorch_model.bin")


class ModelNotAvailable(AsrError):
    """The model is neither a directory here nor in the local cache; the message says how to get it."""


@dataclass(frozen=True)
class ModelRef:
    """What the user wrote (`name`), the hub id it stands for (None for a directory)."""

    name: str
    model_id: str | None

    @property
    def is_dir(self) -> bool:
        return self.model_id is None


def parse(name: str) -> ModelRef:
    """An alias, a hub id (`owner/name`) or a local directory; never touches the network."""
    name = name.strip()
    if not name:
        raise AsrError(
            "no ASR model given (set asr.paraformer.model to a model id such as 'paraformer-zh' or a directory)"
        )
    path = Path(name).expanduser()
    if name in ALIASES:
        return ModelRef(name, ALIASES[name])
    if path.exists():
        return ModelRef(name, None)
    if _MODEL_ID.match(name):  # `owner/name`: a hub id (a relative dir would have existed)
        return ModelRef(name, name)
    raise AsrError(
        f"model directory not found: {name} (it is neither an existing directory nor a model id; "
        f"ids look like 'paraformer-zh' or 'iic/speech_seaco_paraformer_large_...')"
    )


def cache_root() -> Path:
    """ModelScope's cache: $MODELSCOPE_CACHE, else ~/.cache/modelscope."""
    env = os.environ.get("MODELSCOPE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modelscope"


def _candidates(model_id: str) -> Iterator[Path]:
    """Every place a ModelScope SDK has stored a model, newest layout first.

    modelscope >= 1.38 (modelscope_hub): {cache}/models/{owner}--{name}/snapshots/{rev}/;
    older SDKs: {cache}/hub/models/{owner}/{name with '.' -> '___'}, {cache}/models/{owner}/{name},
    and, older still, {cache}/hub/{owner}/{name}. Both ~/.cache/modelscope and .../hub are
    probed because the default root moved between versions.
    """
    owner, name = model_id.split("/", 1)
    safe = name.replace(".", "___")
    root = cache_root()
    bases = [root] if root.name == "hub" else [root, root / "hub"]
    for base in bases:
        snapshots = base / "models" / f"{owner}--{name}" / "snapshots"
        for revision in ("master", "main"):
            yield snapshots / revision
        if snapshots.is_dir():
            yield from sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        for sub in ("models", ""):
            for folder in dict.fromkeys((safe, name)):
                yield (base / sub / owner / folder) if sub else (base / owner / folder)


def missing_files(directory: Path) -> list[str]:
    """What a FunASR model directory lacks: a config and the weights it names.

    A `configuration.json` without its weights silently yields a random model in FunASR, so
    the weights are checked here rather than trusted.
    """
    has_yaml = (directory / "config.yaml").is_file()
    if not has_yaml and (directory / "config.json").is_file():
        return missing_transformers_files(directory)
    missing = []
    conf_json = directory / "configuration.json"
    if not has_yaml and not conf_json.is_file():
        missing.append("config.yaml")
    weights: list[str] = []
    if conf_json.is_file():
        try:
            metas = json.loads(conf_json.read_text(encoding="utf-8")).get("file_path_metas", {})
            if isinstance(metas, dict) and isinstance(metas.get("init_param"), str):
                weights.append(metas["init_param"])
        except (OSError, ValueError):
            pass
    if weights:
        missing.extend(w for w in weights if not (directory / w).is_file())
    elif not any((directory / w).is_file() for w in WEIGHT_FILES):
        missing.append("model.pt")
    return missing


def missing_transformers_files(directory: Path) -> list[str]:
    """What a Hugging Face transformers directory (Qwen3-ASR's layout) lacks: the config, the
    processor's feature extractor and tokenizer, and every weight shard its index names."""
    missing = [
        name
        for name in ("config.json", "preprocessor_config.json", "tokenizer_config.json")
        if not (directory / name).is_file()
    ]
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
        except (OSError, ValueError):
            shards = []
        missing.extend(shard for shard in shards if not (directory / shard).is_file())
    elif not any((directory / w).is_file() for w in ("model.safetensors", "pytorch_model.bin")):
        missing.append("model.safetensors")
    return missing


def find_cached(model_id: str) -> Path | None:
    """The complete cached copy of `model_id`, or None; an incomplete one raises."""
    incomplete: tuple[Path, list[str]] | None = None
    for candidate in _candidates(model_id):
        if not candidate.is_dir() or not any(candidate.iterdir()):
            continue
        missing = missing_files(candidate)
        if not missing:
            return candidate
        incomplete = incomplete or (candidate, missing)
    if incomplete is not None:
        where, missing = incomplete
        raise ModelNotAvailable(
            f"the cached copy of '{model_id}' in {where} is incomplete (missing {', '.join(missing)}); "
            f"download it again: voiceloop models download {model_id}"
        )
    return None


def resolve(name: str, role: str = "ASR model") -> Path:
    """An existing, complete local directory for `name`, or a ModelNotAvailable naming the fix."""
    return resolve_all([(name, role)])[0]


def resolve_all(wanted: list[tuple[str, str]]) -> list[Path]:
    """Resolves (name, role) pairs; every model missing from the cache is named in one error
    with one download command, so a fresh machine needs one round trip, not three."""
    found: list[Path] = []
    missing: list[tuple[str, str, ModelRef]] = []
    for name, role in wanted:
        ref = parse(name)
        if ref.is_dir:
            found.append(_local_dir(name, role))
            continue
        assert ref.model_id is not None
        cached = find_cached(ref.model_id)
        if cached is None:
            missing.append((name, role, ref))
        else:
            found.append(cached)
    if missing:
        names = " ".join(name for name, _, _ in missing)
        shown = [
            f"{role} '{name}'" + ("" if name == ref.model_id else f" ({ref.model_id})")
            for name, role, ref in missing
        ]
        verb = "is" if len(shown) == 1 else "are"
        raise ModelNotAvailable(
            f"{', '.join(name for name, _, _ in missing)} not downloaded: run "
            f"`voiceloop models download {names}` on a machine with internet. "
            f"{' and '.join(shown)} {verb} not in the local model cache ({cache_root()}); voiceloop "
            "never downloads during a run (or give a model directory instead of the id)"
        )
    return found


def _local_dir(name: str, role: str) -> Path:
    directory = Path(name).expanduser()
    if not directory.is_dir():
        raise AsrError(f"{role} path is not a directory: {directory}")
    missing = missing_files(directory)
    if missing:
        raise AsrError(f"{role} directory {directory} is not a FunASR model: missing {', '.join(missing)}")
    return directory.resolve()


# -- downloading --------------------------------------------------------------------------------


def hub_reachable(host: str = HUB_HOST, timeout_s: float = 5.0) -> str | None:
    """None if the hub answers a TCP connect; else why not. Saves ModelScope's ~10 s of retries."""
    host = os.environ.get("MODELSCOPE_DOMAIN", host).removeprefix("https://").removeprefix("http://")
    host = host.split("/", 1)[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"cannot reach {host}: {exc.strerror or exc}"


ProgressFactory = Callable[[str, int], Any]  # (file name, size) -> object with update(n), end()


def download(name: str, revision: str | None = None, progress: ProgressFactory | None = None) -> Path:
    """Fetches a model into ModelScope's cache (where FunASR and `resolve` look) and checks it.

    `progress(file, size)` is called once per file and must return an object with `update(n)`
    and `end()` (ModelScope's ProgressCallback protocol).
    """
    ref = parse(name)
    if ref.is_dir:
        raise AsrError(f"{name} is a local directory; only model ids can be downloaded")
    assert ref.model_id is not None
    problem = hub_reachable()
    if problem is not None:
        raise AsrError(f"cannot download {ref.model_id}: {problem} (no internet here?)")
    from modelscope.hub.snapshot_download import snapshot_download

    callbacks = None
    if progress is not None:
        from modelscope.hub.callback import ProgressCallback

        make_bar = progress

        class _Callback(ProgressCallback):  # type: ignore[misc, valid-type]
            def __init__(self, filename: str, file_size: int) -> None:
                super().__init__(filename, file_size)
                self._bar = make_bar(filename, file_size)

            def update(self, size: int) -> None:
                self._bar.update(size)

            def end(self) -> None:
                self._bar.end()

        callbacks = [_Callback]
    try:
        path = Path(snapshot_download(ref.model_id, revision=revision, progress_callbacks=callbacks))
    except Exception as exc:  # the hub's errors are many and change between versions
        raise AsrError(f"downloading {ref.model_id} failed: {type(exc).__name__}: {exc}") from None
    missing = missing_files(path)
    if missing:
        raise AsrError(f"downloaded {ref.model_id} to {path} but it lacks {', '.join(missing)}")
    return path


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
