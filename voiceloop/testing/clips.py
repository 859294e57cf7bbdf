"""Speech clips for tests and benchmarks: espeak's voice as a microphone would hear it."""

from __future__ import annotations

import io

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE


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


# The Matroska/WebM Segment Info "Duration" element: ID 0x4489, an 8-byte float in ms.
_WEBM_DURATION = b"\x44\x89\x88"


def webm_silence(seconds: float, *, claimed_s: float | None = None, with_duration: bool = True) -> bytes:
    """Opus-in-WebM holding `seconds` of room tone, as a browser's MediaRecorder uploads it.

    `with_duration=False` blanks the Duration element (a live recording has none);
    `claimed_s` patches it to lie. Both are how an upload gets past a header length check."""
    import struct

    import av

    rate, frame_samples = 48_000, 2_880  # 60 ms Opus frames: a long file encodes 3x faster
    buffer = io.BytesIO()
    tone = (np.random.default_rng(0).standard_normal((1, frame_samples)) * 3).astype(np.int16)
    with av.open(buffer, "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=rate, layout="mono")
        stream.bit_rate = 12_000
        for k in range(int(seconds * rate / frame_samples)):
            frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, k * frame_samples
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = bytearray(buffer.getvalue())
    at = data.find(_WEBM_DURATION)
    if at < 0:
        raise RuntimeError("the WebM muxer wrote no Duration element")
    if not with_duration:
        data[at : at + 11] = b"\xec\x89" + b"\0" * 9  # an EBML Void element of the same size
    elif claimed_s is not None:
        data[at + 3 : at + 11] = struct.pack(">d", claimed_s * 1000)
    return bytes(data)
