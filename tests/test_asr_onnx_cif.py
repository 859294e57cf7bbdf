"""SeACo-Paraformer's CIF predictor exported as prefix sums instead of FunASR's frame-by-frame
loops (voiceloop/asr/onnx_cif.py): it must fire where the loops fire, and the exported model
must decode what the stock export decodes, tokens and timestamps."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.testing.tiny_funasr_onnx import TinyOnnxModels, build_and_export
from voiceloop.tts.espeak import render

pytest.importorskip("funasr_onnx", reason="funasr-onnx is not installed (scripts/setup.sh --test)")

TIMESTAMP_THRESHOLD = 1.0 - 1e-4  # what CifPredictorV3Export passes its timestamp CIF
PEAK = 1.0 - 1e-4  # where funasr-onnx's time_stamp_lfr6_onnx reads a fire


def random_alphas(generator, frames: int, scale: float):
    import torch

    # A sigmoid's output times a smoothing factor, as the predictor makes them: in [0, scale).
    return torch.sigmoid(torch.randn(1, frames, generator=generator) * 3) * scale


def test_the_prefix_sum_cifs_fire_where_funasrs_loops_fire():
    import torch
    from funasr.models.bicif_paraformer.cif_predictor import cif_export, cif_wo_hidden_export
    from funasr.models.paraformer.cif_predictor import cif_v1_export

    from voiceloop.asr.onnx_cif import _timestamp_cif

    timestamp_cif = _timestamp_cif()
    generator = torch.Generator().manual_seed(0)
    fires_compared = 0
    for frames in (1, 7, 60, 167, 500, 1500):
        for scale in (0.05, 0.3, 0.6, 0.95):
            alphas = random_alphas(generator, frames, scale)
            looped = cif_wo_hidden_export(alphas, TIMESTAMP_THRESHOLD)
            summed = timestamp_cif(alphas, TIMESTAMP_THRESHOLD)
            assert torch.equal(looped > PEAK, summed > PEAK)
            assert torch.allclose(looped, summed, atol=1e-4)
            fires_compared += int((looped > PEAK).sum())

            hidden = torch.randn(1, frames, 16, generator=generator)
            looped_frames, _ = cif_export(hidden, alphas, 1.0)
            summed_frames, _ = cif_v1_export(hidden, alphas, 1.0)
            assert looped_frames.shape == summed_frames.shape
            # float32 prefix sums drift with length (measured: 1.5e-5 at 167 frames, 10 s;
            # 1.7e-4 at 1500, 90 s, on values ~0.6); int8 moves these embeddings by ~1e-2.
            assert torch.allclose(looped_frames, summed_frames, atol=5e-4)
    assert fires_compared > 1000


def test_the_loops_are_restored_after_an_export():
    from funasr.models.bicif_paraformer import cif_predictor as bicif

    from voiceloop.asr.onnx_cif import loop_free_cif

    before = bicif.cif_export, bicif.cif_wo_hidden_export
    with loop_free_cif():
        assert bicif.cif_export is not before[0] and bicif.cif_wo_hidden_export is not before[1]
    assert (bicif.cif_export, bicif.cif_wo_hidden_export) == before


@pytest.mark.slow
def test_seaco_exports_without_loops_and_decodes_what_the_stock_export_decodes(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
):
    import onnx

    from voiceloop.asr.onnx_export import export
    from voiceloop.asr.paraformer_onnx import ParaformerOnnxRecognizer

    models: TinyOnnxModels = build_and_export(tmp_path_factory.getbasetemp() / "tiny-funasr-onnx")
    stock = tmp_path / "seaco-stock"
    shutil.copytree(models.seaco, stock, ignore=shutil.ignore_patterns("*.onnx"))
    export(str(stock), quantize=False, ncpu=1, loop_free=False)

    def loops(directory: Path) -> int:
        graph = onnx.load(str(directory / "model.onnx"), load_external_data=False).graph
        return sum(node.op_type == "Loop" for node in graph.node)

    assert loops(stock) == 3 and loops(models.seaco) == 0

    ours = ParaformerOnnxRecognizer(str(models.seaco), quantize=False, threads=1)
    theirs = ParaformerOnnxRecognizer(str(stock), quantize=False, threads=1)
    rng = np.random.default_rng(1)
    tokens = 0
    for sentence in ("what time is it", "set a timer for five minutes", "turn off the kitchen lights"):
        pad = np.zeros(SAMPLE_RATE // 3, np.float32)
        audio = np.concatenate([pad, render(sentence, "en-us"), pad])
        audio += (rng.standard_normal(len(audio)) * 1e-3).astype(np.float32)
        heard, expected = ours.recognize_raw(audio, []), theirs.recognize_raw(audio, [])
        assert heard.text == expected.text
        assert heard.timestamps == expected.timestamps
        tokens += len(heard.timestamps)
    assert tokens > 10
