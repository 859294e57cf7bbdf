"""`/v1/audio/speech` audio encoded as it is synthesised, one format per encoder.

Every encoder takes 16 kHz float32 chunks with `encode` and returns the bytes that are ready,
so the first sentence goes out while the next renders; `finish` returns the tail. The streamed
formats carry no total length: WAV's size fields say "unknown" (0xFFFFFFFF, as OpenAI's own
streamed WAV does; libsndfile, FFmpeg and browsers read it), MP3 and AAC (ADTS) are bare frame
streams, Opus is in Ogg with short pages. FLAC's header holds the length and its checksum, so
FLAC alone arrives whole, when synthesis ends.

Resampling to 24 kHz (OpenAI's rate for pcm; MP3, Opus and AAC at the same rate) is stateful
(`soxr.ResampleStream`), so chunk edges neither click nor drift.
"""

from __future__ import annotations

import io
import struct
from typing import Any, Protocol, cast

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE

OUT_RATE = 24_000  # OpenAI's `pcm` rate; clients that play raw pcm assume it
SPEECH_FORMATS: tuple[str, ...] = ("mp3", "opus", "aac", "flac", "wav", "pcm")
MEDIA_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "pcm": "audio/pcm",
    "flac": "audio/flac",
    "opus": "audio/ogg",  # Opus in Ogg, what OpenAI sends and browsers play
    "aac": "audio/aac",  # ADTS frames
}
OGG_PAGE_US = 100_000  # an Ogg page per 100 ms of audio: FFmpeg's default (1 s) holds speech back


class SpeechEncoder(Protocol):
    headers: dict[str, str]

    def encode(self, audio: np.ndarray) -> bytes: ...

    def finish(self) -> bytes: ...


class _Resampled:
    """16 kHz in, `rate` out, across chunk edges."""

    def __init__(self, rate: int) -> None:
        import soxr

        self._stream = soxr.ResampleStream(SAMPLE_RATE, rate, 1, dtype="float32")

    def __call__(self, audio: np.ndarray, last: bool = False) -> np.ndarray:
        out = self._stream.resample_chunk(np.asarray(audio, np.float32).reshape(-1), last=last)
        return np.clip(np.asarray(out, np.float32).reshape(-1), -1.0, 1.0)


def _s16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


class PcmEncoder:
    def __init__(self) -> None:
        self.headers = {"X-Sample-Rate": str(OUT_RATE), "X-Sample-Format": "s16le", "X-Channels": "1"}
        self._resample = _Resampled(OUT_RATE)

    def encode(self, audio: np.ndarray) -> bytes:
        return _s16(self._resample(audio))

    def finish(self) -> bytes:
        return _s16(self._resample(np.zeros(0, np.float32), last=True))


class WavEncoder:
    """16-bit 16 kHz, the header first with its lengths unknown."""

    def __init__(self) -> None:
        self.headers = {"X-Sample-Rate": str(SAMPLE_RATE)}
        self._header_sent = False

    def encode(self, audio: np.ndarray) -> bytes:
        head = b"" if self._header_sent else wav_header_unknown_length(SAMPLE_RATE)
        self._header_sent = True
        return head + _s16(np.asarray(audio, np.float32))

    def finish(self) -> bytes:
        return b"" if self._header_sent else self.encode(np.zeros(0, np.float32))


def wav_header_unknown_length(rate: int) -> bytes:
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


class FlacEncoder:
    """Whole at the end: its header holds the length."""

    def __init__(self) -> None:
        self.headers = {"X-Sample-Rate": str(SAMPLE_RATE)}
        self._chunks: list[np.ndarray] = []

    def encode(self, audio: np.ndarray) -> bytes:
        self._chunks.append(np.asarray(audio, np.float32))
        return b""

    def finish(self) -> bytes:
        import soundfile as sf

        buffer = io.BytesIO()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        sf.write(buffer, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, format="FLAC")
        return buffer.getvalue()


class _Sink:
    """Where PyAV's muxer writes; taken from after every chunk."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def take(self) -> bytes:
        out, self.data = bytes(self.data), bytearray()
        return out


class AvEncoder:
    """MP3, Opus (in Ogg) or AAC (ADTS) through FFmpeg's encoders and muxers, at 24 kHz mono."""

    _SETTINGS = {
        "mp3": ("mp3", "libmp3lame", {"id3v2_version": "0", "write_xing": "0"}),  # bare frames
        "opus": ("ogg", "libopus", {"page_duration": str(OGG_PAGE_US)}),
        "aac": ("adts", "aac", {}),
    }

    def __init__(self, fmt: str, bit_rate: int = 48_000) -> None:
        import av

        container_format, codec, options = self._SETTINGS[fmt]
        self.headers: dict[str, str] = {}
        self._av = av
        self._sink = _Sink()
        self._container: Any = av.open(
            self._sink, "w", format=container_format, container_options={"flush_packets": "1", **options}
        )
        self._stream: Any = cast(Any, self._container.add_stream(codec, rate=OUT_RATE, layout="mono"))
        self._stream.bit_rate = bit_rate
        self._resample = _Resampled(OUT_RATE)
        self._samples = 0

    def encode(self, audio: np.ndarray) -> bytes:
        self._mux(self._resample(audio))
        return self._sink.take()

    def finish(self) -> bytes:
        self._mux(self._resample(np.zeros(0, np.float32), last=True))
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._sink.take()

    def _mux(self, pcm: np.ndarray) -> None:
        if pcm.size == 0:
            return
        frame = self._av.AudioFrame.from_ndarray(
            (pcm * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = OUT_RATE
        frame.pts = self._samples
        self._samples += pcm.size
        for packet in self._stream.encode(frame):
            self._container.mux(packet)


def encoder_for(fmt: str) -> SpeechEncoder:
    if fmt == "pcm":
        return PcmEncoder()
    if fmt == "wav":
        return WavEncoder()
    if fmt == "flac":
        return FlacEncoder()
    return AvEncoder(fmt)
