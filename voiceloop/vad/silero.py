"""silero-vad through onnxruntime, straight from the model file the package ships.

The `silero_vad` package's own wrapper imports torch (seconds of start-up and ~1 GB); the
ONNX model only needs onnxruntime. Silero v5 expects each 512-sample chunk prefixed with the
last 64 samples of the previous one, and carries an RNN state between calls.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

CHUNK_SAMPLES = 512
CONTEXT_SAMPLES = 64


class VadError(RuntimeError):
    pass


def packaged_model_path() -> Path:
    """Finds silero_vad.onnx inside the installed package without importing it (and torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise VadError("silero-vad is not installed: pip install silero-vad")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad.onnx"
    if not path.exists():
        raise VadError(f"silero-vad's ONNX model is missing at {path}; reinstall silero-vad")
    return path


class SileroVad:
    name = "silero"
    chunk_samples = CHUNK_SAMPLES

    def __init__(self, model_path: Path | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # 0.4 ms per chunk; more threads only add contention
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(model_path or packaged_model_path()), options, providers=["CPUExecutionProvider"]
        )
        self._sr = np.array(16_000, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)

    def speech_probability(self, chunk: np.ndarray) -> float:
        if chunk.shape != (CHUNK_SAMPLES,):
            raise VadError(f"silero needs {CHUNK_SAMPLES}-sample chunks, got {chunk.shape}")
        window = np.concatenate([self._context, chunk.astype(np.float32, copy=False)])
        output, self._state = self._session.run(
            None, {"input": window[None, :], "state": self._state, "sr": self._sr}
        )
        self._context = window[-CONTEXT_SAMPLES:]
        return float(output[0, 0])


def create(options: object, vad: object, **_: object) -> SileroVad:
    return SileroVad()
