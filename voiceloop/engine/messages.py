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


def error_notice(stage: Stage, *, reply_began: bool) -> str | None:
    """What the assistant says after `stage` failed, or None when nothing can be said.

    The one rule for spoken errors, used by the machine (a failure before any reply) and by a
    reply (a failure in the middle of one): a failed voice cannot speak its own apology, so a
    TTS failure is only printed; a reply of which some audio was already queued says it was
    cut off rather than that the stage is not answering.
    """
    if stage is Stage.TTS:
        return None
    return CUT_OFF_NOTICE if reply_began else SPOKEN_ERRORS[stage]
