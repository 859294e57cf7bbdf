"""numba's njit for the echo canceller's per-frame kernels: compiled eagerly, cached on disk.

Compiled for explicit signatures when a kernel module is first imported, never on the audio
thread, and cached (numba's `cache=True`: next to the package, or under NUMBA_CACHE_DIR, or
the user's cache directory when the package is not writable, or a private directory in the
temporary directory), so only the first start compiles (5-15 s on this loaded 2-core machine;
`scripts/setup.sh` does it at install) and later ones load the machine code. Where nothing is
writable at all it compiles at every start, quietly.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from typing import Any

import numba
from numba.core import config as numba_config_module

# numba's settings: CACHE_DIR is read from the environment at its import (typed loosely for mypy).
_numba_config: Any = numba_config_module


def compiled(signature: str) -> Callable[[Callable[..., Any]], Any]:
    """numba.njit for `signature`, compiled now, cached on disk where a cache can be written.

    numba raises at decoration when no cache directory is writable (the package installed
    read-only, no writable home, no NUMBA_CACHE_DIR): then the cache goes to the temporary
    directory (measured: compiling costs 5-15 s on this machine, loading ~0.1 s), and where
    even that fails it compiles without a cache."""

    def decorate(function: Callable[..., Any]) -> Any:
        try:
            return numba.njit(signature, cache=True)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            pass
        private = _private_temporary_directory()
        if private and not _numba_config.CACHE_DIR:  # numba reads it when a function asks for a cache
            _numba_config.CACHE_DIR = private
            try:
                return numba.njit(signature, cache=True)(function)
            except RuntimeError:
                _numba_config.CACHE_DIR = ""
        return numba.njit(signature, cache=False)(function)

    return decorate


def _private_temporary_directory() -> str | None:
    """A cache directory in the temporary directory that only this user can write, or None.
    numba's cache index is a pickle: one that another user could plant would run their code."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return None
    try:
        path = os.path.join(tempfile.gettempdir(), f"voiceloop-numba-cache-{getuid()}")
        os.makedirs(path, mode=0o700, exist_ok=True)
        status = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    private = stat.S_ISDIR(status.st_mode) and status.st_uid == getuid() and not status.st_mode & 0o077
    return path if private else None
