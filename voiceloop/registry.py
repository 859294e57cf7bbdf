"""Adapters by name: each one a spec (kind, name, factory, options model).

Built-in specs are listed here; third-party ones come from the entry-point group
`voiceloop.adapters`, named `KIND.NAME` and pointing at an `AdapterSpec`:

    [project.entry-points."voiceloop.adapters"]
    "asr.mymodel" = "mypkg.voiceloop_plugin:spec"

    # mypkg/voiceloop_plugin.py
    class Options(AdapterOptions):        # voiceloop.adapter_options; [asr.mymodel] in a profile
        beam: int = 4
    def create(options: Options, shared: AsrSettings, **kwargs) -> MyRecognizer: ...
    spec = AdapterSpec("asr", "mymodel", create, Options)

A factory receives its own options (validated from `[KIND.NAME]`) and the stage's shared
section (`[asr]`: language, hotwords...), never the whole settings; `voiceloop.build` is what
calls it. (Audio backends are the exception: a device reads `[audio]` and `[aec] delay_ms`,
so theirs receive the settings.)

Built-in factories are import strings, not imported functions, so naming an adapter costs
nothing until it is built: `voiceloop --help` must not import torch. Options models are
imported at once: they are pydantic only, and the settings model is made of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Literal

from voiceloop.adapter_options import AdapterOptions, NoOptions
from voiceloop.aec.options import SpeexOptions, WebRtcOptions
from voiceloop.asr.options import (
    OpenAITranscribeOptions,
    ParaformerOnnxOptions,
    ParaformerOptions,
    PocketsphinxOptions,
    Qwen3Options,
)
from voiceloop.tts.options import EdgeOptions, EspeakOptions
from voiceloop.turn.options import SmartTurnOptions
from voiceloop.wake.options import MicroWakeOptions

Kind = Literal["asr", "llm", "tts", "aec", "vad", "audio", "turn", "wake"]
KINDS: tuple[Kind, ...] = ("asr", "llm", "tts", "aec", "vad", "audio", "turn", "wake")
ENTRY_POINT_GROUP = "voiceloop.adapters"


@dataclass(frozen=True)
class AdapterSpec:
    kind: Kind
    name: str
    factory: Callable[..., Any] | str  # or "module:function", imported when first built
    options: type[AdapterOptions] = field(default=NoOptions)

    def create(self, options: AdapterOptions | None, shared: Any, **kwargs: Any) -> Any:
        """The adapter; `options` None = the model's defaults."""
        return self.load_factory()(options if options is not None else self.options(), shared, **kwargs)

    def load_factory(self) -> Callable[..., Any]:
        if not isinstance(self.factory, str):
            return self.factory
        module_name, _, attr = self.factory.partition(":")
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
        return target


def _builtin(kind: Kind, entries: dict[str, tuple[str, type[AdapterOptions]]]) -> dict[str, AdapterSpec]:
    return {name: AdapterSpec(kind, name, factory, options) for name, (factory, options) in entries.items()}


BUILTIN: dict[Kind, dict[str, AdapterSpec]] = {
    "asr": _builtin(
        "asr",
        {
            "pocketsphinx": ("voiceloop.asr.pocketsphinx:create", PocketsphinxOptions),
            "paraformer": ("voiceloop.asr.paraformer:create", ParaformerOptions),
            "qwen3": ("voiceloop.asr.qwen3:create", Qwen3Options),
            "paraformer-onnx": ("voiceloop.asr.paraformer_onnx:create", ParaformerOnnxOptions),
            "openai": ("voiceloop.asr.openai_transcribe:create", OpenAITranscribeOptions),
        },
    ),
    "llm": _builtin(
        "llm",
        {
            "openai": ("voiceloop.llm.openai_chat:create", NoOptions),
            "echo": ("voiceloop.llm.echo:create", NoOptions),
        },
    ),
    "tts": _builtin(
        "tts",
        {
            "espeak": ("voiceloop.tts.espeak:create", EspeakOptions),
            "edge": ("voiceloop.tts.edge:create", EdgeOptions),
        },
    ),
    "aec": _builtin(
        "aec",
        {
            "none": ("voiceloop.aec.passthrough:create", NoOptions),
            "speex": ("voiceloop.aec.speex:create", SpeexOptions),
            "webrtc": ("voiceloop.aec.webrtc:create", WebRtcOptions),
        },
    ),
    "vad": _builtin("vad", {"silero": ("voiceloop.vad.silero:create", NoOptions)}),
    # `[turn] name = "none"` and `"words"` have no spec: no model; turns end on the silence window,
    # or (words) on it unless the transcript trails off.
    "turn": _builtin("turn", {"smart-turn": ("voiceloop.turn.smart_turn:from_spec", SmartTurnOptions)}),
    # Built only when `[loop] wake` names words: with none the loop is always awake.
    "wake": _builtin("wake", {"micro": ("voiceloop.wake.micro:create", MicroWakeOptions)}),
    "audio": _builtin(
        "audio",
        {
            "virtual": ("voiceloop.audio.virtual:create", NoOptions),
            "sounddevice": ("voiceloop.audio.sounddevice_duplex:create", NoOptions),
            "pyaudio": ("voiceloop.audio.pyaudio_duplex:create", NoOptions),
        },
    ),
}


class AdapterNotFound(LookupError):
    pass


class BadPlugin(TypeError):
    """An entry point that does not lead to an AdapterSpec of its own kind and name."""


def _plugin_entries() -> dict[Kind, dict[str, Any]]:
    found: dict[Kind, dict[str, Any]] = {kind: {} for kind in KINDS}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        kind, _, name = entry.name.partition(".")
        if kind in found and name:
            found[kind][name] = entry  # type: ignore[index]
    return found


def available(kind: Kind) -> list[str]:
    """Every adapter name of a kind; plugins may not shadow built-ins."""
    return sorted({*_plugin_entries()[kind], *BUILTIN[kind]})


@cache
def _plugin_spec(kind: Kind, name: str) -> AdapterSpec | None:
    entry = _plugin_entries()[kind].get(name)
    if entry is None:
        return None
    loaded = entry.load()  # imports the plugin's module: only when its adapter is named
    if not isinstance(loaded, AdapterSpec) or (loaded.kind, loaded.name) != (kind, name):
        raise BadPlugin(
            f"entry point '{kind}.{name}' = {entry.value} must name an AdapterSpec('{kind}', '{name}', ...)"
        )
    return loaded


def spec(kind: Kind, name: str) -> AdapterSpec:
    if name in BUILTIN[kind]:
        return BUILTIN[kind][name]
    found = _plugin_spec(kind, name)
    if found is None:
        known = ", ".join(available(kind)) or "none"
        raise AdapterNotFound(f"no {kind} adapter named '{name}' (known: {known})")
    return found
