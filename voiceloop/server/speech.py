"""`POST /v1/audio/speech`: the configured voice, any of its voices, bounded concurrency.

One adapter per voice asked for, made on first use and kept (an Edge voice holds no
connection between calls; espeak checks the voice exists when it is made, which is how an
unknown voice becomes a 400 instead of a failed synthesis). OpenAI's voice names (alloy,
nova, ...) mean "the configured voice", so OpenAI clients work unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import numpy as np

from voiceloop.config import Settings
from voiceloop.server.errors import ApiError
from voiceloop.tts.base import SpeechSynthesizer, TtsError

OPENAI_VOICES = frozenset(
    {
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "onyx",
        "nova",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    }
)
MAX_INPUT_CHARS = 4096  # OpenAI's own limit for one request


class SpeechService:
    def __init__(self, settings: Settings, default: SpeechSynthesizer | None = None) -> None:
        self.settings = settings
        self.default_voice = settings.tts.voice
        self._voices: dict[str, SpeechSynthesizer] = {}
        if default is not None:
            self._voices[self.default_voice] = default
        self._slots = asyncio.Semaphore(settings.serve.tts_concurrency)
        self._waiting = 0

    @property
    def name(self) -> str:
        return self.settings.tts.name

    def voice_for(self, requested: str | None) -> SpeechSynthesizer:
        voice = self.default_voice if not requested or requested.lower() in OPENAI_VOICES else requested
        if voice not in self._voices:
            from voiceloop.build import build_voice

            try:
                self._voices[voice] = build_voice(self.settings, voice=voice)
            except (TtsError, ValueError) as exc:
                raise ApiError(400, f"voice '{voice}': {exc}", "unknown_voice") from None
        return self._voices[voice]

    async def stream(self, text: str, voice: str | None) -> AsyncGenerator[np.ndarray]:
        """Audio sentence by sentence as the voice makes it: a client hears the first sentence
        while the rest renders. Every check that can fail does so before the first chunk, so a
        caller that waits for it can still answer a plain HTTP error. Close it (aclose) when
        done: the voice slot it holds is freed then."""
        if not text.strip():
            raise ApiError(400, "input is empty: give the text to speak", "empty_input")
        if len(text) > MAX_INPUT_CHARS:
            raise ApiError(
                400, f"input is {len(text)} characters; the limit is {MAX_INPUT_CHARS}", "input_too_long"
            )
        synthesizer = self.voice_for(voice)
        limit = self.settings.serve.tts_concurrency + self.settings.serve.queue
        if self._waiting >= limit:
            raise ApiError(503, "every voice slot is busy; retry shortly", "busy", {"Retry-After": "1"})
        self._waiting += 1
        try:
            async with self._slots:
                produced = False
                for piece in sentences(text):
                    async for chunk in self._piece(synthesizer, piece):
                        produced = True
                        yield chunk
                if not produced:
                    raise ApiError(
                        502, f"the voice ({self.name}) produced no audio for this input", "tts_empty"
                    )
        finally:
            self._waiting -= 1

    async def _piece(self, synthesizer: SpeechSynthesizer, piece: str) -> AsyncIterator[np.ndarray]:
        try:
            async with asyncio.timeout(max(self.settings.tts.timeout_s, 5.0) * 4):
                async for chunk in synthesizer.synthesize(piece):
                    if chunk.size:
                        yield chunk
        except TimeoutError:
            raise ApiError(504, f"the voice ({self.name}) took too long", "tts_timeout") from None
        except TtsError as exc:
            raise ApiError(502, f"the voice ({self.name}) failed: {exc}", "tts_failed") from None

    def voices(self) -> list[str]:
        """The configured voice first, then the others this engine has: espeak lists its own
        (offline, instant); an online engine's catalogue is not fetched, so there the
        configured and fallback voices and those already asked for."""
        names = [self.default_voice]
        if self.name == "espeak":
            from voiceloop.tts.espeak import list_voices

            names += list_voices()
        else:
            if self.settings.tts.fallback_voice:
                names.append(self.settings.tts.fallback_voice)
            names += sorted(self._voices)
        return list(dict.fromkeys(names))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "voice": self.default_voice, "voices_loaded": sorted(self._voices)}

    async def aclose(self) -> None:
        for synthesizer in self._voices.values():
            await synthesizer.aclose()
        self._voices.clear()


def sentences(text: str) -> list[str]:
    """The input cut at sentence ends only (each piece gets the voice's sentence-final
    intonation and pause anyway); text with no speakable words stays one piece."""
    from voiceloop.text.chunker import MAX_PIECE_CHARS, SentenceChunker

    chunker = SentenceChunker(first_piece_min_chars=MAX_PIECE_CHARS + 1, first_piece_max_words=0)
    pieces = chunker.feed(text) + chunker.flush()
    return pieces or [text]
