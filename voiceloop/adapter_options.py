"""The base of every adapter's options model (`[asr.paraformer]`, `[tts.edge]`, a plugin's).

Kept apart from the settings so an adapter's options module (and a third-party one) can
import it without pulling in the whole settings model (nor the settings import it back).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AdapterOptions(BaseModel):
    """Unknown keys are errors, as everywhere in the config: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NoOptions(AdapterOptions):
    """For adapters with nothing to configure; their table, if written, must stay empty."""
