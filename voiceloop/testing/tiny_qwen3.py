"""Random-init Qwen3-ASR model directories, built with qwen-asr's own configuration and model
classes and saved the way a Hugging Face download is laid out.

Tests need the real `Qwen3ASRModel.from_pretrained` → `transcribe` path (processor, chat
template, Whisper features, audio encoder, generation, output parsing) without the 1.9 GB of
weights the hubs would serve; benchmarks need the real 0.6 B shape (same compute per second
of audio and per generated token, random weights). Each builder instantiates
`Qwen3ASRForConditionalGeneration` from a `Qwen3ASRConfig`, saves it with `save_pretrained`
next to a processor (`WhisperFeatureExtractor` with 128 mel bins and a `Qwen2TokenizerFast`
wrapping a character-level BPE built with `tokenizers`), and loads it back once to prove the round
trip.

What the recipe needs (found by building it, see NOTES.md):
- the processor reads `tokenizer.audio_token` / `audio_bos_token` / `audio_eos_token`: they are
  `extra_special_tokens`; the config's `audio_token_id` is the id of `<|audio_pad|>`;
- the encoder's `output_dim` equals the text `hidden_size`; `n_window=50` (the real value);
- `rope_scaling.mrope_section` sums to `head_dim / 2`;
- generation stops only at the hard-coded EOS ids 151645/151643, which a small vocabulary never
  emits: callers keep `max_new_tokens` small.

The vocabulary is printable ASCII plus the CJK characters of `tiny_funasr.CHARACTERS`, so
whatever an untrained model emits decodes to readable text that espeak can say.

    python -m voiceloop.testing.tiny_qwen3 OUT_DIR            # OUT_DIR/qwen3-tiny
    python -m voiceloop.testing.tiny_qwen3 OUT_DIR --aligner  # and OUT_DIR/qwen3-tiny-aligner
    python -m voiceloop.testing.tiny_qwen3 OUT_DIR --large    # OUT_DIR/qwen3-0.6b: the real shape
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from voiceloop.testing.tiny_funasr import CHARACTERS

AUDIO_TOKENS = {
    "audio_token": "<|audio_pad|>",
    "audio_bos_token": "<|audio_start|>",
    "audio_eos_token": "<|audio_end|>",
}
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *AUDIO_TOKENS.values()]
ASR_TEXT_TAG = "<asr_text>"  # emitted by the model between "language X" and the text
TIMESTAMP_TOKEN = "<timestamp>"  # Qwen3-ForcedAligner: each slot's logits pick a time
TIMESTAMP_SEGMENT_MS = 80.0
# Qwen's chat template, reduced to what Qwen3ASRModel sends: a system turn (the context) and a
# user turn holding one audio placeholder.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'audio' %}{{ '<|audio_start|><|audio_pad|><|audio_end|>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Qwen3-ASR-0.6B: an 18-layer AuT encoder (d_model 896) feeding Qwen3-0.6B (28 layers of 1024,
# 16 query / 8 key-value heads of 128, vocabulary 151936): 0.78 B parameters (tied embeddings).
LARGE: dict[str, Any] = {
    "audio": {
        "encoder_layers": 18,
        "encoder_attention_heads": 14,
        "encoder_ffn_dim": 3584,
        "d_model": 896,
        "downsample_hidden_size": 480,
        "n_window_infer": 800,
    },
    "text": {
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "tie_word_embeddings": True,
        "rope_theta": 1_000_000.0,
    },
    "vocab": 151_936,
}
# At the usual initializer_range (0.02) an untrained model emits one token whatever it hears;
# large weights make its output depend on the audio, the context and the language hint, so
# tests can see each of them reach the model.
TINY: dict[str, Any] = {
    "audio": {
        "initializer_range": 2.0,
        "encoder_layers": 1,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": 32,
        "d_model": 16,
        "downsample_hidden_size": 8,
        "n_window_infer": 400,
    },
    "text": {
        "initializer_range": 2.0,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "tie_word_embeddings": True,
        "rope_theta": 1_000_000.0,
    },
    "vocab": 0,  # the tokenizer's own size
}


def build_tokenizer(pad_to: int = 0) -> Any:
    """A character-level BPE over printable ASCII, new line and a few hundred CJK characters,
    with Qwen's special tokens; filler tokens pad it to `pad_to` ids (the real vocabulary size).

    Character-level rather than Qwen's byte-level: an untrained model emits any token, and a
    lone UTF-8 byte of a CJK character would decode to U+FFFD, which nobody can say aloud."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import Qwen2TokenizerFast

    characters = ["\n", *(chr(code) for code in range(32, 127)), *CHARACTERS]
    vocab = {char: i for i, char in enumerate(dict.fromkeys(characters))}
    while len(vocab) + len(SPECIAL_TOKENS) + 1 < pad_to:
        vocab[f"<|filler_{len(vocab)}|>"] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None, fuse_unk=False))
    backend.decoder = decoders.Fuse()  # tokens are characters: join them as they are
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=SPECIAL_TOKENS,
        extra_special_tokens=AUDIO_TOKENS,
        chat_template=CHAT_TEMPLATE,
    )
    tokenizer.add_tokens([ASR_TEXT_TAG, TIMESTAMP_TOKEN])
    return tokenizer


