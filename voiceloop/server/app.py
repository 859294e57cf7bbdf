"""The `voiceloop serve` application: OpenAI-compatible audio endpoints, the `/asr` drop-in,
health and info, the live session feed, and the web page, in one process around one model.

`create_app` loads the recogniser (and warms it up) before it returns, so a missing model is
a clear error at startup rather than a failed first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, field_validator

from voiceloop.asr.base import AsrError, AsrInputError, SpeechRecognizer, Transcription, split_hotwords
from voiceloop.audio.script import UserScript
from voiceloop.config import Settings
from voiceloop.errors import one_line
from voiceloop.llm.base import ChatModel
from voiceloop.server import info
from voiceloop.server.asr_queue import QueueFull, RecognizerQueue
from voiceloop.server.auth import AccessGate
from voiceloop.server.errors import ApiError, install_handlers
from voiceloop.server.formats import (
    MEDIA_TYPES,
    TRANSCRIPT_FORMATS,
    as_result,
    speech_body,
    transcript_body,
)
from voiceloop.server.live import LiveHub
from voiceloop.server.origins import OriginPolicy
from voiceloop.server.speech import SpeechService
from voiceloop.server.uploads import decode_checked, read_upload, resolve_allowed
from voiceloop.tts.base import SpeechSynthesizer

STATIC_DIR = Path(__file__).parent / "static"


class RevalidatedStaticFiles(StaticFiles):
    """The page's scripts are checked (ETag) on every load: a kiosk that runs for weeks must
    not keep last version's app.js after an upgrade."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


class SpeechRequest(BaseModel):
    """OpenAI's speech request. `model` is accepted and ignored: the configured voice answers."""

    input: str = Field(description="The text to speak (at most 4096 characters).")
    model: str | None = None
    voice: str | None = Field(
        None,
        description="A voice of the configured TTS (espeak: en-us, cmn; edge: en-US-AriaNeural); "
        "OpenAI's names (alloy, nova, ...) mean the configured voice.",
    )
    response_format: Literal["wav", "mp3", "pcm", "flac"] = "mp3"
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


class SessionRequest(BaseModel):
    source: Literal["demo", "devices"] = "demo"


def split_prompt(prompt: str | None) -> list[str] | None:
    """Hotwords from OpenAI's `prompt`; None (the configured ones) when it is empty."""
    return split_hotwords(prompt) if prompt is not None and prompt.strip() else None


class ServerState:
    def __init__(
        self,
        settings: Settings,
        recognizer: SpeechRecognizer,
        speech: SpeechService,
        hub: LiveHub,
        queue: RecognizerQueue,
    ) -> None:
        self.settings = settings
        self.recognizer = recognizer
        self.speech = speech
        self.hub = hub
        self.queue = queue
        self.started = time.monotonic()

    async def transcribe(self, audio: Any, hotwords: list[str] | None) -> Transcription:
        try:
            return await self.queue.transcribe(audio, hotwords)
        except QueueFull as exc:
            raise ApiError(503, f"the recogniser is busy: {exc}", "busy", {"Retry-After": "1"}) from None
        except AsrInputError as exc:
            raise ApiError(400, one_line(exc), "asr_rejected") from None
        except AsrError as exc:  # the recogniser (or the server behind it) failed, not the request
            raise ApiError(502, f"the recogniser failed: {one_line(exc)}", "asr_failed") from None
        except Exception as exc:
            first = one_line(exc)
            raise ApiError(500, f"recognition failed: {first}", "asr_failed") from None


