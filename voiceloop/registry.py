"""Adapters by name: built-in ones listed here, third-party ones via entry points.

Entries are import strings, not imported classes, so naming an adapter costs nothing until it
is built: `voiceloop --help` must not import torch. A third-party package registers
`[project.entry-points."voiceloop.adapters"]` with names like `asr.mymodel = "pkg.mod:create"`,
where `create(settings) -> adapter`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from voiceloop.config import Settings

Kind = Literal["asr", "llm", "tts", "aec", "vad", "audio"]
KINDS: tuple[Kind, ...] = ("asr", "llm", "tts", "aec", "vad", "audio")
ENTRY_POINT_GROUP = "voiceloop.adapters"

BUILTIN: dict[Kind, dict[str, str]] = {
    "asr": {
        "pocketsphinx": "voiceloop.asr.pocketsphinx:create",
        "paraformer": "voiceloop.asr.paraformer:create",
        "openai": "voiceloop.asr.openai_transcribe:create",
    },
    "llm": {"openai": "voiceloop.llm.openai_chat:create", "echo": "voiceloop.llm.echo:create"},
    "tts": {
        "espeak": "voiceloop.tts.espeak:create",
        "edge": "voiceloop.tts.edge:create",
        "fallback": "voiceloop.tts.fallback:create",
    },
    "aec": {
        "none": "voiceloop.aec.passthrough:create",
        "speex": "voiceloop.aec.speex:create",
        "webrtc": "voiceloop.aec.webrtc:create",
    },
    "vad": {"silero": "voiceloop.vad.silero:create"},
    "audio": {
        "virtual": "voiceloop.audio.virtual:create",
        "sounddevice": "voiceloop.audio.sounddevice_duplex:create",
        "pyaudio": "voiceloop.audio.pyaudio_duplex:create",
    },
}


class AdapterNotFound(LookupError):
    pass


def _plugin_entries() -> dict[Kind, dict[str, str]]:
    found: dict[Kind, dict[str, str]] = {kind: {} for kind in KINDS}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        kind, _, name = entry.name.partition(".")
        if kind in found and name:
            found[kind][name] = entry.value  # type: ignore[index]
    return found


def available(kind: Kind) -> dict[str, str]:
    """Every adapter name of a kind with its import string; plugins may not shadow built-ins."""
    return {**_plugin_entries()[kind], **BUILTIN[kind]}


def factory(kind: Kind, name: str) -> Callable[..., Any]:
    entries = available(kind)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise AdapterNotFound(f"no {kind} adapter named '{name}' (known: {known})")
    module_name, _, attr = entries[name].partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def create(kind: Kind, name: str, settings: Settings, **kwargs: Any) -> Any:
    """Builds the named adapter from settings (and adapter-specific keyword arguments)."""
    return factory(kind, name)(settings, **kwargs)
