"""Tiny random-init FunASR model directories, built with FunASR's own model classes.

Tests and benchmarks need the real `AutoModel` code path (config parsing, tokenizer, frontend,
CIF predictor, SeACo hotword biasing, fsmn-vad segmentation, ct-punc) without downloading
~1 GB of weights. Each builder writes a directory laid out like a ModelScope download
(`config.yaml`, `model.pt` as a plain state_dict, `tokens.json`, `am.mvn`, `seg_dict`), built by
instantiating the registered class with a shrunken config and saving its state_dict, so
`AutoModel(model=<dir>)` loads every weight it expects: a checkpoint with missing keys would
only warn, so `build_*` verify the round trip.

The models are untrained: they emit arbitrary characters from their small vocabulary. What they
prove is that audio, hotwords and segments flow through FunASR's real inference code.

    python -m voiceloop.testing.tiny_funasr OUT_DIR            # paraformer/, seaco/, vad/, punc/
    python -m voiceloop.testing.tiny_funasr OUT_DIR --large    # seaco-large/: the real size
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceloop.testing.tiny_sanm import sanm_decoder_conf

# A small Chinese vocabulary plus a few words: enough for hotwords made of known characters.
CHARACTERS = list(
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家"
    "学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经"
    "头面公同三已老从动两长魔搭语音识别热词阿里巴达摩院开灯关音乐"
)
SPECIAL_HEAD = ["<blank>", "<s>", "</s>"]
SPECIAL_TAIL = ["<unk>"]
FEATURE_DIM = 80


# The SANM encoder settings both tiny models share (only sizes differ).
SANM_ENCODER: dict[str, object] = {
    "dropout_rate": 0.1,
    "positional_dropout_rate": 0.1,
    "attention_dropout_rate": 0.1,
    "input_layer": "pe",
    "pos_enc_class": "SinusoidalPositionEncoder",
    "normalize_before": True,
    "kernel_size": 11,
    "sanm_shfit": 0,
    "selfattention_layer_type": "sanm",
}


@dataclass(frozen=True)
class TinyModels:
    """Paths of one set of tiny model directories."""

    paraformer: Path
    seaco: Path
    vad: Path
    punc: Path


# Full size: the real SeACo-Paraformer-large's shape (50 SANM encoder blocks of 512, 16 decoder
# blocks, 8404 tokens, ~220M parameters): random weights, but the same compute per second of
# audio, so benchmarks can measure speed where the real weights cannot be downloaded.
LARGE = {
    "dim": 512,
    "units": 2048,
    "encoder_blocks": 50,
    "decoder_blocks": 16,
    "seaco_blocks": 6,
    "seaco_units": 1024,
    "vocab": 8404,
}
TINY = {
    "dim": 64,
    "units": 128,
    "encoder_blocks": 2,
    "decoder_blocks": 2,
    "seaco_blocks": 1,
    "seaco_units": 128,
    "vocab": 0,
}


def vocabulary(size: int = 0) -> list[str]:
    """The tiny character vocabulary; padded with placeholder tokens up to `size` if given."""
    tokens = SPECIAL_HEAD + list(dict.fromkeys(CHARACTERS))
    tokens += [f"tok{i}" for i in range(max(0, size - len(tokens) - 2))]
    return tokens + ["<no_bias>"] + SPECIAL_TAIL


def _write_cmvn(path: Path, dim: int) -> None:
    """Kaldi nnet-text CMVN, as FunASR's `load_cmvn` reads it (<AddShift> then <Rescale>).

    The shift/scale roughly centre log-mel energies of 16-bit-scaled speech (~ +10, spread ~4), so
    activations of the random network stay in a sane range.
    """
    shift = " ".join(["-10.0"] * dim)
    scale = " ".join(["0.25"] * dim)
    path.write_text(
        "<Nnet>\n"
        f"<Splice> {dim} {dim}\n[ 0 ]\n"
        f"<AddShift> {dim} {dim}\n<LearnRateCoef> 0 [ {shift} ]\n"
        f"<Rescale> {dim} {dim}\n<LearnRateCoef> 0 [ {scale} ]\n"
        "</Nnet>\n",
        encoding="utf-8",
    )


def _write_yaml(path: Path, config: dict[str, Any]) -> None:
    from omegaconf import OmegaConf

    OmegaConf.save(OmegaConf.create(config), path)


def _save(model: Any, directory: Path) -> None:
    import torch

    torch.save(model.state_dict(), directory / "model.pt")


def _frontend(lfr_m: int, lfr_n: int, cmvn_dim: int, directory: Path) -> dict[str, Any]:
    _write_cmvn(directory / "am.mvn", cmvn_dim)
    return {
        "fs": 16000,
        "window": "hamming",
        "n_mels": FEATURE_DIM,
        "frame_length": 25,
        "frame_shift": 10,
        "lfr_m": lfr_m,
        "lfr_n": lfr_n,
        "dither": 0.0,  # deterministic features: tests compare outputs across calls
    }


def paraformer_config(seaco: bool, vocab_size: int, shape: dict[str, int] = TINY) -> dict[str, Any]:
    """The shape of `paraformer-zh` (SeACo) or plain Paraformer-large, at `shape`'s size."""
    dim, units = shape["dim"], shape["units"]
    config: dict[str, Any] = {
        "model": "SeacoParaformer" if seaco else "Paraformer",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": 0.1,
            "length_normalized_loss": True,
            "predictor_weight": 1.0,
            "predictor_bias": 1,
            "sampling_ratio": 0.75,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": {
            "output_size": dim,
            "attention_heads": 4,
            "linear_units": units,
            "num_blocks": shape["encoder_blocks"],
            **SANM_ENCODER,
        },
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": sanm_decoder_conf(shape["decoder_blocks"], units, shift=0),
        "predictor": "CifPredictorV2",
        "predictor_conf": {"idim": dim, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
        "frontend": "WavFrontend",
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }
    if seaco:
        config["model_conf"].update(
            {
                "inner_dim": dim,
                "bias_encoder_type": "lstm",
                "bias_encoder_bid": False,
                "seaco_lsm_weight": 0.1,
                "seaco_length_normalized_loss": True,
                "NO_BIAS": vocab_size - 2,  # the "<no_bias>" token
            }
        )
        config["predictor"] = "CifPredictorV3"
        config["predictor_conf"].update(
            {
                "smooth_factor2": 0.25,
                "noise_threshold2": 0.01,
                "upsample_times": 3,  # SeACo's inference assumes 3 when it cuts timestamps
                "use_cif1_cnn": False,
                "upsample_type": "cnn_blstm",
            }
        )
        config["seaco_decoder"] = "ParaformerSANMDecoder"
        config["seaco_decoder_conf"] = {
            "attention_heads": 4,
            "linear_units": shape["seaco_units"],
            "num_blocks": shape["seaco_blocks"],
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "self_attention_dropout_rate": 0.1,
            "src_attention_dropout_rate": 0.1,
            "att_layer_num": shape["seaco_blocks"],
            "kernel_size": 21,
            "sanm_shfit": 0,
            "use_output_layer": False,
        }
    return config


