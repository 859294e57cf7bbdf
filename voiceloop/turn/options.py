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
    # Measured here (AVX2, no VNNI; ms a call, median; one thread / two without spinning / two
    # with it): idle 114 / 64-70 / 64; beside two busy processes 218 / 185 / 191; beside five
    # 344 / 291-294 / 311-349; while the shared host's load average was 3: 114 / 115-127 /
    # 149-181. Two threads without spinning: much faster idle, never much slower.
    threads: int = Field(default=2, ge=1, le=16, description="onnxruntime intra-op threads")
    spinning: bool = Field(
        default=False,
        description="let onnxruntime's idle worker threads busy-wait for work: ~5 ms sooner on an "
        "idle machine, tens of ms later when other work needs the cores",
    )
    max_audio_s: float = Field(
        default=MODEL_WINDOW_S,
        gt=0.0,
        le=MODEL_WINDOW_S,
        description="how much of the turn's end is heard (the model sees 8 s)",
    )
    # On x86 without VNNI, onnxruntime's fast u8s8 kernel sums pairs of products in 16 bits,
    # which can saturate: over the two turn corpora (339 inputs) P(complete) moved by up to 0.91
    # against the exact kernel and 43 decisions flipped; with the exact one the idealised
    # stack's complete turns answered sooner (voice-to-voice p90 454-1180 ms vs 1244-2199 ms,
    # scripts/bench_turns.py --exact-int8, README). With VNNI the fast kernel is exact already.
    exact_int8: bool | None = Field(
        default=None,
        description="onnxruntime's exact u8u8 int8 kernel (`session.x64quantprecision`): "
        "None = on where it changes the answers (x86-64 without VNNI), ~10-20% slower there",
    )
