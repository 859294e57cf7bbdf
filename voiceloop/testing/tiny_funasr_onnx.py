"""Tiny random-init FunASR models exported to ONNX, for tests of `asr.name = "paraformer-onnx"`.

Built with `tiny_funasr`'s builders (FunASR's own classes) and exported with voiceloop's own
export path (`voiceloop.asr.onnx_export.export`, FunASR's exporter), then loaded by the tests
through funasr-onnx's real classes. FunASR's ONNX code has limits a tiny model must respect
(found by trying, see NOTES.md "ONNX Paraformer"):
- funasr-onnx's post-processing expects CJK characters (a token like `<no_bias>` or `tok7` in
  the output breaks it): the vocabulary is CJK only, between `<blank> <s> </s>` and `<unk>`;
- SeACo's export hard-codes a 512-wide hotword embedding, `NOBIAS = 8377`, an attention filter
  over 6 decoder blocks (`forward_asf6`) and out-of-vocabulary id 8403: its tiny model is 512
  wide with 6 SeACo blocks and 8404 tokens (~100 MB of ONNX, ~10-20 s to export on 2 cores),
  so tests build it once per session in a temporary directory; never commit the files.

    python -m voiceloop.testing.tiny_funasr_onnx OUT_DIR
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from voiceloop.testing.tiny_funasr import CHARACTERS, SPECIAL_HEAD, TINY, build_paraformer, build_punc

SEACO_VOCAB = 8404  # the real vocabulary's size: the export assumes ids 8377 and 8403 exist
SEACO_ONNX = {
    **TINY,
    "dim": 512,
    "units": 128,
    "encoder_blocks": 2,
    "decoder_blocks": 1,
    "seaco_blocks": 6,
    "seaco_units": 128,
    "vocab": SEACO_VOCAB,
}


@dataclass(frozen=True)
class TinyOnnxModels:
    paraformer: Path
    seaco: Path
    punc: Path


def cjk_vocabulary(size: int = 0) -> list[str]:
    """`tiny_funasr`'s characters first (hotword tests spell with them), then more CJK
    characters up to `size` tokens in all; `<unk>` last."""
    known = list(dict.fromkeys(CHARACTERS))
    tokens = SPECIAL_HEAD + known
    if size:
        seen = set(known)
        fill = (chr(c) for c in range(0x4E00, 0x9FA6) if chr(c) not in seen)
        tokens += [next(fill) for _ in range(size - len(tokens) - 1)]
    return tokens + ["<unk>"]


def build_models(root: Path) -> TinyOnnxModels:
    """The three model directories with their PyTorch weights (not yet exported)."""
    import funasr  # noqa: F401  (fills FunASR's class registry)

    return TinyOnnxModels(
        paraformer=build_paraformer(root / "paraformer", seaco=False, tokens=cjk_vocabulary()),
        seaco=build_paraformer(
            root / "seaco", seaco=True, shape=SEACO_ONNX, tokens=cjk_vocabulary(SEACO_VOCAB)
        ),
        punc=build_punc(root / "punc"),
    )


def build_and_export(root: Path, quantize: bool = True) -> TinyOnnxModels:
    """Built and exported (fp32, and int8 with `quantize`), unless a previous call did."""
    from voiceloop.asr.onnx_export import export

    built = TinyOnnxModels(root / "paraformer", root / "seaco", root / "punc")
    suffix = "_quant" if quantize else ""
    if all((path / f"model{suffix}.onnx").is_file() for path in vars(built).values()):
        return built
    built = build_models(root)
    for path in vars(built).values():
        export(str(path), quantize=quantize, ncpu=1)
    return built


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write random-init FunASR model dirs exported to ONNX.")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    for name, path in vars(build_and_export(args.out)).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
