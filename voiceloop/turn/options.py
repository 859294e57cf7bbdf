"""`smart-turn`'s options, apart from the detector so that the config can hold them without
importing numpy or onnxruntime (`voiceloop --help` must stay fast)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from voiceloop.adapter_options import AdapterOptions

MODEL_WINDOW_S = 8.0  # Smart Turn's input: Whisper features of the last 8 s (800 frames)


class SmartTurnOptions(AdapterOptions):
    """What `smart-turn` can be told (`[turn.smart-turn]`); unknown keys are errors, as everywhere
    in voiceloop's config."""

    model_path: Path | None = Field(
        default=None,
        description="the .onnx file; None = the voiceloop model cache (`voiceloop models download smart-turn`)",
    )
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0, description="P(complete) above this ends the turn")
    # One: ~95 ms of CPU a call. Two halve it on an idle machine (25 ms measured), but on this
    # shared 2-core host at load 5-7 two threads took 285-300 ms a call against one's 156 ms, and
    # the second core is the speculative ASR's at the same moment.
    threads: int = Field(default=1, ge=1, le=16, description="onnxruntime intra-op threads")
    max_audio_s: float = Field(
        default=MODEL_WINDOW_S,
        gt=0.0,
        le=MODEL_WINDOW_S,
        description="how much of the turn's end is heard (the model sees 8 s)",
    )
