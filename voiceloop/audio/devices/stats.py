"""What went wrong on the audio thread, counted there without a lock or an allocation and
read by the loop for the session log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class StreamStats:
    """What the callback counts; plain ints and a preallocated array it overwrites."""

    callbacks: int = 0  # both directions' callbacks (separate streams count one each)
    input_overruns: int = 0  # mic blocks dropped: the loop did not take them in time
    output_underruns: int = 0  # speaker blocks played as silence: the loop was late
    startup_underruns: int = 0  # ...of which before the loop queued its first block
    output_overruns: int = 0  # speaker blocks dropped: the queue was full
    device_input_overflows: int = 0  # PortAudio's own flags: the device lost input
    device_output_underflows: int = 0  # ...or had nothing to play
    process_freezes: int = 0  # the loop woke long after it was due (duplex.LATE_WAKE_S)
    cost_ns: np.ndarray = field(default_factory=lambda: np.zeros(16_384, dtype=np.int64))
    cost_max_ns: int = 0

    @property
    def xruns(self) -> int:
        """Dropped mic blocks and speaker underruns after start-up: what a user would hear."""
        return self.input_overruns + self.output_underruns - self.startup_underruns

    def record_cost(self, elapsed_ns: int) -> None:
        """Two callback threads (PyAudio's separate streams) may race here; a lost sample in
        a statistic is harmless, a lock in a callback is not."""
        self.cost_ns[self.callbacks % self.cost_ns.size] = elapsed_ns
        self.callbacks += 1
        self.cost_max_ns = max(self.cost_max_ns, elapsed_ns)

    def cost_summary_us(self) -> dict[str, float]:
        count = min(self.callbacks, self.cost_ns.size)
        if count == 0:
            return {"median": 0.0, "p99": 0.0, "max": 0.0}
        costs = self.cost_ns[:count] / 1000
        return {
            "median": round(float(np.median(costs)), 1),
            "p99": round(float(np.percentile(costs, 99)), 1),
            "max": round(self.cost_max_ns / 1000, 1),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "callbacks": self.callbacks,
            "input_overruns": self.input_overruns,
            "output_underruns": self.output_underruns,
            "startup_underruns": self.startup_underruns,
            "output_overruns": self.output_overruns,
            "device_input_overflows": self.device_input_overflows,
            "device_output_underflows": self.device_output_underflows,
            "process_freezes": self.process_freezes,
            "callback_cost_us": self.cost_summary_us(),
        }
