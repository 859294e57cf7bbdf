"""Every failure the API reports is an `ApiError`: a status, a type and one clear line.

The body is OpenAI's error shape (`{"error": {"message", "type", "code"}}`) so OpenAI clients
surface the message as they would OpenAI's own. Anything unexpected is logged once, with its
traceback, on the server and answered as a one-line 500: a client never sees a traceback, and
its keep-alive connection stays open (an exception that escapes to uvicorn is logged a second
time and costs the client its connection, so `UnexpectedErrors` never lets one escape after
a whole response went out).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("voiceloop.server")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request_error",
    503: "server_busy",
}


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error"), "code": code}}


def error_response(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, code), status_code=status, headers=headers)


def install_handlers(app: FastAPI, too_large_message: str = "the request body is too large") -> None:
    """`too_large_message` replaces Starlette's bare "Content Too Large" when a streamed body
    runs past the app's `max_body_size`."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query"))
            problems.append(
                f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "invalid")
            )
        return error_response(400, "; ".join(problems) or "invalid request", "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:
            return error_response(413, too_large_message, "file_too_large", getattr(exc, "headers", None))
        return error_response(exc.status_code, str(exc.detail), None, getattr(exc, "headers", None))

    app.add_middleware(UnexpectedErrors)


class UnexpectedErrors:
    """The last net for HTTP requests: one log line with the traceback, a one-line 500, and no
    exception left for the server to log again or to close the connection over."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            log.error("unexpected error in %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
            if started:
                raise  # part of a response went out: only a closed connection tells the client
            response = error_response(
                500, f"internal error: {type(exc).__name__} (details in the server log)"
            )
            await response(scope, receive, send)
