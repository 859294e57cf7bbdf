"""Builds a pipeline of adapters from settings, by name, through the registry."""

from __future__ import annotations

from typing import Any

from voiceloop.config import Settings
from voiceloop.engine.runtime import Pipeline
from voiceloop.llm.backends import BackendSet
from voiceloop.registry import create


def build_pipeline(
    settings: Settings, *, device: Any = None, asr: Any = None, llm: Any = None, tts: Any = None
) -> Pipeline:
    """Adapters may be given ready-made: the demo's room, a fallback backend, a stage wrapped
    for fault injection or fixed latency."""
    return Pipeline(
        device=device if device is not None else create("audio", settings.audio.backend, settings),
        aec=create("aec", settings.aec.name, settings),
        vad=create("vad", settings.vad.name, settings),
        asr=asr if asr is not None else create("asr", settings.asr.name, settings),
        llm=llm if llm is not None else BackendSet(settings),
        tts=tts if tts is not None else create("tts", settings.tts.name, settings),
    )
