"""`[wake]`: which wake-word provider listens while the loop is asleep (`[wake.micro]` its options).

The words and the attention window are the loop's rules, in `[loop]` (`wake`, `attention_s`,
`wake_confirm`): this section only says what hears them.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from voiceloop.config.stage import StageSection
from voiceloop.wake.options import MicroWakeOptions


class WakeSettings(StageSection):
    kind: ClassVar[str] = "wake"

    name: str = Field("micro", description="micro (pymicro-wakeword) | a plugin's name")
    micro: MicroWakeOptions = MicroWakeOptions()


class WakeLoopKeys(BaseModel):
    """The wake-word keys of `[loop]` (kept here so the settings module stays small): with words
    named, the loop sleeps until one is heard, then listens for `attention_s` after each reply."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    wake: str | list[str] = Field(
        default_factory=list, description='wake word(s), e.g. "okay_nabu"; empty = always awake'
    )
    attention_s: float = Field(
        8.0, gt=0, le=600, description="after the word or a reply, follow-ups need no word this long"
    )
    # A chime plays through the speaker into the echo canceller: measured here, a tonal chime
    # before speex had converged mis-trained it and the first reply's echo barged in. So none.
    wake_confirm: Literal["chime", "none"] = Field("none", description="what the loop does on waking")

    @field_validator("wake")
    @classmethod
    def _words(cls, value: str | list[str]) -> list[str]:
        words = value.split(",") if isinstance(value, str) else value
        return [word.strip() for word in words if word.strip()]

    @property
    def wake_words(self) -> tuple[str, ...]:
        return tuple(self.wake) if isinstance(self.wake, list) else (self.wake,)
