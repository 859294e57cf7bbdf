"""Batch transcription of audio files: decode, batch, recognise, and write txt/json/srt.

Decoding runs in a small thread pool ahead of the recogniser, so the GPU is not left waiting on
MP3 decoding, and decoded clips are handed over in batches (`transcribe_batch` where the
recogniser has one: one padded forward pass per batch). A file that cannot be decoded or
recognised becomes a failed result with a one-line reason; the other files carry on.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from voiceloop.asr.base import Transcription
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.errors import one_line

Format = Literal["txt", "json", "srt"]
FORMATS: tuple[Format, ...] = ("txt", "json", "srt")
# What a folder argument contributes; a file named explicitly is always tried.
AUDIO_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".webm", ".wma"}
    | {".aif", ".aiff", ".au", ".caf", ".amr", ".mka"}
)
# SRT cues: a new one after a pause, or when a line would get too long to read.
CUE_GAP_S = 0.6
CUE_MAX_UNITS = 16


class DecodeError(ValueError):
    """A file that is not audio we can read; str() is the reason for the user."""


@dataclass
class FileResult:
    file: Path
    text: str = ""
    timestamps: list[tuple[str, float, float]] = field(default_factory=list)
    duration_s: float = 0.0
    elapsed_s: float = 0.0
    error: str | None = None
    language: str = ""  # what the recogniser heard, where it says (qwen3)

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "file": str(self.file),
            "text": self.text,
            "timestamps": [[unit, round(start, 3), round(end, 3)] for unit, start, end in self.timestamps],
            "duration_s": round(self.duration_s, 3),
            "elapsed_s": round(self.elapsed_s, 4),
        }
        if self.language:
            record["language"] = self.language
        return record


@dataclass(frozen=True)
class Summary:
    files: int
    failed: int
    audio_s: float
    wall_s: float

    @property
    def rtf(self) -> float:
        return self.wall_s / self.audio_s if self.audio_s > 0 else 0.0


# -- inputs and decoding -----------------------------------------------------------------------


def expand_inputs(paths: Iterable[Path]) -> list[Path]:
    """Files as given; folders contribute their audio files (by suffix, recursively, sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
                )
            )
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def decode(path: Path, rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """Mono float32 at `rate` from any common format and rate.

    libsndfile (WAV, FLAC, OGG/Opus, MP3) is fast and tried first; FFmpeg through PyAV covers the
    rest (M4A/AAC, MP4/WebM audio, WMA, AMR). Both decode as a stream and stop past
    `max_seconds` with `AudioTooLong`, whatever the file's header claims.
    """
    from voiceloop.audio.files import AudioFileError, AudioTooLong, HeaderLies, read_audio

    if not path.exists():
        raise DecodeError(f"{path}: no such file")
    if path.is_dir():
        raise DecodeError(f"{path}: is a folder")
    size = path.stat().st_size
    if size == 0:
        raise DecodeError(f"{path}: empty file (0 bytes)")
    try:
        return read_audio(path, rate, max_seconds)
    except AudioTooLong:
        raise
    except AudioFileError:
        pass  # libsndfile's reasons mislead ("not a regular file" for a corrupt MP3): ask FFmpeg
    try:
        audio = _decode_with_av(path, rate, max_seconds)
    except AudioTooLong:
        raise
    except HeaderLies as exc:
        raise DecodeError(str(exc)) from None
    except Exception as exc:  # PyAV raises a family of FFmpeg errors
        raise DecodeError(
            f"{path}: not audio that can be decoded ({size} bytes that neither libsndfile nor "
            f"FFmpeg recognise: {type(exc).__name__})"
        ) from None
    if audio.size == 0:
        raise DecodeError(f"{path}: holds no audio samples")
    return audio


def _decode_with_av(path: Path, rate: int, max_seconds: float | None) -> np.ndarray:
    import av

    from voiceloop.audio.files import BoundedAudio

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        claimed_s = container.duration / 1_000_000 if container.duration else None
        audio = BoundedAudio(path, rate, rate, max_seconds, claimed_s)  # FFmpeg's resampler does the rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                audio.add(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            audio.add(out.to_ndarray().reshape(-1))
    return audio.finish()


# -- recognising -------------------------------------------------------------------------------


def _decoded(files: Sequence[Path], workers: int) -> Iterator[tuple[Path, np.ndarray | None, str | None]]:
    """(file, audio or None, error) in input order, decoding up to `workers` files ahead."""

    def job(path: Path) -> np.ndarray:
        return decode(path)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode") as pool:
        pending: list[tuple[Path, Future[np.ndarray]]] = []
        queue = iter(files)
        for path in queue:
            pending.append((path, pool.submit(job, path)))
            if len(pending) > workers * 2:
                break
        while pending:
            path, future = pending.pop(0)
            nxt = next(queue, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(job, nxt)))
            try:
                yield path, future.result(), None
            except DecodeError as exc:
                yield path, None, str(exc)
            except Exception as exc:
                yield path, None, f"{path}: {type(exc).__name__}: {exc}"


