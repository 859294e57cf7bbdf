"""A tiny random-init streaming Paraformer (FunASR's `paraformer-zh-streaming` shape), built with
FunASR's own classes (`ParaformerStreaming`, `SANMEncoderChunkOpt` with its online positional
encoding, `ParaformerSANMDecoder` with `sanm_shfit 5`, `CifPredictorV2`, `WavFrontendOnline`) and
loaded through `AutoModel` from its directory, as the downloaded model would be.

Like `tiny_funasr`'s models it is untrained: it emits arbitrary characters of its vocabulary, so
tests check that partial text flows chunk by chunk through FunASR's real streaming code (the
encoder's chunk caches, the CIF predictor's carried state, `is_final` flushing), not what it says.

    python -m voiceloop.testing.tiny_funasr_streaming OUT_DIR [--large]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from voiceloop.testing.tiny_funasr import (
    FEATURE_DIM,
    LARGE,
    SANM_ENCODER,
    TINY,
    _frontend,
    _save,
    _write_yaml,
)
from voiceloop.testing.tiny_funasr_onnx import cjk_vocabulary
from voiceloop.testing.tiny_sanm import sanm_decoder_conf


def streaming_config(vocab_size: int, shape: dict[str, int] = TINY) -> dict[str, Any]:
    """`paraformer-zh-streaming`'s config.yaml at `shape`'s size (the real one: LARGE)."""
    dim, units = shape["dim"], shape["units"]
    return {
        "model": "ParaformerStreaming",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": 0.1,
            "length_normalized_loss": True,
            "predictor_weight": 1.0,
            "predictor_bias": 1,
            "sampling_ratio": 0.75,
        },
        "encoder": "SANMEncoderChunkOpt",
        "encoder_conf": {
            **SANM_ENCODER,
            "output_size": dim,
            "attention_heads": 4,
            "linear_units": units,
            "num_blocks": shape["encoder_blocks"],
            "input_layer": "pe_online",
            "chunk_size": [12, 15],
            "stride": [8, 10],
            "pad_left": [0, 0],
            "encoder_att_look_back_factor": [4, 4],
            "decoder_att_look_back_factor": [1, 1],
        },
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": sanm_decoder_conf(shape["decoder_blocks"], units, shift=5),
        "predictor": "CifPredictorV2",
        "predictor_conf": {"idim": dim, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
        "frontend": "WavFrontendOnline",
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }


def build_streaming(directory: Path, shape: dict[str, int] = TINY, seed: int = 0) -> Path:
    """A random-init streaming Paraformer; a CJK vocabulary (the real model's is CJK + BPE)."""
    import torch
    from funasr.register import tables

    directory.mkdir(parents=True, exist_ok=True)
    tokens = cjk_vocabulary(shape["vocab"])
    (directory / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    config = streaming_config(len(tokens), shape)
    config["frontend_conf"] = _frontend(7, 6, FEATURE_DIM * 7, directory)
    _write_yaml(directory / "config.yaml", config)
    torch.manual_seed(seed)
    model = tables.model_classes.get("ParaformerStreaming")(
        **config["model_conf"],
        **{k: v for k, v in config.items() if k not in ("model", "model_conf")},
        vocab_size=len(tokens),
        input_size=FEATURE_DIM * 7,
    )
    _save(model, directory)
    return directory


def build_once(directory: Path, shape: dict[str, int] = TINY) -> Path:
    if (directory / "model.pt").is_file():
        return directory
    import funasr  # noqa: F401  (fills FunASR's class registry)

    return build_streaming(directory, shape)


def build_and_export(directory: Path, quantize: bool = True) -> Path:
    """Built and exported to ONNX through voiceloop's export path (FunASR's exporter: the
    encoder with the CIF predictor as model.onnx, the decoder as decoder.onnx), for
    `asr.streaming_runtime = "onnx"`; unless a previous call did."""
    from voiceloop.asr.onnx_export import export

    suffix = "_quant" if quantize else ""
    if not (directory / f"decoder{suffix}.onnx").is_file():
        build_once(directory)
        export(str(directory), quantize=quantize, ncpu=1)
    return directory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a random-init streaming Paraformer dir.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--large", action="store_true", help="the real model's size (~880 MB)")
    args = parser.parse_args(argv)
    print(build_once(args.out, LARGE if args.large else TINY))


if __name__ == "__main__":
    main()
