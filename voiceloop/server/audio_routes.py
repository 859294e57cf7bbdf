"""The audio routes: OpenAI's `/v1/audio/transcriptions` and `/v1/audio/speech`, and `/asr`,
the drop-in for hand-made Flask wrappers (a file by name under serve.allowed_dir, or an upload)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, field_validator

from voiceloop.asr.base import iso_language, split_hotwords
from voiceloop.server.errors import ApiError
from voiceloop.server.formats import TRANSCRIPT_FORMATS, as_result, transcript_body
from voiceloop.server.speech_encoding import MEDIA_TYPES
from voiceloop.server.speech_stream import speech_response
from voiceloop.server.sse import SSE_HEADERS, transcript_events
from voiceloop.server.state import recognition_error, state
from voiceloop.server.uploads import decode_checked, read_upload, resolve_allowed

router = APIRouter()


class SpeechRequest(BaseModel):
    """OpenAI's speech request. `model` is accepted and ignored: the configured voice answers."""

    input: str = Field(description="The text to speak (at most 4096 characters).")
    model: str | None = None
    voice: str | None = Field(
        None,
        description="A voice of the configured TTS (espeak: en-us, cmn; edge: en-US-AriaNeural); "
        "OpenAI's names (alloy, nova, ...) mean the configured voice.",
    )
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = Field(
        "mp3",
        description="mp3, opus (in Ogg), aac (ADTS) and pcm (24 kHz s16le) at 24 kHz; wav and flac at "
        "16 kHz. All but flac stream as each sentence is synthesised.",
    )
    stream_format: Literal["audio", "sse"] = Field(
        "audio",
        description="audio: the bytes (chunked); sse: speech.audio.delta events, then speech.audio.done.",
    )
    speed: float = Field(1.0, description="Only 1.0: the voices here speak at their configured rate.")

    @field_validator("input", "voice")
    @classmethod
    def _speakable(cls, text: str | None) -> str | None:
        # JSON can carry half a UTF-16 pair ("\ud800"); no voice can say it, and letting it
        # through fails deep inside the synthesiser instead of here, as the request's fault.
        if text is not None:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"holds an unpaired surrogate at position {exc.start}: not valid Unicode"
                ) from None
            if "\x00" in text:
                raise ValueError("holds a NUL character")
        return text


class FileRequest(BaseModel):
    filename: str = Field(description="A file under serve.allowed_dir (absolute, or relative to it).")


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def require_json(request: Request) -> None:
    """A body a route reads as JSON must say so. Browsers send text/plain and form bodies to
    any site without asking first; only a JSON content type makes them ask (CORS preflight)."""
    content_type = request.headers.get("content-type")
    if content_type is not None and not is_json(content_type):
        raise ApiError(
            415, f"content type '{content_type[:60]}': send JSON (application/json)", "bad_content"
        )


STREAM_FORMATS = ("json", "text")  # OpenAI streams only these


def split_prompt(prompt: str | None) -> list[str] | None:
    """Hotwords from OpenAI's `prompt`; None (the configured ones) when it is empty."""
    return split_hotwords(prompt) if prompt is not None and prompt.strip() else None


# -- OpenAI-compatible audio ----------------------------------------------------------------


