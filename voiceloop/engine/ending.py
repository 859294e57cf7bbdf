"""How an utterance's parts join, and the transcript's word on whether a turn is over.

Pure helpers for the machine's end-of-turn rules: when the turn detector says "not yet" and
the user goes on, the parts are one utterance (`join`); when it says "complete" but the words
so far end on "for", "the", "um" or "的", the words win (`ends_incomplete`): espeak's flat
prosody fools the audio model on exactly those ("I would like to book a table for": 0.91).
"""

from __future__ import annotations

import math
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
    return replace(
        part,
        started_at=before.started_at,
        audio=np.concatenate([before.audio, part.audio]),
        peak_probability=max(before.peak_probability, part.peak_probability),
        echo_coherence=None,  # measured on each part alone
        mic_coherence=None,
        cut_audio=None,  # one copy of each part only: the joined audio is heard once
        refit_copy=None,
        mic_audio=None,
        reply_words="",  # earlier words waiting for their transcript are the user's: never echo
    )


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
    """With a turn detector or the words rule: the utterance a VAD stop ended while it is judged,
    and the earlier parts of an utterance the user talked on after (joined in front of the next).

    Two judges, the transcript first. Its words are cheap, already on their way (the reply
    needs them) and right where the audio model is weakest: a turn that ends on "for", "the",
    "um" or "的" is not over, whatever the model heard (espeak's flat voice scored "I would like
    to book a table for" 0.91 complete). Words that end complete are then checked by the audio
    model (Smart Turn), which hears what the words cannot: a trailing "uh" the recogniser
    dropped, a voice that stays up. The model is given a budget (`wait_s`) past the moment the
    words are in: asked at the pause, inside the stop window, it is usually there already; when
    it is late (a loaded CPU), the words end the turn rather than the user waiting on it. When
    the model doubts words that sound complete, the turn ends after `doubt_s` of silence (the
    model is asked again each `reask_s`, and grows surer as silence goes on); words that end
    incomplete wait for the user or the full `ceiling_s`.

    Each question to the model is numbered (`ask`): a verdict on a stop the user talked through
    is stale. The machine hands over what arrives (`verdict`, `words`) and the time (`decide`);
    each returns the reason the turn ends now (`detector`, `words`, `doubt`, `silence` when the
    detector failed) or None to keep listening; `due` says when the ceiling has passed.
    """

    def __init__(
        self,
        ceiling_s: float,
        endings: frozenset[str],
        reask_s: float = 0.0,
        *,
        wait_s: float = math.inf,
        doubt_s: float = math.inf,
        detector: bool = True,
    ) -> None:
        self.ceiling_s = ceiling_s
        self.endings = endings
        self.reask_s = reask_s
        self.wait_s = wait_s
        self.doubt_s = doubt_s
        self.detector = detector  # False: the words alone decide (`[turn] name = "words"`)
        self.prefix: SpeechEnded | None = None
        self.held: SpeechEnded | None = None
        self.ask = 0
        self.ceiling_at = 0.0
        self.asked_at_pause = False  # the question for the coming stop is out already
        self.in_flight = False
        self.early: tuple[bool, str | None] | None = None  # the model's answer, come before the stop
        self.next_ask_at = 0.0
        self.model: tuple[bool, str | None] | None = None  # its latest answer on the held stop
        self.words_complete: bool | None = None  # the transcript's word on the held stop
        self.words_at = 0.0

    @property
    def waits_text(self) -> bool:
        """Held with the transcript still to come: its arrival may decide the turn."""
        return self.held is not None and self.words_complete is None

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
        """A VAD stop to be judged: held until the judges or the silence ceiling end it. Also
        says whether the detector must be asked now (it was not at the pause)."""
        self.held = self.take(part)
        self.ceiling_at = self.held.at + self.ceiling_s
        self.next_ask_at = self.held.detected_at + self.reask_s
        self.model, self.words_complete = None, None
        if not self.endings:  # the words rule is off: only the model (or the ceiling) can doubt
            self.words_complete, self.words_at = True, self.held.detected_at
        ask_now = self.detector and not self.asked_at_pause
        if ask_now:
            self.ask += 1
            self.in_flight, self.early = True, None
        elif self.early is not None:  # asked at the pause, answered by the stop
            self.model, self.early = self.early, None
        self.asked_at_pause = False
        return self.held, ask_now

    def reask(self, at: float) -> bool:
        """More silence since the last answer on words that sound complete: time to ask again
        (one question out at a time; words that end incomplete need no model to wait)."""
        if (
            self.held is None
            or not self.detector
            or self.in_flight
            or not self.reask_s
            or self.words_complete is False
            or at < self.next_ask_at
        ):
            return False
        self.ask += 1
        self.in_flight = True
        self.next_ask_at = at + self.reask_s
        return True

    def go_on(self) -> None:
        """The user spoke again before the stop was judged the end: it was a pause."""
        self.prefix, self.held = self.held, None
        self.ask += 1  # a verdict still on its way is about a stop that no longer matters
        self.in_flight = self.asked_at_pause = False
        self.early = self.model = self.words_complete = None

    def verdict(self, ask: int, complete: bool, error: str | None, at: float) -> str | None:
        if ask != self.ask:
            return None
        self.in_flight = False
        if self.held is None:
            self.early = (complete, error)  # asked at the pause: it counts once the stop comes
            return None
        self.model = (complete, error)
        return self.decide(at)

    def words(self, early: Transcript | StageFailed, at: float) -> str | None:
        """The held stop's transcript is in (a failed one says nothing against the end)."""
        if self.held is None:
            return None
        if not self.endings:
            return self.decide(at)  # the words rule is off: they were taken as complete at the stop
        if isinstance(early, Transcript):
            # No words at all is no sign of an end either: the recogniser missed a half-said
            # "I need a recipe for, um" (a cough gets the ceiling, then counts as no speech).
            text = early.text
            self.words_complete = bool(_WORD.search(text)) and not ends_incomplete(text, self.endings)
        else:
            self.words_complete = True  # a failed recognition: its error is reported at once
        self.words_at = max(at, self.held.detected_at)
        return self.decide(at)

    def decide(self, at: float) -> str | None:
        if self.held is None or not self.words_complete:
            return None  # no words yet (the reply needs them anyway), or words that trail off
        if not self.detector:
            return "words"
        if self.model is None:  # a late model: words that count end the turn at the budget's end
            return "words" if self.endings and at >= self.words_at + self.wait_s else None
        complete, error = self.model
        if error is not None:
            return "silence"  # no judgement: the window decides, as with no detector
        if complete:
            return "detector"
        if self.endings and at >= self.held.detected_at + self.doubt_s:
            return "doubt"  # the words said complete; the model alone waits for the ceiling
        return None

    def due(self, at: float) -> bool:
        return self.held is not None and at >= self.ceiling_at

    def release(self) -> SpeechEnded:
        held, self.held = self.held, None
        assert held is not None
        self.in_flight = False
        self.early = self.model = self.words_complete = None
        return held
