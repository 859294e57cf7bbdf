"""Where the Smart Turn model file lives, and fetching it once.

The model ships inside the `pipecat-ai` wheel on PyPI and nowhere else that needs no account
(its other homes are Hugging Face downloads). Installing pipecat-ai would pull 52 packages
(523 MB) for one 8.7 MB file, so `download` fetches that single wheel with `pip download
--no-deps` (pip's own index, proxy and certificate settings apply), extracts the one file,
checks it against a pinned sha256 and keeps the wheel's BSD-2-Clause licence beside it.
Runs never download: a missing file is a one-line error naming the command.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from voiceloop.turn.base import TurnError, TurnModelMissing

MODELS_DIR_ENV = "VOICELOOP_MODELS_DIR"
NAME = "smart-turn"
PIPECAT_VERSION = "1.14.0"
WHEEL_MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
FILE_NAME = "smart-turn-v3.2-cpu.onnx"
SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
SIZE = 8_679_182
LICENSE_NAME = "LICENSE"
DOWNLOAD_COMMAND = f"voiceloop models download {NAME}"
PIP_TIMEOUT_S = 300.0

# Used only if the wheel ever stops carrying its licence file: the notice the model ships under.
_BSD_2_CLAUSE = """BSD 2-Clause License

Copyright (c) 2024-2026, Daily (pipecat-ai)

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""


def models_root() -> Path:
    """$VOICELOOP_MODELS_DIR, else $XDG_CACHE_HOME/voiceloop, else ~/.cache/voiceloop."""
    if explicit := os.environ.get(MODELS_DIR_ENV):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "voiceloop"


def default_model_path() -> Path:
    return models_root() / NAME / FILE_NAME


def resolve(path: Path | str | None = None) -> Path:
    """The model file to load (`path`, else the cache's), or TurnModelMissing naming the fix.

    Only the size is checked here (a truncated copy would otherwise fail inside onnxruntime
    with a protobuf error); the sha256 is checked when the file is written."""
    target = Path(path).expanduser() if path is not None else default_model_path()
    if not target.is_file():
        raise TurnModelMissing(f"the Smart Turn model is not here ({target}): run `{DOWNLOAD_COMMAND}`")
    if path is None and target.stat().st_size != SIZE:
        raise TurnModelMissing(
            f"the Smart Turn model at {target} is damaged ({target.stat().st_size} bytes, "
            f"expected {SIZE}): run `{DOWNLOAD_COMMAND}` again"
        )
    return target


def is_present() -> bool:
    """Whether the cache holds the exact pinned file (hashes 8.7 MB: ~20 ms)."""
    target = default_model_path()
    return target.is_file() and target.stat().st_size == SIZE and _sha256_file(target) == SHA256


def download(say: Callable[[str], object] = lambda _: None, *, force: bool = False) -> Path:
    """Fetches the model into the cache unless the pinned file is already there; returns its path."""
    target = default_model_path()
    if not force and is_present():
        say(f"{NAME}: already cached at {target}")
        return target
    say(f"downloading {NAME}: pipecat-ai=={PIPECAT_VERSION} wheel (12 MB) from PyPI, for {FILE_NAME}")
    with tempfile.TemporaryDirectory(prefix="voiceloop-smart-turn-") as tmp:
        wheel = _pip_download(Path(tmp))
        model, licence = _extract(wheel)
    digest = hashlib.sha256(model).hexdigest()
    if digest != SHA256:
        raise TurnError(
            f"{FILE_NAME} from pipecat-ai=={PIPECAT_VERSION} has sha256 {digest}, expected {SHA256}; "
            "not installed (a tampered or changed package?)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(target.parent / LICENSE_NAME, _licence_notice(licence).encode())
    _write_atomically(target, model)
    say(f"{NAME}: {target} ({len(model) / 1e6:.1f} MB, sha256 verified; licence in {LICENSE_NAME})")
    return target


def _pip_download(into: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", f"pipecat-ai=={PIPECAT_VERSION}",
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--quiet", "--dest", str(into),
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise TurnError(
            f"pip download of pipecat-ai=={PIPECAT_VERSION} took over {PIP_TIMEOUT_S:.0f} s"
        ) from None
    wheels = sorted(into.glob("pipecat_ai-*.whl"))
    if result.returncode != 0 or not wheels:
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line or "No module" in line]
        why = (errors or result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1].strip()
        raise TurnError(f"cannot download pipecat-ai=={PIPECAT_VERSION} from PyPI (no internet here?): {why}")
    return wheels[0]


def _extract(wheel: Path) -> tuple[bytes, str | None]:
    """The model's bytes and the wheel's licence text (None if the wheel has none)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            model = archive.read(WHEEL_MEMBER)
            licences = [
                n for n in archive.namelist()
                if ".dist-info/" in n and Path(n).name.upper().startswith(("LICENSE", "LICENCE"))
            ]  # fmt: skip
            licence = archive.read(licences[0]).decode("utf-8", "replace") if licences else None
    except KeyError:
        raise TurnError(f"{wheel.name} does not contain {WHEEL_MEMBER}") from None
    except zipfile.BadZipFile as exc:
        raise TurnError(f"{wheel.name} is not a readable wheel: {exc}") from None
    return model, licence


def _licence_notice(licence: str | None) -> str:
    header = (
        f"{FILE_NAME}: Smart Turn v3.2 by Daily, extracted unchanged from the pipecat-ai "
        f"{PIPECAT_VERSION} wheel on PyPI ({WHEEL_MEMBER}, sha256 {SHA256}).\n"
        "It is distributed under the licence below.\n\n"
    )
    return header + (licence or _BSD_2_CLAUSE)


def _write_atomically(path: Path, data: bytes) -> None:
    """A half-written model must never look like a model: write beside it, then rename."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
