"""Uploaded audio in, 16 kHz mono float32 out, or a 4xx that says what was wrong with it.

Limits are checked as early as they can be: size while the upload is copied (and from
Content-Length before it is read at all, in `auth.py`), the format by name, the duration from
the file's header before decoding, so an honest two-hour recording is refused in milliseconds.
A header may lie or say nothing (a browser's WebM recording has no duration; a streaming FLAC
encoder writes "unknown"), so decoding itself stops at `serve.max_audio_s`: the work and memory
of a request are bounded by the limit, whatever the file claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

import numpy as np
from fastapi import UploadFile

from voiceloop.asr.batch import DecodeError, decode
from voiceloop.audio.files import AudioTooLong
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.config.settings import ServeSettings
from voiceloop.server.errors import ApiError

COPY_CHUNK = 1 << 20
MIN_SAMPLES = 160  # 10 ms: less is a truncated or empty file, not something to recognise


def check_format(filename: str, limits: ServeSettings) -> str:
    """The suffix, if allowed; a name without one is left to the decoder to judge."""
    suffix = Path(filename or "").suffix.lower().lstrip(".")
    allowed = [f.lower().lstrip(".") for f in limits.formats]
    if suffix and suffix not in allowed:
        raise ApiError(
            415,
            f"'{filename}': .{suffix} files are not accepted (serve.formats: {', '.join(allowed)})",
            "unsupported_format",
        )
    return suffix


async def save_upload(upload: UploadFile, limits: ServeSettings, into: Path) -> Path:
    """Copies the upload to a file in `into`, refusing it past serve.max_upload_mb."""
    name = upload.filename or "upload"
    suffix = check_format(name, limits)
    limit = int(limits.max_upload_mb * 1024 * 1024)
    path = into / f"upload.{suffix or 'bin'}"
    size = 0
    with path.open("wb") as out:
        while chunk := await upload.read(COPY_CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large(name, limits)
            out.write(chunk)
    if size == 0:
        raise ApiError(400, f"'{name}' is empty (0 bytes)", "empty_file")
    return path


def too_large(name: str, limits: ServeSettings) -> ApiError:
    return ApiError(
        413,
        f"'{name}' is larger than the {limits.max_upload_mb:g} MB limit (serve.max_upload_mb)",
        "file_too_large",
    )


# libsndfile's frame count for a stream whose length the header leaves open (SF_COUNT_MAX).
UNKNOWN_FRAMES = 2**62


def probe_duration(path: Path) -> float | None:
    """Seconds of audio from the header alone, where the container says; None if unknown."""
    import soundfile as sf

    with contextlib.suppress(Exception):
        info = sf.info(str(path))
        if 0 < info.frames < UNKNOWN_FRAMES and info.samplerate > 0:
            return info.frames / info.samplerate
    with contextlib.suppress(Exception):
        import av

        with av.open(str(path)) as container:
            if container.duration:
                return container.duration / 1_000_000
    return None


def decode_checked(path: Path, name: str, limits: ServeSettings) -> np.ndarray:
    """Decodes a local file under the duration limit; errors name `name`, never temp paths."""
    duration = probe_duration(path)
    if duration is not None and duration > limits.max_audio_s:
        raise too_long(name, duration, limits)
    try:
        audio = decode(path, SAMPLE_RATE, limits.max_audio_s)
    except AudioTooLong:
        said = "" if duration is None else f", though its header says {duration:.1f} s"
        raise ApiError(
            413,
            f"'{name}' is longer than the {limits.max_audio_s:g} s limit (serve.max_audio_s){said}",
            "audio_too_long",
        ) from None
    except DecodeError as exc:
        reason = str(exc).replace(str(path), f"'{name}'")
        raise ApiError(400, reason, "invalid_audio") from None
    seconds = len(audio) / SAMPLE_RATE
    if len(audio) < MIN_SAMPLES:
        raise ApiError(
            400, f"'{name}' holds {seconds * 1000:.1f} ms of audio: truncated or empty", "invalid_audio"
        )
    if seconds > limits.max_audio_s:
        raise too_long(name, seconds, limits)
    return audio


def too_long(name: str, seconds: float, limits: ServeSettings) -> ApiError:
    return ApiError(
        413,
        f"'{name}' is {seconds:.1f} s long; the limit is {limits.max_audio_s:g} s (serve.max_audio_s)",
        "audio_too_long",
    )


async def read_upload(upload: UploadFile, limits: ServeSettings) -> np.ndarray:
    name = upload.filename or "upload"
    with tempfile.TemporaryDirectory(prefix="voiceloop-upload-") as folder:
        path = await save_upload(upload, limits, Path(folder))
        return await asyncio.to_thread(decode_checked, path, name, limits)


def resolve_allowed(filename: str, limits: ServeSettings) -> Path:
    """`POST /asr {"filename"}`: the real path, only if it lies under serve.allowed_dir
    (symlinks and `..` resolved first, so neither can step outside). Errors name the file as
    the client gave it, never the server's own folders."""
    if limits.allowed_dir is None:
        raise ApiError(
            403,
            "reading files by name is off: set serve.allowed_dir to the folder clients may name",
            "filename_disabled",
        )
    check_name(filename)
    root = Path(limits.allowed_dir).expanduser().resolve()
    requested = Path(filename).expanduser()
    if not requested.is_absolute():
        requested = root / requested
    real = requested.resolve()
    if not real.is_relative_to(root):
        raise ApiError(403, f"'{filename}' is outside the allowed folder", "path_forbidden")
    if not real.is_file():
        raise ApiError(404, f"'{filename}': no such file in the allowed folder", "file_not_found")
    check_format(real.name, limits)
    return real


def check_name(filename: str) -> None:
    """A name no file system holds (a NUL, a control character, half a UTF-16 pair) is the
    request's mistake: a 400, not an OS error deep in path resolution."""
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in filename[:120])
    if not filename.strip():
        raise ApiError(400, "filename is empty", "bad_filename")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in filename):
        raise ApiError(400, f"filename '{shown}' holds a control character", "bad_filename")
    try:
        filename.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"filename '{shown}' is not valid Unicode", "bad_filename") from None
