"""The speech-to-text contract.

Recognisers are blocking and CPU/GPU heavy, so the contract is synchronous: the runtime calls
`transcribe` in a worker thread and the audio loop never waits on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Transcription:
    text: str
    audio_s: float
    elapsed_s: float
    # (token or word, start_s, end_s); empty where the recogniser gives none.
    timestamps: list[tuple[str, float, float]] = field(default_factory=list)
    # 0..1, how sure the recogniser is of `text`; None where it does not say (Paraformer).
    confidence: float | None = None
    # The language heard (ISO-639-1), where the recogniser detects or reports one.
    language: str | None = None

    @property
    def rtf(self) -> float:
        return self.elapsed_s / self.audio_s if self.audio_s > 0 else 0.0


class AsrError(RuntimeError):
    """A recogniser failed in a way the user can act on; the message says how."""


class AsrInputError(AsrError):
    """What the caller asked for cannot be used (a hotword outside the model's vocabulary):
    the request is at fault, not the recogniser, so a server answers 400 rather than 502."""


def iso_language(language: str | None) -> str | None:
    """'zh', 'en-US', 'en_GB' → ISO-639-1 ('zh', 'en'); 'auto', 'unknown' or empty → None."""
    if not language or language.strip().lower() in ("auto", "unknown"):
        return None
    return language.strip().replace("_", "-").split("-", 1)[0].lower()


def split_hotwords(text: str) -> list[str]:
    """Hotwords as people type them: separated by commas (ASCII or full-width) or new lines
    where there are any, since a hotword may hold spaces; otherwise one per word."""
    parts = re.split(r"[,，\n]+", text) if re.search(r"[,，\n]", text) else text.split()
    return [part.strip() for part in parts if part.strip()]


@runtime_checkable
class SpeechRecognizer(Protocol):
    name: str

    def warm_up(self) -> None:
        """Loads models and runs one inference so the first real turn is not slow."""

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        """`audio` is 16 kHz mono float32."""
        ...

    def close(self) -> None: ...


# Called with the whole hypothesis so far (not only what is new), from the recogniser's thread.
PartialCallback = Callable[[str], None]


@runtime_checkable
class IncrementalRecognizer(SpeechRecognizer, Protocol):
    """A recogniser that can tell what it has heard before it has heard everything (streaming
    Paraformer's 600 ms chunks): the API turns each hypothesis into a text delta for the client.
    Recognisers without it still answer a streaming request, with one delta at the end."""

    def transcribe_streaming(
        self, audio: np.ndarray, hotwords: list[str] | None, on_partial: PartialCallback
    ) -> Transcription:
        """As `transcribe`, calling `on_partial(text_so_far)` as hypotheses grow."""
        ...


class PartialTextStream(Protocol):
    """One utterance being decoded as it arrives (a streaming recogniser's state for it)."""

    @property
    def text(self) -> str: ...

    decoded_s: float

    def feed(self, audio: np.ndarray, final: bool = False) -> bool:
        """Decodes what whole chunks are buffered; True when `text` grew."""
        ...


@runtime_checkable
class StreamingRecognizer(Protocol):
    """The first pass of "2pass" (`asr.streaming`): partial text while the user speaks. The
    engine calls it from a worker thread, never from the audio loop."""

    name: str
    chunk_samples: int  # what a partial waits for (asr.streaming_chunk_ms)
    lookahead_samples: int  # how far behind the audio fed a chunk's text ends

    def warm_up(self) -> None: ...

    def start(self) -> PartialTextStream: ...