@router.post(
    "/v1/audio/transcriptions",
    tags=["audio"],
    summary="Transcribe an audio file (OpenAI-compatible)",
    response_model=None,
    responses={
        200: {
            "content": {
                "application/json": {"example": {"text": "what time is it"}},
                "text/plain": {"example": "what time is it"},
            },
            "description": "json / verbose_json as JSON; text / srt / vtt as text.",
        },
        413: {"description": "Over serve.max_upload_mb or serve.max_audio_s."},
        415: {"description": "A format not in serve.formats."},
        503: {"description": "The recogniser's queue is full; see Retry-After."},
    },
)
async def transcriptions(
    request: Request,
    file: Annotated[UploadFile, File(description="Audio: wav, flac, mp3, ogg/opus, m4a, webm...")],
    model: Annotated[str | None, Form(description="Accepted; the configured recogniser answers.")] = None,
    language: Annotated[
        str | None,
        Form(description="ISO-639-1; verbose_json says this, else the language heard, else asr.language."),
    ] = None,
    response_format: Annotated[str, Form(description="json | text | srt | vtt | verbose_json")] = "json",
    prompt: Annotated[str | None, Form(description="Hotwords (comma or space separated).")] = None,
    temperature: Annotated[float | None, Form(description="Accepted and ignored.")] = None,
    stream: Annotated[
        bool,
        Form(
            description="Server-sent events: transcript.text.delta as the text grows (a streaming "
            "recogniser's partials; otherwise one), then transcript.text.done. json or text only."
        ),
    ] = False,
) -> Response:
    if response_format not in TRANSCRIPT_FORMATS:
        raise ApiError(
            400,
            f"response_format '{response_format}' is not one of {', '.join(TRANSCRIPT_FORMATS)}",
            "bad_response_format",
        )
    if stream and response_format not in STREAM_FORMATS:
        raise ApiError(
            400,
            f"stream=true answers events, not {response_format}: use response_format json or text",
            "bad_response_format",
        )
    server = state(request)
    audio = await read_upload(file, state(request).settings.serve)
    configured = iso_language(server.settings.asr.language)
    if stream:
        hotwords = split_prompt(prompt)
        events = await transcript_events(
            lambda on_partial: server.start_transcription(audio, hotwords, on_partial),
            recognition_error,
            lambda out: language or out.language or configured,
        )
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
    out = await server.transcribe(audio, split_prompt(prompt))
    heard = language or out.language or configured  # asked for, recognised, or configured
    body, media_type = transcript_body(as_result(file.filename or "upload", out), response_format, heard)
    if isinstance(body, dict):
        if response_format == "verbose_json" and out.confidence is not None:
            body["confidence"] = out.confidence  # not OpenAI's; where the recogniser gives one
        return JSONResponse(body)
    return PlainTextResponse(body, media_type=media_type)


@router.post(
    "/v1/audio/speech",
    tags=["audio"],
    summary="Speak text (OpenAI-compatible)",
    response_class=Response,
    responses={
        200: {
            "content": {m: {} for m in [*MEDIA_TYPES.values(), "text/event-stream"]},
            "description": "The audio, streamed as it is synthesised (or server-sent events).",
        }
    },
    dependencies=[Depends(require_json)],
)
async def speech(request: Request, body: SpeechRequest) -> StreamingResponse:
    if body.speed != 1.0:
        raise ApiError(400, f"speed {body.speed:g} is not supported: only 1.0", "bad_speed")
    return await speech_response(
        state(request).speech, body.input, body.voice, body.response_format, body.stream_format
    )


# -- the hand-made wrappers' endpoint ------------------------------------------------------


@router.post(
    "/asr",
    tags=["audio"],
    summary='Transcribe a file by name ({"filename"}, under serve.allowed_dir) or an upload',
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": FileRequest.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
            },
            "required": True,
        }
    },
    responses={200: {"content": {"application/json": {"example": {"text": "what time is it"}}}}},
)
async def asr_endpoint(request: Request) -> dict[str, str]:
    server = state(request)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile) and not hasattr(upload, "read"):
            raise ApiError(400, "the form needs a 'file' field holding the audio", "missing_file")
        audio = await read_upload(upload, state(request).settings.serve)  # type: ignore[arg-type]
    elif is_json(content_type) or not content_type:
        try:
            payload = FileRequest.model_validate(await request.json())
        except ValueError:
            raise ApiError(400, 'send JSON {"filename": "..."} or a multipart upload with "file"') from None
        path = resolve_allowed(payload.filename, state(request).settings.serve)
        audio = await asyncio.to_thread(decode_checked, path, payload.filename, state(request).settings.serve)
    else:
        raise ApiError(415, f"content type '{content_type}': send JSON or multipart/form-data", "bad_content")
    out = await server.transcribe(audio, None)
    return {"text": out.text}
