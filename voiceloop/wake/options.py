"""Each wake-word provider's options: `[wake.micro]`. Only pydantic here (the settings import it)."""

from __future__ import annotations

from pydantic import Field

from voiceloop.adapter_options import AdapterOptions


class MicroWakeOptions(AdapterOptions):
    # The models' own cut-offs (0.85-0.97, shipped beside each .tflite) unless set here: lower
    # catches more accented or quiet speakers at the cost of false wakes.
    probability_cutoff: float | None = Field(None, gt=0, lt=1, description="None = the model's own")
    # The model's probability stays over the cut-off for several strides around one word:
    # one detection, then deaf to that word this long.
    refractory_s: float = Field(1.5, ge=0.1, le=10.0)