def transcribe_files(
    recognizer: Any,
    files: Sequence[Path],
    *,
    hotwords: list[str] | None = None,
    batch_files: int = 8,
    batch_seconds: float = 600.0,
    decode_workers: int = 2,
    on_result: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """Every file's result, in input order; failures are results with `error` set."""
    results: dict[Path, FileResult] = {}
    batch: list[tuple[Path, np.ndarray]] = []

    def report(result: FileResult) -> None:
        results[result.file] = result
        if on_result is not None:
            on_result(result)

    def flush() -> None:
        for result in _recognise(recognizer, batch, hotwords):
            report(result)
        batch.clear()

    for path, audio, error in _decoded(files, decode_workers):
        if audio is None:
            report(FileResult(path, error=error))
            continue
        batch.append((path, audio))
        if len(batch) >= batch_files or sum(len(a) for _, a in batch) / SAMPLE_RATE >= batch_seconds:
            flush()
    if batch:
        flush()
    return [results[f] for f in files]


def _recognise(
    recognizer: Any, batch: list[tuple[Path, np.ndarray]], hotwords: list[str] | None
) -> list[FileResult]:
    batched = getattr(recognizer, "transcribe_batch", None)
    if batched is not None and len(batch) > 1:
        with contextlib.suppress(Exception):  # one bad clip spoils a batch: then one by one
            outputs = batched([audio for _, audio in batch], hotwords)
            return [_result(path, out) for (path, _), out in zip(batch, outputs, strict=True)]
    results = []
    for path, audio in batch:
        try:
            results.append(_result(path, recognizer.transcribe(audio, hotwords)))
        except Exception as exc:
            results.append(
                FileResult(path, duration_s=len(audio) / SAMPLE_RATE, error=f"{path}: {one_line(exc)}")
            )
    return results


def _result(path: Path, out: Transcription) -> FileResult:
    return FileResult(
        path, out.text, list(out.timestamps), out.audio_s, out.elapsed_s, language=out.language or ""
    )


def summarise(results: Sequence[FileResult], wall_s: float) -> Summary:
    return Summary(
        files=len(results),
        failed=sum(1 for r in results if not r.ok),
        audio_s=sum(r.duration_s for r in results if r.ok),
        wall_s=wall_s,
    )


# -- output formats ----------------------------------------------------------------------------


def cues(result: FileResult) -> list[tuple[float, float, str]]:
    """Subtitle cues from per-token timestamps: split at pauses and at a readable length.
    Without timestamps (or labels), one cue spans the whole file."""
    from voiceloop.asr.paraformer import join_units

    stamps = [s for s in result.timestamps if s[0]]
    if not stamps:
        return [(0.0, result.duration_s, result.text)] if result.text else []
    out: list[tuple[float, float, str]] = []
    group: list[tuple[str, float, float]] = []
    for stamp in stamps:
        if group and (stamp[1] - group[-1][2] > CUE_GAP_S or len(group) >= CUE_MAX_UNITS):
            out.append((group[0][1], group[-1][2], join_units([u for u, _, _ in group])))
            group = []
        group.append(stamp)
    out.append((group[0][1], group[-1][2], join_units([u for u, _, _ in group])))
    return out


def srt_time(seconds: float) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def render(result: FileResult, fmt: Format) -> str:
    if fmt == "json":
        return json.dumps(result.as_json(), ensure_ascii=False)
    if fmt == "srt":
        blocks = [
            f"{i}\n{srt_time(start)} --> {srt_time(end)}\n{text}\n"
            for i, (start, end, text) in enumerate(cues(result), start=1)
        ]
        return "\n".join(blocks)
    return result.text


def output_paths(results: Sequence[FileResult], out_dir: Path, fmt: Format) -> dict[Path, Path]:
    """`<stem>.<fmt>` per input, with a numeric suffix where two inputs share a stem."""
    taken: set[str] = set()
    paths: dict[Path, Path] = {}
    for result in results:
        name = f"{result.file.stem}.{fmt}"
        n = 1
        while name in taken:
            n += 1
            name = f"{result.file.stem}-{n}.{fmt}"
        taken.add(name)
        paths[result.file] = out_dir / name
    return paths


def write_outputs(results: Sequence[FileResult], out_dir: Path, fmt: Format) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = [r for r in results if r.ok]
    written = []
    for result, path in zip(ok, output_paths(ok, out_dir, fmt).values(), strict=True):
        body = render(result, fmt)
        path.write_text(body if body.endswith("\n") else body + "\n", encoding="utf-8")
        written.append(path)
    return written


def timed(fn: Callable[[], list[FileResult]]) -> tuple[list[FileResult], float]:
    start = time.perf_counter()
    results = fn()
    return results, time.perf_counter() - start
