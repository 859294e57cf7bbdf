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

from voiceloop.engine.events import SpeechEnded, SpeechPaused, StageFailed, Transcript

_WORD = re.compile(r"[\w'-]+", re.UNICODE)
# Whole answers that happen to end on a particle that usually leaves a phrase open ("的").
_COMPLETE_ENDINGS = ("好的", "是的", "对的")
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
    if stripped.endswith(_COMPLETE_ENDINGS):
        return False
    return any(ending and not ending.isascii() and stripped.endswith(ending) for ending in endings)


def is_backchannel(text: str, backchannels: frozenset[str]) -> bool:
    """Only backchannel or filler words ("mhm", "yeah okay", "嗯"), or no words at all."""
    stripped = _TRAILING.sub("", text.strip().lower())
    words = _WORD.findall(stripped)
    return all(word in backchannels for word in words) or stripped in backchannels


class HeldUtterance:
    """With a turn detector: the utterance a VAD stop ended, while the detector judges it, and
    the earlier parts of an utterance the user talked on after (joined in front of the next).

    Each stop is numbered (`ask`): a verdict on a stop the user talked through is stale. The
    machine asks `decide` what a verdict or an early transcript means: the reason the turn
    ends now (`detector`, `silence` when the detector failed), or None to keep listening.
    """

    def __init__(self, ceiling_s: float, endings: frozenset[str]) -> None:
        self.ceiling_s = ceiling_s
        self.endings = endings
        self.prefix: SpeechEnded | None = None
        self.held: SpeechEnded | None = None
        self.ask = 0
        self.ceiling_at = 0.0
        self.waits_text = False  # "complete", to be checked against the early transcript

    def take(self, part: SpeechEnded) -> SpeechEnded:
        """The whole utterance `part` ends, its earlier parts in front; no part is kept."""
        ended, self.prefix = join(self.prefix, part), None
        return ended

    def paused(self, paused: SpeechPaused) -> SpeechPaused:
        return join_paused(self.prefix, paused)

    def hold(self, part: SpeechEnded) -> SpeechEnded:
        """A VAD stop to be judged: held until a verdict or the silence ceiling ends it."""
        self.held = self.take(part)
        self.ask += 1
        self.ceiling_at = self.held.at + self.ceiling_s
        self.waits_text = False
        return self.held

    def go_on(self) -> None:
        """The user spoke again before the stop was judged the end: it was a pause."""
        self.prefix, self.held = self.held, None
        self.ask += 1  # a verdict still on its way is about a stop that no longer matters
        self.waits_text = False

    def verdict(
        self, ask: int, complete: bool, error: str | None, early: Transcript | StageFailed | None
    ) -> str | None:
        if self.held is None or ask != self.ask:
            return None
        if error is not None:
            return "silence"  # no judgement: the window decides, as with no detector
        if not complete:
            return None  # keep listening: the next stop asks again, the ceiling ends it anyway
        if not self.endings:
            return "detector"
        if early is None:
            self.waits_text = True  # the words are on their way, and the reply needs them anyway
            return None
        return self.words(early)

    def words(self, early: Transcript | StageFailed) -> str | None:
        self.waits_text = False
        if isinstance(early, Transcript) and ends_incomplete(early.text, self.endings):
            return None  # "set a timer for": the audio model was sure, the words are not
        return "detector"

    def due(self, at: float) -> bool:
        return self.held is not None and at >= self.ceiling_at

    def release(self) -> SpeechEnded:
        held, self.held = self.held, None
        assert held is not None
        self.waits_text = False
        return held