def build_paraformer(
    directory: Path,
    seaco: bool = True,
    shape: dict[str, int] = TINY,
    seed: int = 0,
    tokens: list[str] | None = None,
) -> Path:
    """A random-init (SeACo-)Paraformer: SANM encoder, CIF predictor, SANM decoder(s), chars
    (`tokens`, default `vocabulary(shape["vocab"])`)."""
    import torch
    from funasr.register import tables

    directory.mkdir(parents=True, exist_ok=True)
    tokens = tokens or vocabulary(shape["vocab"])
    (directory / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    # Without seg_dict, SeACo turns every multi-character hotword into <unk>.
    (directory / "seg_dict").write_text(
        "".join(f"{t} {t}\n" for t in tokens if not t.startswith("<")), encoding="utf-8"
    )
    config = paraformer_config(seaco, len(tokens), shape)
    config["frontend_conf"] = _frontend(7, 6, FEATURE_DIM * 7, directory)
    _write_yaml(directory / "config.yaml", config)

    torch.manual_seed(seed)
    model_class = tables.model_classes.get(config["model"])
    model = model_class(
        **config["model_conf"],
        **{k: v for k, v in config.items() if k not in ("model", "model_conf")},
        vocab_size=len(tokens),
        input_size=FEATURE_DIM * 7,
    )
    _save(model, directory)
    return directory


def build_vad(directory: Path, seed: int = 0) -> Path:
    """A tiny fsmn-vad. Its config keeps FunASR's real post-processing (windows, silence
    schedule, which in offline mode ends a segment only after 2 s of silence for the first
    10 s of speech) but gates on energy (`decibel_thres`): an untrained network cannot tell
    speech from silence, so the energy gate is what lets it split a file at its silences."""
    import torch
    from funasr.register import tables

    directory.mkdir(parents=True, exist_ok=True)
    encoder_conf = {
        "input_dim": FEATURE_DIM * 5,
        "input_affine_dim": 32,
        "fsmn_layers": 2,
        "linear_dim": 32,
        "proj_dim": 16,
        "lorder": 20,
        "rorder": 0,
        "lstride": 1,
        "rstride": 0,
        "output_affine_dim": 32,
        "output_dim": 16,
    }
    model_conf = {
        "sample_rate": 16000,
        "detect_mode": 1,
        "snr_mode": 0,
        "max_end_silence_time": 400,
        "max_start_silence_time": 3000,
        "do_start_point_detection": True,
        "do_end_point_detection": True,
        "window_size_ms": 200,
        "sil_to_speech_time_thres": 150,
        "speech_to_sil_time_thres": 150,
        "speech_2_noise_ratio": 1.0,
        "do_extend": 1,
        "lookback_time_start_point": 200,
        "lookahead_time_end_point": 100,
        "max_single_segment_time": 60000,
        "snr_thres": -100.0,
        "noise_frame_num_used_for_snr": 100,
        "decibel_thres": -15.0,  # frame energy (25 ms, full scale 1): about -41 dBFS RMS
        "speech_noise_thres": 0.0,
        "fe_prior_thres": 0.0001,
        "silence_pdf_num": 1,
        "sil_pdf_ids": [0],
        "speech_noise_thresh_low": -0.1,
        "speech_noise_thresh_high": 0.3,
        "output_frame_probs": False,
        "frame_in_ms": 10,
        "frame_length_ms": 25,
    }
    config = {
        "model": "FsmnVADStreaming",
        "model_conf": model_conf,
        "encoder": "FSMN",
        "encoder_conf": encoder_conf,
        "frontend": "WavFrontendOnline",
        "frontend_conf": _frontend(5, 1, FEATURE_DIM * 5, directory),
    }
    _write_yaml(directory / "config.yaml", config)
    torch.manual_seed(seed)
    model = tables.model_classes.get("FsmnVADStreaming")(
        encoder="FSMN", encoder_conf=encoder_conf, **model_conf
    )
    _save(model, directory)
    return directory


def build_punc(directory: Path, dim: int = 48, seed: int = 0) -> Path:
    """A tiny ct-punc (CT-Transformer over a SANM encoder) with FunASR's punctuation list."""
    import torch
    from funasr.register import tables

    directory.mkdir(parents=True, exist_ok=True)
    tokens = ["<blank>", "<s>", "</s>", *dict.fromkeys(CHARACTERS), "<unk>"]
    (directory / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    encoder_conf = {
        "input_size": dim,
        "output_size": dim,
        "attention_heads": 4,
        "linear_units": dim * 2,
        "num_blocks": 2,
        **SANM_ENCODER,
        "padding_idx": 0,
    }
    model_conf = {
        "ignore_id": 0,
        "embed_unit": dim,
        "att_unit": dim,
        "dropout_rate": 0.1,
        "punc_list": ["<unk>", "_", "，", "。", "？", "、"],
        "punc_weight": [1.0] * 6,
        "sentence_end_id": 3,
    }
    config = {
        "model": "CTTransformer",
        "model_conf": model_conf,
        "encoder": "SANMEncoder",
        "encoder_conf": encoder_conf,
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>"},
    }
    _write_yaml(directory / "config.yaml", config)
    torch.manual_seed(seed)
    model = tables.model_classes.get("CTTransformer")(
        encoder="SANMEncoder", encoder_conf=encoder_conf, vocab_size=len(tokens), **model_conf
    )
    _save(model, directory)
    return directory


def build_all(root: Path) -> TinyModels:
    """All four kinds under `root` (about a second once funasr is imported)."""
    import funasr  # noqa: F401  (fills FunASR's class registry)

    return TinyModels(
        paraformer=build_paraformer(root / "paraformer", seaco=False),
        seaco=build_paraformer(root / "seaco", seaco=True),
        vad=build_vad(root / "vad"),
        punc=build_punc(root / "punc"),
    )


def build_once(root: Path) -> TinyModels:
    """The tiny models under `root`, built only if a previous call (in any process) has not:
    test modules share one set per session and their AutoModels with it."""
    models = TinyModels(root / "paraformer", root / "seaco", root / "vad", root / "punc")
    if all((path / "model.pt").is_file() for path in vars(models).values()):
        return models
    return build_all(root)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write random-init FunASR model dirs.")
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--large", action="store_true", help="only a SeACo-Paraformer at the real model's size (~1 GB)"
    )
    args = parser.parse_args(argv)
    if args.large:
        import funasr  # noqa: F401  (fills FunASR's class registry)

        print(f"seaco-large: {build_paraformer(args.out / 'seaco-large', shape=LARGE)}")
        return
    models = build_all(args.out)
    for name, path in vars(models).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
