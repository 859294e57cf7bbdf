"""Speech clips for tests and benchmarks: espeak's voice as a microphone would hear it."""

from __future__ import annotations

import io

import numpy as np

SAMPLE_RATE = 16_000


def spoken_clip(
    text: str,
    *,
    voice: str = "en-us",
    lead_s: float = 0.5,
    tail_s: float = 0.5,
    seconds: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """`text` after `lead_s` of room tone, padded with room tone to `seconds` (default: `tail_s`
    after the words). The -50 dBFS noise matters: pocketsphinx mis-hears synthetic speech set
    in pure digital silence, and no microphone delivers that."""
    from voiceloop.tts.espeak import render

    words = render(text, voice)
    total = int(
        (seconds if seconds is not None else lead_s + len(words) / SAMPLE_RATE + tail_s) * SAMPLE_RATE
    )
    lead = int(lead_s * SAMPLE_RATE)
    total = max(total, lead + len(words))
    audio = np.zeros(total, np.float32)
    audio[lead : lead + len(words)] = words
    rng = np.random.default_rng(seed)
    return audio + (rng.standard_normal(total) * 10 ** (-50 / 20)).astype(np.float32)


def encoded(audio: np.ndarray, fmt: str = "WAV", rate: int = SAMPLE_RATE) -> bytes:
    """`audio` as a file's bytes (any libsndfile format: WAV, FLAC, OGG, MP3)."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt)
    return buffer.getvalue()
