"""Response bodies in the formats OpenAI's audio endpoints define, from our own results.

Subtitle cues come from the same splitting `voiceloop transcribe` uses (a new cue at a pause or
when a line gets long), so a file gets the same SRT from the CLI and from the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from voiceloop.asr.base import Transcription
from voiceloop.asr.batch import FileResult, cues, render, srt_time

TranscriptFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
TRANSCRIPT_FORMATS: tuple[str, ...] = ("json", "text", "srt", "vtt", "verbose_json")


def as_result(name: str, out: Transcription) -> FileResult:
    return FileResult(
        Path(name), out.text, list(out.timestamps), out.audio_s, out.elapsed_s, language=out.language or ""
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
