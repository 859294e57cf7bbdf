"""Reading audio files into the pipeline format, with errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE, resample


class AudioFileError(ValueError):
    pass


def read_audio(path: str | Path, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Any format libsndfile reads (WAV, FLAC, OGG, MP3), any rate, mixed down to mono."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"audio file not found: {path}")
    try:
        audio, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioFileError(f"cannot decode {path}: {exc}") from None
    if audio.size == 0:
        raise AudioFileError(f"{path} holds no audio")
    return resample(audio.mean(axis=1), file_rate, rate)
