"""What the assistant says when a stage fails: short, calm, and free of technical detail (the
detail goes to the console and the session log)."""

from __future__ import annotations

from voiceloop.engine.events import Stage

SPOKEN_ERRORS = {
    Stage.ASR: "Sorry, I could not transcribe that.",
    Stage.LLM: "Sorry, the language model is not answering right now.",
    Stage.TTS: "Sorry, my voice failed.",
    Stage.AUDIO: "Sorry, something went wrong.",
}
CUT_OFF_NOTICE = "Sorry, my answer was cut off."
