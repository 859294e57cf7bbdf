"""No echo cancellation: for headsets, and for measuring what a real canceller buys."""

from __future__ import annotations

import numpy as np


class PassthroughCanceller:
    name = "none"
    output_delay_samples = 0
    warmup_s = 0.0

    def __init__(self, **_: object) -> None:
        pass

    def process(self, mic_frame: np.ndarray, reference_frame: np.ndarray) -> np.ndarray:
        return mic_frame

    def reset(self) -> None:
        pass


def create(options: object, aec: object, **_: object) -> PassthroughCanceller:
    return PassthroughCanceller()
