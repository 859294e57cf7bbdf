"""The gate every request and websocket passes: the Host and Origin checks, the access token,
and the body-size limit.

Pure ASGI (not a route dependency) so that nothing, not the page, not a static file, not a
websocket, is reachable around it. Host and Origin come first (see `origins.py`): a page on
another site gets nothing, token or not. The token may come as `Authorization: Bearer`, as the
`voiceloop_token` cookie, or as `?token=`; opening the page with `?token=` sets the cookie
(HttpOnly, SameSite=Strict), so the page's own requests and websockets carry it without any
script ever holding the token. Comparison is constant-time.

Oversized uploads are refused from their Content-Length before a byte of the body is read;
a chunked body with no length is cut off by FastAPI's `max_body_size` as it streams in.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from voiceloop.server.errors import error_body
from voiceloop.server.origins import OriginPolicy
from voiceloop.server.token_page import token_page, wants_html

COOKIE = "voiceloop_token"
Scope = dict[str, Any]
# Requests that change state; a browser sends these cross-origin without asking (a form POST).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AccessGate:
    def __init__(self, app: Any, token: str | None, max_body_bytes: int, origins: OriginPolicy) -> None:
        if token is not None and not token.strip():
            raise ValueError("an empty token would let everyone in: give a real one, or none")
        self.app = app
        self.token = token.encode() if token is not None else None
        self.max_body_bytes = max_body_bytes
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        host = headers.get("host")
        if not self.origins.host_allowed(host):
            await self._refuse(
                scope,
                send,
                400,
                f"Host '{(host or '')[:80]}' is not a name this server answers to "
                "(add it to serve.allowed_hosts)",
                "bad_host",
            )
            return
        changes_state = scope["type"] == "websocket" or scope.get("method", "GET") in UNSAFE_METHODS
        origin = headers.get("origin")
        if changes_state and not self.origins.origin_allowed(origin, host):
            await self._refuse(
                scope,
                send,
                403,
                f"requests from the page at '{(origin or '')[:80]}' are not allowed "
                "(add its origin to serve.allowed_origins)",
                "origin_forbidden",
            )
            return
        if self.token is not None:
            given = _bearer(headers) or _cookie(headers) or (query.get("token") or [None])[0]
            if given is None or not hmac.compare_digest(given.encode(), self.token):
                if scope["type"] == "http" and wants_html(scope.get("method", "GET"), headers.get("accept")):
                    await _send_token_page(scope, send, headers, wrong=given is not None)
                    return
                await self._refuse(
                    scope,
                    send,
                    401,
                    "a valid token is required (Authorization: Bearer <token>, "
                    "or open the page as /?token=<token>)"
                    if given is None
                    else "wrong token",
                )
                return
            if scope["type"] == "http" and "token" in query:
                send = _with_cookie(send, self.token.decode())
        if scope["type"] == "http":
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                limit_mb = self.max_body_bytes / 2**20
                await self._refuse(
                    scope,
                    send,
                    413,
                    f"the request body ({int(length) / 2**20:.1f} MB) is "
                    f"over the {limit_mb:.0f} MB limit (serve.max_upload_mb)",
                    "file_too_large",
                )
                return
        await self.app(scope, receive, send)

    async def _refuse(
        self, scope: Scope, send: Any, status: int, message: str, code: str | None = None
    ) -> None:
        if scope["type"] == "websocket":
            # Before accept(), a close is answered as an HTTP 403 by the server.
            close_code = {401: 4401, 403: 4403}.get(status, 4400)
            await send({"type": "websocket.close", "code": close_code, "reason": message[:120]})
            return
        body = json.dumps(
            error_body(status, message, code or ("unauthorized" if status == 401 else None))
        ).encode()
        extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _send_token_page(scope: Scope, send: Any, headers: dict[str, str], *, wrong: bool) -> None:
    """A person at a browser gets a form for the token, still as a 401."""
    body = token_page(scope.get("path", "/"), wrong=wrong, accept_language=headers.get("accept-language"))
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"www-authenticate", b"Bearer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})


def _bearer(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _cookie(headers: dict[str, str]) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def _with_cookie(send: Any, token: str) -> Any:
    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict".encode("latin-1")
            message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
        await send(message)

    return sending
