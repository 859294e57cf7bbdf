"""The `voiceloop serve` application: OpenAI-compatible audio endpoints, the `/asr` drop-in,
health and info, the live session feed, and the web page, in one process around one model.

`create_app` loads the recogniser (and warms it up) before it returns, so a missing model is
a clear error at startup rather than a failed first request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from voiceloop.asr.base import SpeechRecognizer
from voiceloop.audio.script import UserScript
from voiceloop.config import Settings
from voiceloop.llm.base import ChatModel
from voiceloop.server import audio_routes, info, model_routes, session_routes
from voiceloop.server.api_docs import install_api_docs
from voiceloop.server.asr_queue import RecognizerQueue
from voiceloop.server.auth import AccessGate
from voiceloop.server.errors import install_handlers
from voiceloop.server.live import LiveHub
from voiceloop.server.origins import OriginPolicy
from voiceloop.server.request_stats import RequestCounts, RequestTiming
from voiceloop.server.speech import SpeechService
from voiceloop.server.state import ServerState, state
from voiceloop.tts.base import SpeechSynthesizer

STATIC_DIR = Path(__file__).parent / "static"


class RevalidatedStaticFiles(StaticFiles):
    """The page's scripts are checked (ETag) on every load: a kiosk that runs for weeks must
    not keep last version's app.js after an upgrade."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


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
    if settings.asr.streaming:  # stream=true requests get the streaming model's partials
        from voiceloop.asr.two_pass import TwoPassRecognizer
        from voiceloop.build.pipeline import build_streaming

        recognizer = TwoPassRecognizer(recognizer, build_streaming(settings))
    recognizer.warm_up()
    info.cpu()  # primes the CPU counters, which measure from one call to the next
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
            server: ServerState = app.state.voiceloop
            await server.hub.aclose()
            await server.speech.aclose()
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
        docs_url=None,  # /docs and /redoc come from api_docs, with their assets served here
        redoc_url=None,
    )
    install_api_docs(app)
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
    # Outermost: it counts and times whatever answered, the gate's refusals included.
    requests = RequestCounts()
    app.add_middleware(RequestTiming, counts=requests)

    app.include_router(audio_routes.router)
    app.include_router(model_routes.router)
    app.include_router(session_routes.router)

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
            "cpu": info.cpu(),
            "versions": info.versions(),
            "limits": {
                "max_upload_mb": serve_cfg.max_upload_mb,
                "max_audio_s": serve_cfg.max_audio_s,
                "formats": serve_cfg.formats,
            },
            "queue": server.queue.stats(),
            "requests": requests.stats(),
            "session": server.hub.status(),
        }

    # -- the page --------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    if STATIC_DIR.is_dir():
        app.mount("/static", RevalidatedStaticFiles(directory=STATIC_DIR), name="static")
    return app
