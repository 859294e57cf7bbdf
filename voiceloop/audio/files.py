"""Reading audio files into the pipeline format, with errors a user can act on.

Files are read block by block and resampled as a stream, never whole: a header may lie about
the length (a streaming encoder writes "unknown", a patched one writes anything), so the only
length to trust is the one decoded so far. With `max_seconds`, reading stops as soon as the
audio passes it, and the memory a file can take is bounded by the limit, not by its header.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE

BLOCK_S = 1.0


class AudioFileError(ValueError):
    pass


class AudioTooLong(AudioFileError):
    """The file holds more than `max_seconds`; `seconds` is how much was decoded before stopping."""

    def __init__(self, path: Path, seconds: float, max_seconds: float) -> None:
        super().__init__(f"{path} holds more than {max_seconds:g} s of audio")
        self.seconds = seconds
        self.max_seconds = max_seconds


class HeaderLies(AudioFileError):
    """The file holds far more audio than its header declares: damaged, or made to get past a
    length check. Refused as soon as that is plain, not after decoding up to the limit."""

    def __init__(self, path: Path, claimed_s: float) -> None:
        super().__init__(
            f"{path} holds far more audio than its header says ({claimed_s:.1f} s): a damaged or altered file"
        )
        self.claimed_s = claimed_s


# How far past its declared length a file may run before its header counts as a lie: twice,
# plus half a minute (container durations are exact; encoder padding and estimates are not).
LIE_FACTOR = 2.0
LIE_MARGIN_S = 30.0


class BoundedAudio:
    """Mono blocks in, at any rate; float32 at `rate` out, refusing more than `max_seconds`, or
    far more than the `claimed_s` the file's header declared."""

    def __init__(
        self, path: Path, from_rate: int, rate: int, max_seconds: float | None, claimed_s: float | None = None
    ) -> None:
        self.path = path
        self.rate = rate
        self.max_samples = None if max_seconds is None else int(max_seconds * rate)
        self.max_seconds = max_seconds
        self.claimed_s = claimed_s
        self.lie_samples = None if claimed_s is None else int((claimed_s * LIE_FACTOR + LIE_MARGIN_S) * rate)
        self._blocks: list[np.ndarray] = []
        self._samples = 0
        self._resampler = None
        if from_rate != rate:
            import soxr

            self._resampler = soxr.ResampleStream(from_rate, rate, 1, dtype="float32")

    def add(self, mono: np.ndarray, last: bool = False) -> None:
        block = np.ascontiguousarray(mono, dtype=np.float32)
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block, last=last)
        if block.size == 0:
            return
        self._blocks.append(block)
        self._samples += block.size
        if self.max_samples is not None and self._samples > self.max_samples:
            assert self.max_seconds is not None
            raise AudioTooLong(self.path, self._samples / self.rate, self.max_seconds)
        if self.lie_samples is not None and self._samples > self.lie_samples:
            assert self.claimed_s is not None
            raise HeaderLies(self.path, self.claimed_s)

    def finish(self) -> np.ndarray:
        if self._resampler is not None:
            self.add(np.zeros(0, np.float32), last=True)
        if not self._blocks:
            return np.zeros(0, np.float32)
        audio = np.concatenate(self._blocks)
        self._blocks = []
        return audio


def read_audio(path: str | Path, rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """Any format libsndfile reads (WAV, FLAC, OGG, MP3), any rate, mixed down to mono."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"audio file not found: {path}")
    from voiceloop.audio.native_notes import looks_like_mp3, mpg123_notes_dropped

    quiet = mpg123_notes_dropped() if looks_like_mp3(path) else nullcontext()
    try:
        with quiet, sf.SoundFile(str(path)) as source:
            audio = BoundedAudio(path, source.samplerate, rate, max_seconds)
            block_frames = max(1, int(source.samplerate * BLOCK_S))
            while True:
                # read() stops at the real end: `frames` in the header is not trusted.
                block = source.read(block_frames, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                audio.add(block.mean(axis=1))
            samples = audio.finish()
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioFileError(f"cannot decode {path}: {exc}") from None
    if samples.size == 0:
        raise AudioFileError(f"{path} holds no audio")
    return samples
