"""Provider `smart-turn`: Daily's Smart Turn v3.2 (int8 ONNX, Whisper-tiny encoder, BSD-2-Clause).

It hears the last 8 s of a turn as Whisper log-mel features and returns P(turn complete); it
judges intonation and words together, and needs ~200 ms of trailing silence to be sure
(measured: P 0.05 → 0.82 from 50 to 200 ms). Its cost does not depend on the utterance length
(the input is always 800 frames). onnxruntime only: no torch, no transformers.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.turn import models
from voiceloop.turn.base import TurnError, TurnVerdict
from voiceloop.turn.features import smart_turn_features
from voiceloop.turn.options import SmartTurnOptions

__all__ = ["SmartTurnDetector", "SmartTurnOptions", "create", "fast_int8_saturates", "from_spec"]


class SmartTurnDetector:
    name = "smart-turn"

    def __init__(self, options: SmartTurnOptions | None = None) -> None:
        self.options = options or SmartTurnOptions()
        path = models.resolve(self.options.model_path)
        import onnxruntime as ort

        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = self.options.threads
        session_options.inter_op_num_threads = 1
        session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session_options.log_severity_level = 3
        if not self.options.spinning:
            session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        exact = self.options.exact_int8
        if exact if exact is not None else fast_int8_saturates():
            session_options.add_session_config_entry("session.x64quantprecision", "1")
        try:
            self._session: Any = ort.InferenceSession(
                str(path), session_options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 (onnxruntime raises its own, unexported types)
            raise TurnError(
                f"cannot load the Smart Turn model {path}: {type(exc).__name__}: {exc}; "
                f"run `{models.DOWNLOAD_COMMAND}` again"
            ) from None
        self._input = self._session.get_inputs()[0].name

    def predict(self, audio: np.ndarray) -> TurnVerdict:
        started = time.perf_counter()
        session = self._session  # one read: `close` from another thread cannot pull it mid-call
        if session is None:
            raise TurnError("the Smart Turn detector is closed")
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        features = smart_turn_features(np.nan_to_num(audio), self.options.max_audio_s)
        (probabilities,) = session.run(["logits"], {self._input: features})
        probability = float(np.clip(probabilities.reshape(-1)[0], 0.0, 1.0))
        return TurnVerdict(
            probability=probability,
            complete=probability > self.options.threshold,
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )

    def warm_up(self) -> None:
        """The first run allocates onnxruntime's buffers (tens of ms); pay it before a user waits."""
        self.predict(np.zeros(SAMPLE_RATE, np.float32))

    def close(self) -> None:
        self._session = None


def fast_int8_saturates(cpuinfo: str | None = None, machine: str | None = None) -> bool:
    """Whether onnxruntime's fast int8 kernel would round this model's answers: on x86-64 without
    VNNI (AVX2's vpmaddubsw adds pairs of u8 x s8 products into 16 bits). Elsewhere (ARM, or
    a CPU with AVX-VNNI or AVX512-VNNI) the fast kernel is exact and the setting would only
    slow it down. Linux reads the flags from /proc/cpuinfo; where they cannot be read, no."""
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        return False
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags = next(
        (line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), None
    )
    if flags is None:
        return False
    return "avx2" in flags and not {"avx512_vnni", "avx_vnni"} & set(flags)


def create(
    options: SmartTurnOptions | Mapping[str, Any] | None = None, **overrides: Any
) -> SmartTurnDetector:
    """Registry factory: options as the model, as a plain mapping (a TOML table), or none."""
    if isinstance(options, SmartTurnOptions):
        base = options.model_dump()
    elif options is None:
        base = {}
    elif isinstance(options, Mapping):
        base = dict(options)
    else:
        raise TurnError(
            f"smart-turn options must be SmartTurnOptions or a mapping, not {type(options).__name__}"
        )
    try:
        resolved = SmartTurnOptions(**{**base, **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TurnError(f"smart-turn options: {problems}") from None
    return SmartTurnDetector(resolved)


def from_spec(options: SmartTurnOptions, shared: object) -> SmartTurnDetector:
    """Registry factory (`turn.smart-turn`): its own table's options; the shared `[turn]` keys are
    the engine's, not the detector's."""
    return SmartTurnDetector(options)
