"""Each wake-word provider's options: `[wake.micro]`. Only pydantic here (the settings import it)."""

from __future__ import annotations

from pydantic import Field, field_validator

from voiceloop.adapter_options import AdapterOptions


class MicroWakeOptions(AdapterOptions):
    # A word fires when the mean of its model's last `sliding_window` probabilities (one per
    # 30 ms stride) exceeds its cut-off, as ESPHome's micro_wake_word decides. Per word, first
    # found wins: `cutoffs` / `sliding_windows` here, then `probability_cutoff` (every word),
    # then the pair voiceloop measured for that model (`micro.py` MEASURED), then the model's
    # own manifest (cut-offs 0.85-0.97, window 5). A lower cut-off catches more accented or
    # quiet speakers at the cost of false wakes; a shorter window fires sooner after the word
    # but judges fewer strides (`scripts/wake_margin.py` measures both on the kiosk corpus).
    probability_cutoff: float | None = Field(None, gt=0, lt=1, description="None = per word")
    cutoffs: dict[str, float] = Field(default_factory=dict, description="word -> cut-off")
    sliding_windows: dict[str, int] = Field(default_factory=dict, description="word -> strides")
    # While the speaker plays (within the echo tail) the word reaches the model through the
    # canceller's residual and scores lower: its cut-off there (else the measured one, else
    # the same as without playback).
    cutoffs_over_playback: dict[str, float] = Field(default_factory=dict, description="word -> cut-off")
    # The model's probability stays over the cut-off for several strides around one word:
    # one detection, then deaf to that word this long.
    refractory_s: float = Field(1.5, ge=0.1, le=10.0)

    @field_validator("cutoffs", "cutoffs_over_playback")
    @classmethod
    def _cutoffs_in_range(cls, cutoffs: dict[str, float]) -> dict[str, float]:
        for word, cutoff in cutoffs.items():
            if not 0 < cutoff < 1:
                raise ValueError(f"wake.micro.cutoffs.{word} = {cutoff}: a cut-off lies between 0 and 1")
        return cutoffs

    @field_validator("sliding_windows")
    @classmethod
    def _windows_in_range(cls, windows: dict[str, int]) -> dict[str, int]:
        for word, window in windows.items():
            if not 1 <= window <= 20:
                raise ValueError(f"wake.micro.sliding_windows.{word} = {window}: 1 to 20 strides")
        return windows
