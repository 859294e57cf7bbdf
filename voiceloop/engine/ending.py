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

    Each question is numbered (`ask`): a verdict on a stop the user talked through is stale.
    The question may be put at the pause, inside the stop window (the audio padded with the
    silence the window would add), so that a clear verdict is there by the stop; and again
    every `reask_s` of further silence, since the model grows surer as silence goes on. The
    machine asks `verdict` / `words` what an answer or an early transcript means: the reason
    the turn ends now (`detector`, `silence` when the detector failed), or None to keep
    listening.
    """

    def __init__(self, ceiling_s: float, endings: frozenset[str], reask_s: float = 0.0) -> None:
        self.ceiling_s = ceiling_s
        self.endings = endings
        self.reask_s = reask_s
        self.prefix: SpeechEnded | None = None
        self.held: SpeechEnded | None = None
        self.ask = 0
        self.ceiling_at = 0.0
        self.waits_text = False  # "complete", to be checked against the early transcript
        self.asked_at_pause = False  # the question for the coming stop is out already
        self.in_flight = False
        self.early: tuple[bool, str | None] | None = None  # its answer, come before the stop
        self.next_ask_at = 0.0

    def ask_at_pause(self) -> int:
        self.ask += 1
        self.asked_at_pause, self.in_flight, self.early = True, True, None
        return self.ask

    def talked_on(self) -> None:
        """Speech again inside the stop window: the question put at the pause is moot."""
        self.ask += 1
        self.asked_at_pause, self.in_flight, self.early = False, False, None

    def take(self, part: SpeechEnded) -> SpeechEnded:
        """The whole utterance `part` ends, its earlier parts in front; no part is kept."""
        ended, self.prefix = join(self.prefix, part), None
        return ended

    def paused(self, paused: SpeechPaused) -> SpeechPaused:
        return join_paused(self.prefix, paused)

    def hold(self, part: SpeechEnded) -> tuple[SpeechEnded, bool]:
        """A VAD stop to be judged: held until a verdict or the silence ceiling ends it. Also
        says whether the detector must be asked now (it was not at the pause)."""
        self.held = self.take(part)
        self.ceiling_at = self.held.at + self.ceiling_s
        self.next_ask_at = self.held.detected_at + self.reask_s
        self.waits_text = False
        ask_now = not self.asked_at_pause
        if ask_now:
            self.ask += 1
            self.in_flight, self.early = True, None
        self.asked_at_pause = False
        return self.held, ask_now

    def reask(self, at: float) -> bool:
        """More silence since the last answer: time to ask again (one question out at a time)."""
        if self.held is None or self.in_flight or not self.reask_s or at < self.next_ask_at:
            return False
        self.ask += 1
        self.in_flight = True
        self.next_ask_at = at + self.reask_s
        return True

    def go_on(self) -> None:
        """The user spoke again before the stop was judged the end: it was a pause."""
        self.prefix, self.held = self.held, None
        self.ask += 1  # a verdict still on its way is about a stop that no longer matters
        self.waits_text = self.in_flight = self.asked_at_pause = False
        self.early = None

    def verdict(
        self, ask: int, complete: bool, error: str | None, early: Transcript | StageFailed | None
    ) -> str | None:
        if ask != self.ask:
            return None
        self.in_flight = False
        if self.held is None:
            self.early = (complete, error)  # asked at the pause: it counts once the stop comes
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
        self.waits_text = self.in_flight = False
        self.early = None
        return held
