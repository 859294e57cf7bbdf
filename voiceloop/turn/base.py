"""The turn-detector contract: the audio of a turn in, P(the speaker has finished) out.

A verdict carries its own cost (`elapsed_ms`) because the detector runs at every VAD stop,
between the user's last word and the reply, and its time is latency the user hears.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


class TurnError(RuntimeError):
    """A turn detector cannot run (bad options, a broken model file)."""


class TurnModelMissing(TurnError):
    """The model file is not on this machine; str() is one line naming the command that fetches it."""


@dataclass(frozen=True)
class TurnVerdict:
    probability: float  # P(turn complete), 0..1
    complete: bool  # probability > the detector's threshold
    elapsed_ms: float  # wall time of this decision: features + inference

    @property
    def elapsed_s(self) -> float:
        """As a recogniser reports its compute time: what a stepped clock lets the call take."""
        return self.elapsed_ms / 1000.0


@runtime_checkable
class TurnDetector(Protocol):
    name: str

    def predict(self, audio: np.ndarray) -> TurnVerdict:
        """`audio`: the turn so far, 16 kHz mono float32 in [-1, 1], ending now (its trailing
        silence included: that silence is part of what the model judges). Any length, empty
        included; blocking, so callers run it in a worker thread."""
        ...

    def warm_up(self) -> None:
        """Pays one-off costs (session start, first-run allocation) before the first real turn."""
        ...

    def close(self) -> None: ...