def create_app(
    settings: Settings,
    *,
    asr: SpeechRecognizer | None = None,
    tts: SpeechSynthesizer | None = None,
    script: UserScript | None = None,
    llm_factory: Callable[[Settings], Awaitable[ChatModel]] | None = None,
    start_session: str | None = None,
) -> FastAPI:
    """`start_session` ("demo" or "devices") starts a live session as the server starts: a
    kiosk's screen shows its own conversation from boot."""
    from voiceloop import __version__
    from voiceloop.build import build_adapter

    recognizer = asr if asr is not None else build_adapter(settings, "asr")
    recognizer.warm_up()
    serve = settings.serve
    queue = RecognizerQueue(
        recognizer, workers=serve.workers, capacity=serve.queue, batch_max=serve.batch_max
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.voiceloop = ServerState(
            settings,
            recognizer,
            SpeechService(settings, tts),
            LiveHub(settings, queue, script=script, llm_factory=llm_factory),
            queue,
        )
        if start_session is not None:
            await app.state.voiceloop.hub.start(start_session)
        try:
            yield
        finally:
            state: ServerState = app.state.voiceloop
            await state.hub.aclose()
            await state.speech.aclose()
            await asyncio.to_thread(queue.close)
            recognizer.close()

    max_body_bytes = int(serve.max_upload_mb * 1024 * 1024) + 256 * 1024  # + multipart's own bytes
    app = FastAPI(
        title="voiceloop",
        version=__version__,
        summary="Speech recognition, speech synthesis and a live voice-assistant session.",
        lifespan=lifespan,
        # A chunked upload has no Content-Length to refuse up front: it is cut off here, as it
        # streams in, before more than the limit reaches the temporary file.
        max_body_size=max_body_bytes,
    )
    app.add_middleware(
        AccessGate,
        token=serve.token.get_secret_value() if serve.token is not None else None,
        max_body_bytes=max_body_bytes,
        origins=OriginPolicy.for_bind(serve.host, serve.allowed_hosts, serve.allowed_origins),
    )
    install_handlers(
        app,
        too_large_message=f"the request body is over the {serve.max_upload_mb:g} MB limit (serve.max_upload_mb)",
    )

    def state(request: Request | WebSocket) -> ServerState:
        return request.app.state.voiceloop

    # -- OpenAI-compatible audio ----------------------------------------------------------------

    @app.post(
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
        language: Annotated[str | None, Form(description="ISO-639-1; echoed in verbose_json.")] = None,
        response_format: Annotated[str, Form(description="json | text | srt | vtt | verbose_json")] = "json",
        prompt: Annotated[str | None, Form(description="Hotwords (comma or space separated).")] = None,
        temperature: Annotated[float | None, Form(description="Accepted and ignored.")] = None,
    ) -> Response:
        if response_format not in TRANSCRIPT_FORMATS:
            raise ApiError(
                400,
                f"response_format '{response_format}' is not one of {', '.join(TRANSCRIPT_FORMATS)}",
                "bad_response_format",
            )
        server = state(request)
        audio = await read_upload(file, settings.serve)
        out = await server.transcribe(audio, split_prompt(prompt))
        body, media_type = transcript_body(
            as_result(file.filename or "upload", out), response_format, language
        )
        if isinstance(body, dict):
            return JSONResponse(body)
        return PlainTextResponse(body, media_type=media_type)

    @app.post(
        "/v1/audio/speech",
        tags=["audio"],
        summary="Speak text (OpenAI-compatible)",
        response_class=Response,
        responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()}, "description": "The audio."}},
        dependencies=[Depends(require_json)],
    )
    async def speech(request: Request, body: SpeechRequest) -> Response:
        if body.speed != 1.0:
            raise ApiError(400, f"speed {body.speed:g} is not supported: only 1.0", "bad_speed")
        audio = await state(request).speech.synthesize(body.input, body.voice)
        data, headers = await asyncio.to_thread(speech_body, audio, body.response_format)
        return Response(data, media_type=MEDIA_TYPES[body.response_format], headers=headers)

    # -- the hand-made wrappers' endpoint ------------------------------------------------------

    @app.post(
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
            audio = await read_upload(upload, settings.serve)  # type: ignore[arg-type]
        elif is_json(content_type) or not content_type:
            try:
                payload = FileRequest.model_validate(await request.json())
            except ValueError:
                raise ApiError(
                    400, 'send JSON {"filename": "..."} or a multipart upload with "file"'
                ) from None
            path = resolve_allowed(payload.filename, settings.serve)
            audio = await asyncio.to_thread(decode_checked, path, payload.filename, settings.serve)
        else:
            raise ApiError(
                415, f"content type '{content_type}': send JSON or multipart/form-data", "bad_content"
            )
        out = await server.transcribe(audio, None)
        return {"text": out.text}

    # -- health and info -------------------------------------------------------------------------

    @app.get("/health", tags=["server"], summary="Liveness: the model is loaded and answering")
    async def health(request: Request) -> dict[str, Any]:
        server = state(request)
        return {
            "status": "ok",
            "asr_loaded": True,
            "uptime_s": round(time.monotonic() - server.started, 1),
            "queue": {"in_flight": server.queue.in_flight, "waiting": server.queue.waiting},
        }

    @app.get("/info", tags=["server"], summary="Models, device, CUDA, memory, versions, limits")
    async def server_info(request: Request) -> dict[str, Any]:
        server = state(request)
        serve_cfg = settings.serve
        llm = settings.llm
        backend = llm.default or llm.name
        model = llm.backends[llm.default].model if llm.default in llm.backends else llm.model
        return {
            "version": __version__,
            **info.host(),
            "device": info.device_of(server.recognizer),
            "asr": {
                "name": server.recognizer.name,
                "description": getattr(server.recognizer, "description", server.recognizer.name),
                "device": info.device_of(server.recognizer),
                "loaded": True,
            },
            "tts": server.speech.describe(),
            "llm": {"backend": backend, "model": None if backend == "echo" else model},
            "cuda": info.cuda(),
            "memory": info.memory(),
            "versions": info.versions(),
            "limits": {
                "max_upload_mb": serve_cfg.max_upload_mb,
                "max_audio_s": serve_cfg.max_audio_s,
                "formats": serve_cfg.formats,
            },
            "queue": server.queue.stats(),
            "session": server.hub.status(),
        }

    # -- the live session ------------------------------------------------------------------------

    @app.get("/v1/session", tags=["session"], summary="The live session's status")
    async def session_status(request: Request) -> dict[str, Any]:
        return state(request).hub.status()

    @app.post(
        "/v1/session",
        tags=["session"],
        summary="Start a live session (the demo room or this machine's devices)",
        dependencies=[Depends(require_json)],
    )
    async def session_start(request: Request, body: SessionRequest | None = None) -> dict[str, Any]:
        return await state(request).hub.start((body or SessionRequest()).source)

    @app.delete("/v1/session", tags=["session"], summary="Stop the live session")
    async def session_stop(request: Request) -> dict[str, Any]:
        return await state(request).hub.stop()

    @app.websocket("/v1/session/events")
    async def session_events(websocket: WebSocket) -> None:
        hub = state(websocket).hub
        await websocket.accept()
        queue = hub.subscribe()

        async def until_the_page_leaves() -> None:
            # The feed is one-way, but reading is how a page that left is noticed at once
            # (not at the next event), so it neither lingers as a subscriber nor holds up shutdown.
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass

        leaving = asyncio.create_task(until_the_page_leaves())
        try:
            await websocket.send_json(hub.snapshot().wire())
            while True:
                getting = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getting, leaving}, return_when=asyncio.FIRST_COMPLETED)
                if leaving in done:
                    getting.cancel()
                    break
                if (event := getting.result()) is None:
                    break
                await websocket.send_json(event.wire())
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            leaving.cancel()
            hub.unsubscribe(queue)

    @app.websocket("/v1/session/talk")
    async def session_talk(websocket: WebSocket) -> None:
        from voiceloop.server.talk import talk

        await talk(websocket, state(websocket).hub)

    # -- the page --------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    if STATIC_DIR.is_dir():
        app.mount("/static", RevalidatedStaticFiles(directory=STATIC_DIR), name="static")
    return app
