"""`voiceloop doctor`: what is installed, what loads, what answers — one line each.

Each check reports and moves on; a broken part must not hide the state of the others.
"""

from __future__ import annotations

import asyncio
import importlib.metadata as metadata
import os
import platform
import shutil
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from voiceloop.cli.messages import tr
from voiceloop.config import Settings
from voiceloop.registry import KINDS, AdapterNotFound, available

PACKAGES = (
    "numpy", "soxr", "soundfile", "onnxruntime", "silero-vad", "pocketsphinx", "espeakng-loader",
    "openai", "torch", "funasr", "edge-tts", "sounddevice", "livekit", "pymicro-wakeword",
)  # fmt: skip
SYSTEM_LIBRARIES = {
    "speexdsp": "the speex echo canceller (apt-get install libspeexdsp1)",
    "portaudio": "real audio devices (apt-get install libportaudio2)",
}

Check = tuple[str, bool | None, str]  # (what, ok / None = not needed, detail)


def _package_checks() -> list[Check]:
    checks: list[Check] = []
    for name in PACKAGES:
        try:
            checks.append((f"package {name}", True, metadata.version(name)))
        except metadata.PackageNotFoundError:
            checks.append((f"package {name}", None, "not installed"))
    return checks


def _library_checks() -> list[Check]:
    from ctypes.util import find_library

    checks: list[Check] = []
    for name, purpose in SYSTEM_LIBRARIES.items():
        found = find_library(name)
        checks.append(
            (f"library {name}", True if found else None, found or f"not found: needed for {purpose}")
        )
    return [*checks, _speex_build_check()]


def _speex_build_check() -> Check:
    """Which libspeexdsp the canceller loads, asked of the loader itself (a build that exists
    but does not load is passed over): voiceloop's -O3 build runs the same filter for ~40 %
    less CPU a frame (voiceloop/aec/speex_build.py)."""
    from voiceloop.aec import speex, speex_build

    label = "speexdsp in use"
    try:
        speex.load_library()
    except speex.SpeexError as error:
        return (label, False, str(error))
    loaded = speex.library_name or "?"
    built = speex_build.built_library()
    chosen = os.environ.get(speex.LIBRARY_ENV)
    if chosen:
        return (label, True, f"{loaded} ({speex.LIBRARY_ENV}={chosen})")
    if built is not None and loaded == str(built):
        return (label, True, f"{loaded} (voiceloop's -O3 build)")
    if built is not None:
        return (
            label,
            None,
            f"{loaded}: the -O3 build {built} does not load (the same output, ~40 % more CPU a "
            "frame); build it again: python -m voiceloop.aec.speex_build --force",
        )
    return (
        label,
        None,
        f"{loaded}: not built (the same output, ~40 % more CPU a frame); "
        "build it: python -m voiceloop.aec.speex_build",
    )


def _configured(settings: Settings) -> dict[str, str]:
    return {
        "audio": settings.audio.backend,
        "aec": settings.aec.name,
        "vad": settings.vad.name,
        "asr": settings.asr.name,
        "llm": settings.llm.name,
        "tts": settings.tts.name,
    }


def _adapter_checks(settings: Settings) -> list[Check]:
    from voiceloop.build import build_adapter, build_voice

    checks: list[Check] = []
    for kind, name in _configured(settings).items():
        label = f"{kind} adapter '{name}'"
        adapter: Any
        try:
            if kind == "llm":
                from voiceloop.llm.backends import BackendSet

                adapter = BackendSet(settings)  # the backend a session would start with
                label = f"llm backend '{adapter.active}' ({adapter.resolved.llm.name})"
            elif kind == "tts":
                adapter = build_voice(settings)  # with its fallback, as a session would speak
            else:
                adapter = build_adapter(settings, kind, name)  # type: ignore[arg-type]
        except AdapterNotFound as exc:
            checks.append((label, False, str(exc)))
            continue
        except Exception as exc:
            checks.append((label, False, f"{type(exc).__name__}: {exc}".splitlines()[0]))
            continue
        checks.append((label, True, "loads"))
        if kind == "llm":
            reason = asyncio.run(_check_llm(adapter))
            if reason is not None:
                reason = f"{reason}. {_llm_fix(adapter.active if adapter.active in settings.llm.backends else None)}"
            checks.append(("llm endpoint", reason is None, reason or f"answers: {adapter.description}"))
    known = {kind: ", ".join(sorted(available(kind))) for kind in KINDS}
    checks.append(("adapters known", None, "; ".join(f"{k}: {v}" for k, v in known.items())))
    return checks


