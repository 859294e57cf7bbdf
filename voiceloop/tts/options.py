"""Each voice's own options: `[tts.espeak]`, `[tts.edge]`.

Only pydantic here (the settings model imports it). The voice itself, the fallback and the
per-piece timeout apply to any voice and stay in `[tts]`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voiceloop.adapter_options import AdapterOptions


class EspeakOptions(AdapterOptions):
    rate_wpm: int = Field(175, ge=80, le=450, description="speaking rate, words per minute")


class EdgeOptions(AdapterOptions):
    # Prosody, in the service's own notation.
    rate: str = Field("+0%", pattern=r"^[+-]\d+%$")
    volume: str = Field("+0%", pattern=r"^[+-]\d+%$")
    pitch: str = Field("+0Hz", pattern=r"^[+-]\d+Hz$")
    boundary: Literal["word", "sentence"] = "word"  # timing events kept per piece (barge-in)
    connect_timeout_s: float = Field(3.0, gt=0, description="DNS + TCP + TLS to the service")
    first_audio_timeout_s: float = Field(
        3.0, gt=0, description="connected to first audio; also the longest gap mid-stream"
    )
