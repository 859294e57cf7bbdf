"""A voice with a second voice behind it: when the first fails, the second says the piece.

Generic over any two adapters: `voiceloop.build.voices` puts `tts.fallback` behind whichever
voice `tts.name` chooses.

Per piece:
- The primary fails before any audio: the secondary says the whole piece.
- The primary fails after some audio (a cut stream): the secondary says the rest, if the
  primary's error says what the rest is (`PartialSpeech.unspoken`), else the whole piece:
  repeated words beat lost ones.
- After a failure the secondary speaks alone for `retry_after_s`, then the primary gets
  another chance: a dead service must not cost its full timeout on every sentence.

Why the switch happened is said once per session (`notify`, default: a log warning), not per
piece; later failures only go to the debug log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

import numpy as np

from voiceloop.tts.base import PartialSpeech, SpeechSynthesizer, TtsError

__all__ = ["FallbackVoice", "PartialSpeech"]

log = logging.getLogger("voiceloop.tts")

_LEADING_PUNCTUATION = " ,.;:!?，。；：！？、"  # left over where a cut fell after a word


class FallbackVoice:
    """The SpeechSynthesizer that tries `primary` and falls back to `secondary`."""

    def __init__(
        self,
        primary: SpeechSynthesizer,
        secondary: SpeechSynthesizer,
        *,
        retry_after_s: float = 60.0,
        notify: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.secondary = secondary
        self.name = f"{primary.name}|{secondary.name}"
        self.retry_after_s = retry_after_s
        self.notify: Callable[[str], None] = notify or log.warning
        self._clock = clock
        self._primary_resumes_at = float("-inf")
        self.notified = False
        self.failures = 0  # pieces the primary failed
        self.fallback_pieces = 0  # pieces (or rests of pieces) the secondary said
        self.last_failure: str | None = None

    @property
    def primary_resting(self) -> bool:
        return self._clock() < self._primary_resumes_at

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        if not text.strip():
            return
        if self.primary_resting:
            async for chunk in self._secondary(text, self.last_failure or "resting"):
                yield chunk
            return
        voiced = False
        try:
            async for chunk in self.primary.synthesize(text):
                voiced = True
                yield chunk
        except Exception as exc:  # noqa: BLE001  # CancelledError (a barge-in) is not caught
            failure = exc
        else:
            if self.failures and self._primary_resumes_at != float("-inf"):
                log.info("%s is speaking again", self.primary.name)
                self._primary_resumes_at = float("-inf")
            return
        rest = text
        if voiced:
            unspoken = getattr(failure, "unspoken", None)
            rest = unspoken.lstrip(_LEADING_PUNCTUATION) if isinstance(unspoken, str) else text
        self._note_failure(failure)
        if rest.strip():
            async for chunk in self._secondary(rest, self.last_failure or ""):
                yield chunk

    async def _secondary(self, text: str, why: str) -> AsyncIterator[np.ndarray]:
        self.fallback_pieces += 1
        try:
            async for chunk in self.secondary.synthesize(text):
                yield chunk
        except TtsError as exc:
            raise TtsError(f"{why}; the fallback {self.secondary.name} failed too: {exc}") from None

    def _note_failure(self, exc: Exception) -> None:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        self.failures += 1
        self.last_failure = reason
        self._primary_resumes_at = self._clock() + self.retry_after_s
        if self.notified:
            log.debug("%s failed again: %s", self.primary.name, reason)
            return
        self.notified = True
        retry = (
            f"; {self.primary.name} is tried again after {self.retry_after_s:g} s"
            if self.retry_after_s
            else ""
        )
        self.notify(f"{reason}. Speaking with {self.secondary.name} instead{retry}.")

    async def aclose(self) -> None:
        try:
            await self.primary.aclose()
        finally:
            await self.secondary.aclose()
