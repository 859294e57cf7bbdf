"""Response bodies in the formats OpenAI's audio endpoints define, from our own results.

Subtitle cues come from the same splitting `voiceloop transcribe` uses (a new cue at a pause or
when a line gets long), so a file gets the same SRT from the CLI and from the API.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Literal

import numpy as np

from voiceloop.asr.base import Transcription
from voiceloop.asr.batch import FileResult, cues, render, srt_time
from voiceloop.audio.frames import resample

TranscriptFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
TRANSCRIPT_FORMATS: tuple[str, ...] = ("json", "text", "srt", "vtt", "verbose_json")
SpeechFormat = Literal["wav", "mp3", "pcm", "flac"]
SPEECH_FORMATS: tuple[str, ...] = ("wav", "mp3", "pcm", "flac")
# OpenAI's `pcm` is 24 kHz 16-bit little-endian mono; clients that play it assume that rate.
PCM_RATE = 24_000
MEDIA_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "pcm": "audio/pcm", "flac": "audio/flac"}


def as_result(name: str, out: Transcription) -> FileResult:
    return FileResult(
        Path(name), out.text, list(out.timestamps), out.audio_s, out.elapsed_s, language=out.language
    )


def transcript_body(result: FileResult, fmt: str, language: str | None) -> tuple[str | dict[str, Any], str]:
    """(body, media type): a dict for the JSON formats, text for the rest."""
    if fmt == "json":
        return {"text": result.text}, "application/json"
    if fmt == "verbose_json":
        return verbose_json(result, language), "application/json"
    if fmt == "srt":
        return render(result, "srt"), "text/plain; charset=utf-8"
    if fmt == "vtt":
        return vtt(result), "text/vtt; charset=utf-8"
    return result.text, "text/plain; charset=utf-8"


def verbose_json(result: FileResult, language: str | None) -> dict[str, Any]:
    """`language`: the request's, echoed; else what the recogniser heard (Qwen3-ASR detects it)."""
    return {
        "task": "transcribe",
        "language": language or result.language,
        "duration": round(result.duration_s, 3),
        "text": result.text,
        "segments": [
            {"id": i, "start": round(start, 3), "end": round(end, 3), "text": text}
            for i, (start, end, text) in enumerate(cues(result))
        ],
        "words": [
            {"word": unit, "start": round(start, 3), "end": round(end, 3)}
            for unit, start, end in result.timestamps
            if unit
        ],
    }


def vtt(result: FileResult) -> str:
    blocks = ["WEBVTT\n"]
    for start, end, text in cues(result):
        blocks.append(f"{srt_time(start).replace(',', '.')} --> {srt_time(end).replace(',', '.')}\n{text}\n")
    return "\n".join(blocks)


def speech_body(audio: np.ndarray, fmt: str, rate: int = 16_000) -> tuple[bytes, dict[str, str]]:
    """Encoded audio and the headers that describe it."""
    import soundfile as sf

    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    if fmt == "pcm":
        pcm = (resample(audio, rate, PCM_RATE) * 32767).astype("<i2")
        return pcm.tobytes(), {"X-Sample-Rate": str(PCM_RATE), "X-Sample-Format": "s16le", "X-Channels": "1"}
    if fmt == "mp3":
        from voiceloop.tts.mp3 import encode_mp3

        return encode_mp3(resample(audio, rate, PCM_RATE), rate=PCM_RATE), {}
    buffer = io.BytesIO()
    if fmt == "flac":
        sf.write(buffer, audio, rate, format="FLAC")
    else:
        sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue(), {"X-Sample-Rate": str(rate)}