def build(directory: Path, shape: dict[str, Any] = TINY, seed: int = 0, aligner: bool = False) -> Path:
    """Writes a Qwen3-ASR directory that `Qwen3ASRModel.from_pretrained` loads; returns it.
    `aligner`: a Qwen3-ForcedAligner instead (the same classes, plus the timestamp token and
    slot length that `Qwen3ForcedAligner` reads from the config)."""
    import torch
    from qwen_asr.core.transformers_backend import (
        Qwen3ASRConfig,
        Qwen3ASRForConditionalGeneration,
        Qwen3ASRProcessor,
    )
    from transformers import WhisperFeatureExtractor

    tokenizer = build_tokenizer(pad_to=shape["vocab"])
    vocab_size = max(shape["vocab"], len(tokenizer))
    text = dict(shape["text"])
    half = text["head_dim"] // 2
    # the real model's [24, 20, 20] for head_dim 128, scaled down for smaller heads
    section = [half - 2 * (half * 20 // 64), half * 20 // 64, half * 20 // 64]
    text["rope_scaling"] = {"rope_type": "default", "mrope_section": section, "interleaved": True}
    audio = {**shape["audio"], "num_mel_bins": 128, "n_window": 50, "output_dim": text["hidden_size"]}
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in AUDIO_TOKENS.items()}
    config = Qwen3ASRConfig(
        thinker_config={
            "audio_config": audio,
            "text_config": {**text, "vocab_size": vocab_size, "pad_token_id": tokenizer.pad_token_id},
            "audio_token_id": ids["audio_token"],
            "audio_start_token_id": ids["audio_bos_token"],
        },
        support_languages=["Chinese", "English"],
        **(
            {
                "timestamp_token_id": tokenizer.convert_tokens_to_ids(TIMESTAMP_TOKEN),
                "timestamp_segment_time": TIMESTAMP_SEGMENT_MS,
            }
            if aligner
            else {}
        ),
    )
    torch.manual_seed(seed)
    model = Qwen3ASRForConditionalGeneration(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    processor = Qwen3ASRProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(directory)
    (directory / "voiceloop-tiny.json").write_text(
        json.dumps({"seed": seed, "parameters": sum(p.numel() for p in model.parameters())}) + "\n"
    )
    return directory


def build_once(root: Path, large: bool = False, aligner: bool = False) -> Path:
    """The model (or aligner) under `root`, built on first use (tests share one per session)."""
    directory = root / (("qwen3-0.6b" if large else "qwen3-tiny") + ("-aligner" if aligner else ""))
    if not (directory / "voiceloop-tiny.json").is_file():
        build(directory, LARGE if large else TINY, aligner=aligner)
    return directory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--large", action="store_true", help="the real Qwen3-ASR-0.6B shape")
    parser.add_argument("--aligner", action="store_true", help="a Qwen3-ForcedAligner too")
    args = parser.parse_args(argv)
    print(build_once(args.out, args.large))
    if args.aligner:
        print(build_once(args.out, args.large, aligner=True))


if __name__ == "__main__":
    main()
