"""`GET /info`: what this server runs on, for the info panel and for whoever debugs it.

CUDA is asked of torch only when torch is already imported (Paraformer imports it): importing
torch just to say "no GPU" would cost seconds and hundreds of MB on a pocketsphinx server.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

from voiceloop.errors import one_line

PACKAGES = (
    "voiceloop",
    "funasr",
    "torch",
    "pocketsphinx",
    "onnxruntime",
    "edge-tts",
    "openai",
    "fastapi",
    "uvicorn",
    "numpy",
)


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def cuda() -> dict[str, Any]:
    torch = sys.modules.get("torch")
    if torch is None:
        return {"available": False, "checked": False, "devices": []}
    try:
        if not torch.cuda.is_available():
            return {"available": False, "checked": True, "devices": []}
        devices = []
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            devices.append(
                {
                    "index": index,
                    "name": torch.cuda.get_device_name(index),
                    "memory_total_mb": round(total / 2**20),
                    "memory_used_mb": round((total - free) / 2**20),
                    "memory_allocated_by_torch_mb": round(torch.cuda.memory_allocated(index) / 2**20),
                }
            )
        return {"available": True, "checked": True, "version": torch.version.cuda, "devices": devices}
    except Exception as exc:  # a broken driver must not break /info
        return {"available": False, "checked": True, "error": one_line(exc), "devices": []}


def _this_process() -> Any:
    import psutil

    return psutil.Process()


_PROCESS = _this_process()  # one object: its cpu_percent is measured since its previous call


def memory() -> dict[str, float]:
    import psutil

    system = psutil.virtual_memory()
    return {
        "process_rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        "system_total_mb": round(system.total / 2**20),
        "system_available_mb": round(system.available / 2**20),
    }


def cpu() -> dict[str, Any]:
    """Load now: the system's and this process's CPU use since the last call (the first call
    primes the counters: `create_app` makes it, so the first /info already has figures), and
    the load averages, which say how many threads wanted a CPU (compare with `count`)."""
    import os

    import psutil

    load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
    return {
        "count": os.cpu_count(),
        "percent": psutil.cpu_percent(interval=None),
        "process_percent": round(_PROCESS.cpu_percent(interval=None), 1),
        "load_1m": None if load[0] is None else round(load[0], 2),
        "load_5m": None if load[1] is None else round(load[1], 2),
        "load_15m": None if load[2] is None else round(load[2], 2),
    }


def host() -> dict[str, Any]:
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def device_of(recognizer: Any) -> str:
    return str(getattr(recognizer, "device", "cpu"))
