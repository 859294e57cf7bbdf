"""MP3 bytes in as they arrive from the network, 16 kHz float32 PCM out as soon as it decodes.

Edge-TTS only streams MP3 (24 kHz mono, 48 kbit/s, 24 ms frames of 144 bytes), and its
websocket messages split the stream at arbitrary byte offsets. Decoding the whole reply at the
end would hold back the first words until the last byte arrived, so this decoder is pushed one
network chunk at a time: PyAV's parser (FFmpeg's) finds frame boundaries across chunks and
keeps a partial frame until the rest arrives, the decoder turns whole frames into samples.

Resampling is stateful (`soxr.ResampleStream`) rather than `frames.resample` per chunk: a
one-shot resampler treats each chunk as a whole signal, so chunk edges would click and lose
or gain a fraction of a sample each time. The stream resampler holds its filter state across
chunks and `flush()` drains its tail.

Decoding and resampling cost ~1-1.5 ms of CPU per second of speech (scripts/bench_tts.py), a
fraction of a millisecond per network message, so it runs inline on the event loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.tts.base import TtsError

_EMPTY = np.zeros(0, np.float32)


class Mp3StreamDecoder:
    """Push MP3 bytes with `feed`, call `flush` once at the end; both return PCM so far."""

    def __init__(self, out_rate: int = SAMPLE_RATE) -> None:
        import av  # PyAV: imported here so importing voiceloop.tts does not load FFmpeg

        self.out_rate = out_rate
        self.in_rate: int | None = None  # known from the first decoded frame
        self.bytes_in = 0
        self.samples_out = 0
        self._av_error: type[Exception] = av.FFmpegError
        self._codec = av.CodecContext.create("mp3", "r")
        self._resampler: Any = None  # soxr.ResampleStream, once the rate is known
        self._flushed = False

    def feed(self, data: bytes) -> np.ndarray:
        """PCM for every MP3 frame completed by `data` (maybe none yet: then an empty array)."""
        if self._flushed:
            raise RuntimeError("feed() after flush()")
        if not data:
            return _EMPTY
        self.bytes_in += len(data)
        return self._decode(data)

    def flush(self) -> np.ndarray:
        """The frame the parser still holds, the decoder's last frame, the resampler's tail."""
        if self._flushed:
            return _EMPTY
        self._flushed = True
        tail = [self._decode(None)]
        try:
            tail.extend(self._to_float(frame) for frame in self._codec.decode(None))
        except self._av_error as exc:
            raise TtsError(f"MP3 decoding failed at the end of the stream: {exc}") from None
        return self._count(self._resample(np.concatenate(tail), last=True))

    @property
    def seconds_out(self) -> float:
        return self.samples_out / self.out_rate

    def _decode(self, data: bytes | None) -> np.ndarray:
        try:
            frames = [
                self._to_float(frame)
                for packet in self._codec.parse(data)
                for frame in self._codec.decode(packet)
            ]
        except self._av_error as exc:
            raise TtsError(f"MP3 decoding failed: {exc}") from None
        if data is None:  # flush(): resampled there together with the decoder's tail
            return np.concatenate(frames) if frames else _EMPTY
        if not frames:
            return _EMPTY
        return self._count(self._resample(np.concatenate(frames), last=False))

    def _to_float(self, frame: object) -> np.ndarray:
        rate = frame.sample_rate  # type: ignore[attr-defined]
        if self.in_rate is None:
            self.in_rate = rate
        elif rate != self.in_rate:
            raise TtsError(f"MP3 stream changed sample rate mid-stream ({self.in_rate} → {rate} Hz)")
        samples = frame.to_ndarray()  # type: ignore[attr-defined]  # (channels, n) when planar
        if samples.ndim == 2 and samples.shape[0] > 1:
            samples = samples.mean(axis=0)  # Edge is mono; a stereo stream is mixed down
        samples = samples.reshape(-1)
        if samples.dtype == np.int16:
            return samples.astype(np.float32) / 32768.0
        if samples.dtype == np.int32:
            return samples.astype(np.float32) / 2147483648.0
        return samples.astype(np.float32, copy=False)

    def _resample(self, pcm: np.ndarray, *, last: bool) -> np.ndarray:
        if self.in_rate is None or self.in_rate == self.out_rate:
            return pcm.astype(np.float32, copy=False)
        if self._resampler is None:
            import soxr

            self._resampler = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32")
        out = self._resampler.resample_chunk(pcm, last=last)
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def _count(self, pcm: np.ndarray) -> np.ndarray:
        self.samples_out += pcm.size
        return pcm


def decode_mp3(data: bytes, out_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A whole MP3 byte string at once (for tests and tools)."""
    decoder = Mp3StreamDecoder(out_rate)
    head = decoder.feed(data)
    return np.concatenate([head, decoder.flush()])


def encode_mp3(pcm: np.ndarray, rate: int = 24_000, bit_rate: int = 48_000) -> bytes:
    """Raw MP3 frames (no ID3, no container), CBR: what Edge streams, and what `POST
    /v1/audio/speech` returns for mp3 (every player and browser plays a bare frame stream)."""
    import av

    encoder = av.CodecContext.create("libmp3lame", "w")
    encoder.sample_rate = rate
    encoder.layout = "mono"
    encoder.format = "fltp"
    encoder.bit_rate = bit_rate
    encoder.open()
    step = encoder.frame_size
    audio = np.asarray(pcm, dtype=np.float32).reshape(1, -1)
    out = bytearray()
    for start in range(0, audio.shape[1], step):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(audio[:, start : start + step]), format="fltp", layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = start
        for packet in encoder.encode(frame):
            out += bytes(packet)
    for packet in encoder.encode(None):
        out += bytes(packet)
    return bytes(out)
