"""The CIF predictor of SeACo-Paraformer exported without ONNX Loops.

SeACo-Paraformer (`paraformer-zh`) predicts tokens with FunASR's CifPredictorV3 (CIF plus an
upsampled second CIF for timestamps). Its export class integrates-and-fires in two TorchScript
`for t in range(len_time)` loops (funasr/models/bicif_paraformer/cif_predictor.py: `cif_export`,
`cif_wo_hidden_export`), which become ONNX `Loop` nodes that onnxruntime runs one frame at a time:
one iteration per 60 ms frame and another per 20 ms upsampled frame. Profiled on the real-size
model, 10 s of audio, int8: the two loops were 13 % of the model's run time, single-threaded,
and the plain Paraformer export (CifPredictorV2) has none: FunASR exports it with `cif_v1_export`,
the same integrate-and-fire written as prefix sums.

So while voiceloop exports, `cif_export` is FunASR's own `cif_v1_export`, and the timestamp
CIF is the same prefix-sum rewrite of `cif_wo_hidden_export` (below). Both fire where the loops
fire as long as no single frame's weight reaches the threshold (each alpha is a sigmoid times
a smoothing factor, and the upsampled ones are 1/3 of a frame): the n-th fire is the first frame
whose running sum reaches n x threshold; the prefix sums are taken in float64, as
`cif_v1_export` does, so that rounding does not move a fire. tests/test_asr_onnx_cif.py holds
the rewrite to the loops on random weights, and the exported model to the tokens and
timestamps of the stock export.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _timestamp_cif() -> Any:
    import torch

    @torch.jit.script
    def cif_wo_hidden_prefix_sums(alphas: torch.Tensor, threshold: float) -> torch.Tensor:
        """What `cif_wo_hidden_export` returns, without the loop: at frame t the running sum
        less `threshold` for every fire before t (the loop subtracts it at each fire)."""
        prefix = torch.cumsum(alphas, dim=1, dtype=torch.float64)
        fired = torch.floor(prefix / threshold)  # fires up to and including each frame
        before = torch.cat([torch.zeros_like(fired[:, :1]), fired[:, :-1]], dim=1)
        return (prefix - before * threshold).to(alphas.dtype)

    return cif_wo_hidden_prefix_sums


@contextlib.contextmanager
def loop_free_cif() -> Iterator[None]:
    """CifPredictorV3Export's two integrate-and-fire loops swapped for prefix sums while FunASR
    exports; restored on the way out."""
    from funasr.models.bicif_paraformer import cif_predictor as bicif
    from funasr.models.paraformer.cif_predictor import cif_v1_export

    originals = bicif.cif_export, bicif.cif_wo_hidden_export
    bicif.cif_export, bicif.cif_wo_hidden_export = cif_v1_export, _timestamp_cif()
    try:
        yield
    finally:
        bicif.cif_export, bicif.cif_wo_hidden_export = originals