def _llm_fix(backend: str | None) -> str:
    """What to do about an endpoint that does not answer: start it, point elsewhere, or leave it out."""
    variable = (
        f"VOICELOOP_LLM__BACKENDS__{backend.upper()}__BASE_URL" if backend else "VOICELOOP_LLM__BASE_URL"
    )
    return (
        f"Start the server, point {variable}=http://HOST:PORT/v1 at one that runs, "
        "or check everything else without a model: voiceloop doctor --llm echo"
    )


async def _check_llm(adapter: object) -> str | None:
    try:
        return await adapter.check()  # type: ignore[attr-defined]
    finally:
        await adapter.aclose()  # type: ignore[attr-defined]


def _turn_checks(settings: Settings) -> list[Check]:
    """How a turn ends, and what the detector costs a call here (it runs at every pause)."""
    name = settings.turn.name
    if name == "none":
        return [("turn ending", None, 'the silence window alone ([turn] name = "words" or "smart-turn")')]
    if name == "words":
        return [("turn ending", True, "words: a stop that trails off waits (no model)")]
    from voiceloop.build.turn import build_turn_detector

    said: list[str] = []
    detector = build_turn_detector(settings, say=said.append)
    if detector is None:
        return [("turn detector", None, said[0] if said else f"'{name}' did not load")]
    try:
        import time

        import numpy as np

        detector.warm_up()
        started = time.perf_counter()
        verdict = detector.predict(np.zeros(32_000, np.float32))
        elapsed_ms = (time.perf_counter() - started) * 1000
        return [
            (
                "turn detector",
                True,
                f"{name} loads; {elapsed_ms:.0f} ms a call (P={verdict.probability:.2f} on silence)",
            )
        ]
    except Exception as exc:
        return [("turn detector", False, f"{name}: {type(exc).__name__}: {exc}".splitlines()[0])]
    finally:
        detector.close()


def _wake_checks(settings: Settings) -> list[Check]:
    """The wake words the `micro` provider ships, and whether the configured ones load."""
    from voiceloop.wake.base import WakeWordError
    from voiceloop.wake.micro import available_words

    try:
        words = available_words()
    except WakeWordError as exc:
        return [("wake words", None, str(exc))]
    checks: list[Check] = [
        ("wake words (micro)", True, ", ".join(words) + "  (espeak voices: not hey_jarvis)")
    ]
    if settings.loop.wake_words:
        from voiceloop.build.pipeline import build_wake

        label = f"wake {settings.wake.name} '{','.join(settings.loop.wake_words)}'"
        try:
            build_wake(settings)
        except Exception as exc:
            return [*checks, (label, False, f"{type(exc).__name__}: {exc}".splitlines()[0])]
        checks.append((label, True, f"loads; attention window {settings.loop.attention_s:g} s"))
    return checks


def _audio_checks() -> list[Check]:
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        return [("audio devices", None, f"sounddevice unavailable ({exc}); only the virtual room")]
    try:
        devices = sd.query_devices()
    except Exception as exc:
        return [("audio devices", False, f"PortAudio failed: {exc}")]
    if len(devices) == 0:
        return [("audio devices", None, "none (is a sound server such as PulseAudio running?)")]
    names = ", ".join(str(device["name"]) for device in devices)[:200]
    return [("audio devices", True, f"{len(devices)}: {names}")]


def _gpu_checks() -> list[Check]:
    checks: list[Check] = []
    if shutil.which("nvidia-smi"):
        checks.append(("nvidia-smi", True, "present"))
    try:
        metadata.version("torch")
    except metadata.PackageNotFoundError:
        return [*checks, ("CUDA", None, "torch not installed")]
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return [*checks, ("CUDA", True, f"{name} (torch {torch.__version__})")]
    return [*checks, ("CUDA", None, f"no CUDA device (torch {torch.__version__}); ASR runs on the CPU")]


def run_doctor(settings: Settings, console: Console | None = None) -> int:
    console = console or Console(highlight=False)
    table = Table(title="voiceloop doctor", show_header=True)
    table.add_column(tr("check"))
    table.add_column("")
    table.add_column(tr("detail"), overflow="fold")
    groups: list[Callable[[], list[Check]]] = [
        lambda: [("python", True, platform.python_version())],
        _package_checks,
        _library_checks,
        lambda: _adapter_checks(settings),
        lambda: _turn_checks(settings),
        lambda: _wake_checks(settings),
        _audio_checks,
        _gpu_checks,
    ]
    failed = 0
    for group in groups:
        for what, ok, detail in group():
            mark = "[green]ok[/]" if ok else ("[dim]–[/]" if ok is None else "[red]FAIL[/]")
            failed += ok is False
            table.add_row(what, mark, detail)
    console.print(table)
    console.print("all configured parts load" if not failed else f"[red]{failed} check(s) failed[/]")
    return 1 if failed else 0
