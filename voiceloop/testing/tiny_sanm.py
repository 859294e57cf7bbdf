"""The SANM decoder's config that the tiny offline and streaming Paraformers share."""

from __future__ import annotations

from typing import Any


def sanm_decoder_conf(blocks: int, units: int, shift: int) -> dict[str, Any]:
    """ParaformerSANMDecoder's config; `shift` (FunASR's `sanm_shfit`): 0 offline, 5 streaming."""
    dropouts = (
        "dropout_rate",
        "positional_dropout_rate",
        "self_attention_dropout_rate",
        "src_attention_dropout_rate",
    )
    return {
        "attention_heads": 4,
        "linear_units": units,
        "num_blocks": blocks,
        **dict.fromkeys(dropouts, 0.1),
        "att_layer_num": blocks,
        "kernel_size": 11,
        "sanm_shfit": shift,
    }
