"""Each recogniser's own options: `[asr.pocketsphinx]`, `[asr.paraformer]`, `[asr.qwen3]`, `[asr.openai]`.

Only pydantic here: the settings model imports these, and loading settings must not import
funasr, pocketsphinx or openai. Shared keys (language, hotwords, timeout_s) stay in `[asr]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from voiceloop.adapter_options import AdapterOptions


class PocketsphinxOptions(AdapterOptions):
    model: str | None = Field(None, description="a model dir; None = the English model it ships")
    # Command-style use: restricted to these phrases (or a JSGF grammar) it is near perfect
    # on synthetic speech, where its open vocabulary misses about half the words.
    phrases: list[str] = []
    grammar: Path | None = None


class ParaformerOptions(AdapterOptions):
    model: str | None = Field(None, description="a model id ('paraformer-zh', 'iic/...') or a local dir")
    device: str = "auto"  # auto (first CUDA device, else CPU) | cpu | cuda | cuda:N
    # VAD splits long audio (needed for files over ~60 s; a voice turn is already one
    # utterance); punctuation restores ，。？ in Chinese and English text.
    vad_model: str | None = None  # e.g. "fsmn-vad"
    punc_model: str | None = None  # e.g. "ct-punc"
    ncpu: int | None = Field(
        None, ge=1, le=256, description="CPU threads; None = all cores but one, at most 4"
    )
    batch_size_s: int = Field(300, ge=1, description="seconds of audio per GPU batch (with a VAD)")
    fp16: bool | None = Field(None, description="half precision; None = on for CUDA, off on CPU")


class ParaformerOnnxOptions(AdapterOptions):
    """`[asr.paraformer-onnx]`: FunASR's ONNX runtime (funasr-onnx) over an exported model dir.

    The ONNX files come from `voiceloop models export NAME [--int8]`, never from the run."""

    model: str | None = Field(None, description="a model id ('paraformer-zh', 'iic/...') or a local dir")
    punc_model: str | None = Field(None, description="e.g. 'ct-punc' (exported too); None = no punctuation")
    quantize: bool = Field(True, description="int8 weights (model_quant.onnx): ~2x faster on a CPU")
    threads: int | None = Field(
        None, ge=1, le=256, description="onnxruntime intra-op threads; None = all cores but one, at most 4"
    )


class OpenAITranscribeOptions(AdapterOptions):
    """An OpenAI-compatible /v1/audio/transcriptions server (FunASR's, vLLM, OpenAI)."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str | None = Field(
        None,
        description="the server's model name; None = the one it serves (FunASR's server: the model it "
        "loaded; a server listing one model: that one; else 'paraformer' or 'whisper-1' if listed)",
    )
    api_key: SecretStr = SecretStr("not-needed")
    timeout_s: float = Field(
        30.0, gt=0, description="one request's limit beyond the audio's own length (a busy shared box)"
    )
    connect_timeout_s: float = Field(3.0, gt=0)
    first_request_timeout_s: float = Field(
        120.0,
        gt=0,
        description="the first request and the questions before it: a server may load on first use",
    )


class Qwen3Options(AdapterOptions):
    """Qwen3-ASR in-process through the `qwen-asr` package (`voiceloop[qwen3]`)."""

    model: str | None = Field(None, description="a model id ('qwen3-asr', 'Qwen/...') or a local dir")
    device: str = "auto"  # auto (first CUDA device, else CPU with a warning) | cpu | cuda | cuda:N
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto = bf16 on CUDA (fp16 where bf16 is unsupported), fp32 on CPU"
    )
    max_inference_batch_size: int = Field(8, ge=1, le=256, description="clips per forward pass")
    max_new_tokens: int = Field(256, ge=1, le=4096, description="tokens generated per clip at most")
    # None = [asr] language; "auto" = let the model detect it (less accurate than a hint).
    language: str | None = None
    aligner: str | None = Field(
        None, description="Qwen3-ForcedAligner id ('qwen3-aligner') or dir: word timestamps"
    )
