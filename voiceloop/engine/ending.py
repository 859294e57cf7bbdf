"""How an utterance's parts join, and the transcript's word on whether a turn is over.

Pure helpers for the machine's end-of-turn rules: when the turn detector says "not yet" and
the user goes on, the parts are one utterance (`join`); when it says "complete" but the words
so far end on "for", "the", "um" or "的", the words win (`ends_incomplete`): espeak's flat
prosody fools the audio model on exactly those ("I would like to book a table for": 0.91).
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from voiceloop.engine.events import SpeechEnded, SpeechPaused

_WORD = re.compile(r"[\w'-]+", re.UNICODE)
_TRAILING = re.compile(r"[\s.,!?;:…，。！？；：、\"'()]+$")


def join(before: SpeechEnded | None, part: SpeechEnded) -> SpeechEnded:
    """`part` with the earlier parts of the same utterance in front: their audio first (each
    with its pre-roll and trailing silence, so the pause is heard), their onset as its own."""
    if before is None:
        return part
    return replace(part, started_at=before.started_at, audio=np.concatenate([before.audio, part.audio]))


def join_paused(before: SpeechEnded | None, paused: SpeechPaused) -> SpeechPaused:
    if before is None:
        return paused
    return replace(paused, started_at=before.started_at, audio=np.concatenate([before.audio, paused.audio]))


def ends_incomplete(text: str, endings: frozenset[str]) -> bool:
    """True when `text` ends on one of `endings`: a word (Latin scripts, case-blind) or, for
    scripts written without spaces, a trailing particle ("的", "那个")."""
    stripped = _TRAILING.sub("", text.strip().lower())
    if not stripped:
        return False
    words = _WORD.findall(stripped)
    if words and words[-1] in endings:
        return True
    return any(ending and not ending.isascii() and stripped.endswith(ending) for ending in endings)


def is_backchannel(text: str, backchannels: frozenset[str]) -> bool:
    """Only backchannel or filler words ("mhm", "yeah okay", "嗯"), or no words at all."""
    stripped = _TRAILING.sub("", text.strip().lower())
    words = _WORD.findall(stripped)
    return all(word in backchannels for word in words) or stripped in backchannels
