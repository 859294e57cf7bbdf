"""The scripted user of the virtual room: what they say, in which voice, and when.

A TOML file, e.g. `voiceloop/configs/demo-script.toml`:

    voice = "en-us+m3"        # espeak-ng voice of the user (the assistant has its own)
    rate_wpm = 165

    [[turns]]
    say = "what time is it"   # or: wav = "question.wav"
    pause_ms = 800            # silence after the assistant's last reply before speaking

    [[turns]]
    say = "stop"
    interrupt_after_ms = 600  # talk over the reply, this long after it starts playing

    [[turns]]                 # natural speech: a pause inside the line, a filler
    say = ["set a timer for", {pause_ms = 700}, "um, five minutes"]
    kind = "paused"           # what the line is for in bench_turns.py (default: from its shape)

    [[turns]]
    say = "mhm"
    during_reply_ms = 900     # the same as interrupt_after_ms: spoken over the reply
    kind = "backchannel"

    [[turns]]                 # kiosk mode (loop.wake): the wake word, a pause, the request
    wake = "okay nabu"
    say = "what time is it"

    [[turns]]                 # someone walking past: no turn may come of it
    say = "did you see the game last night"
    passer_by = true
    reply_timeout_ms = 1500   # nobody waits for an answer
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from voiceloop.config.settings import ConfigError, format_validation_error

TurnKind = Literal["complete", "paused", "backchannel", "interruption"]


def _is_cjk(char: str) -> bool:
    return "\u3000" <= char <= "\u9fff" or "\uff00" <= char <= "\uffef"


class Pause(BaseModel):
    """Silence inside a line: the user stops mid-sentence and goes on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pause_ms: int = Field(gt=0, le=10_000)


class ScriptTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Text, or pieces of text with pauses between them (fillers are just words: "um", "so").
    say: str | tuple[str | Pause, ...] | None = None
    wav: Path | None = None
    cough_ms: int | None = Field(None, gt=0, le=2000, description="a cough-like burst, no words")
    noise_ms: int | None = Field(None, gt=0, le=10_000, description="a burst of broadband noise")
    drop_ms: int | None = Field(None, gt=0, le=600_000, description="the device vanishes this long")
    clipped: bool = Field(False, description="the line arrives 20 dB too hot, hard-clipped")
    expected: str | None = None  # what ASR should hear; defaults to `say`
    pause_ms: int = Field(800, ge=0)
    # Talk over the reply, this long after it starts playing; `during_reply_ms` is the same
    # key under the name the turn-taking corpus uses (backchannels and interruptions alike).
    interrupt_after_ms: int | None = Field(
        None, ge=0, validation_alias=AliasChoices("interrupt_after_ms", "during_reply_ms")
    )
    kind: TurnKind | None = Field(None, description="what the line tests; None = from its shape")
    # Kiosk mode: the wake word said first ("okay nabu"), then `wake_pause_ms` of silence, then
    # `say`; what ASR should hear (`expected`) is `say` alone.
    wake: str | None = None
    wake_pause_ms: int = Field(500, ge=0, le=5000)
    passer_by: bool = Field(False, description="not said to the assistant: no turn may come of it")
    # How long the user waits for a reply to the previous line before saying this one anyway.
    reply_timeout_ms: int = Field(12_000, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> ScriptTurn:
        sources = (self.say, self.wav, self.cough_ms, self.noise_ms, self.drop_ms)
        if sum(source is not None for source in sources) != 1:
            raise ValueError(
                "each turn needs exactly one of 'say', 'wav', 'cough_ms', 'noise_ms' or 'drop_ms'"
            )
        if self.wake is not None and self.say is None:
            raise ValueError("'wake' goes before a 'say': the wake word, then the request")
        if isinstance(self.say, tuple):
            if not any(isinstance(part, str) and part.strip() for part in self.say):
                raise ValueError("'say' as a list needs at least one piece of text")
        return self

    @property
    def text_parts(self) -> tuple[str | Pause, ...]:
        """The spoken line as pieces; a plain string is one piece."""
        if self.say is None:
            return ()
        return (self.say,) if isinstance(self.say, str) else self.say

    @property
    def spoken_text(self) -> str:
        """The words of `say`, pauses left out (Chinese pieces join with no space)."""
        text = ""
        for piece in (p.strip() for p in self.text_parts if isinstance(p, str) and p.strip()):
            text += piece if not text or (_is_cjk(text[-1]) and _is_cjk(piece[0])) else " " + piece
        return text

    @property
    def pause_count(self) -> int:
        return sum(isinstance(part, Pause) for part in self.text_parts)

    @property
    def turn_kind(self) -> TurnKind:
        """`kind` as given, else from the shape: a pause inside makes it 'paused', a line over
        the reply an 'interruption', anything else 'complete'."""
        if self.kind is not None:
            return self.kind
        if self.pause_count:
            return "paused"
        if self.interrupt_after_ms is not None:
            return "interruption"
        return "complete"

    @property
    def expected_text(self) -> str:
        return self.expected if self.expected is not None else self.spoken_text

    @property
    def is_speech(self) -> bool:
        return self.say is not None or self.wav is not None


class UserScript(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voice: str = "en-us+m3"
    rate_wpm: int = Field(165, ge=80, le=450)
    tail_ms: int = Field(1500, ge=0, description="listen this long after the last reply")
    max_session_s: float = Field(300.0, gt=0, description="end the room regardless, after this")
    turns: list[ScriptTurn] = Field(min_length=1)


def load_script(path: str | Path) -> UserScript:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"script file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        script = UserScript.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from None
    for turn in script.turns:
        if turn.wav is not None and not turn.wav.is_absolute():
            turn.wav = path.parent / turn.wav
    return script
