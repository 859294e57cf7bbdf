"""Every stage of one conversation, built from settings through the registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voiceloop.build.adapters import build_adapter
from voiceloop.build.turn import build_turn_detector
from voiceloop.build.voices import build_voice
from voiceloop.engine.runtime import Pipeline
from voiceloop.llm.backends import BackendSet

if TYPE_CHECKING:
    from voiceloop.config import Settings


def build_pipeline(
    settings: Settings,
    *,
    device: Any = None,
    aec: Any = None,
    asr: Any = None,
    llm: Any = None,
    tts: Any = None,
    turn: Any = None,
    wake: Any = None,
) -> Pipeline:
    """Adapters may be given ready-made: the demo's room, a fallback backend, a stage wrapped
    for fault injection or fixed latency, no canceller for a browser that cancels its own echo."""
    asr = asr if asr is not None else build_adapter(settings, "asr")
    if settings.asr.streaming and hasattr(asr, "recognize_raw"):
        from voiceloop.asr.segments import PrefixDecodingRecognizer

        # 2pass: the offline model decodes at pauses too; after the last, only silence is left
        # when less than the endpointer's stop window follows it.
        asr = PrefixDecodingRecognizer(asr, silent_tail_s=settings.vad.stop_ms / 1000)
    return Pipeline(
        device=device if device is not None else build_adapter(settings, "audio"),
        aec=aec if aec is not None else build_adapter(settings, "aec"),
        vad=build_adapter(settings, "vad"),
        asr=asr,
        llm=llm if llm is not None else BackendSet(settings),
        tts=tts if tts is not None else build_voice(settings),
        turn=turn if turn is not None else build_turn_detector(settings),
        wake=wake if wake is not None else build_wake(settings),
        partials=build_streaming(settings),
    )


def build_wake(settings: Settings) -> Any:
    """The wake-word stage `[wake] name` chooses, for the words `[loop] wake` names; None (always
    awake) when it names none."""
    words = settings.loop.wake_words
    return build_adapter(settings, "wake", words=words) if words else None


def build_streaming(settings: Settings) -> Any:
    """The streaming model for live partial text (`asr.streaming`), loaded and warmed; None when off."""
    if not settings.asr.streaming:
        return None
    asr = settings.asr
    streamer: Any
    chunk_ms = streaming_chunk_ms(settings)
    if asr.streaming_runtime == "pytorch":
        from voiceloop.asr.paraformer_streaming import StreamingParaformer

        streamer = StreamingParaformer(asr.streaming_model, ncpu=asr.streaming_ncpu, chunk_ms=chunk_ms)
    else:
        from voiceloop.asr.paraformer_streaming_onnx import StreamingParaformerOnnx

        streamer = StreamingParaformerOnnx(
            asr.streaming_model,
            threads=asr.streaming_ncpu,
            quantize=asr.streaming_runtime == "onnx",
            chunk_ms=chunk_ms,
        )
    streamer.warm_up()
    return streamer


def streaming_chunk_ms(settings: Settings) -> int:
    """`asr.streaming_chunk_ms`, or where unset the chunk that keeps partials within 700 ms on
    a CPU: 480 ms on the ONNX runtimes (600 ms chunks: first partial 683 ms, gaps up to 739
    idle, scripts/bench_asr_cpu.py --two-pass), FunASR's 600 on PyTorch."""
    chosen = settings.asr.streaming_chunk_ms
    if chosen is not None:
        return chosen
    return 600 if settings.asr.streaming_runtime == "pytorch" else 480
