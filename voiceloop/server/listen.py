"""How uvicorn runs the app: one set of options for `voiceloop serve` and for the tests and
benchmarks that start the real server, so they exercise what users run."""

from __future__ import annotations

from typing import Any

from voiceloop.config.settings import ServeSettings


def uvicorn_options(serve: ServeSettings) -> dict[str, Any]:
    return {
        "ws": "websockets-sansio",
        # Longer than any client's own idle expiry (httpx and openai: 5 s). With uvicorn's 5 s
        # default the two clocks race: a client sends on a connection it still counts as alive
        # just as the server closes it, and the request is lost (CI saw httpx.ReadError).
        "timeout_keep_alive": serve.keep_alive_s,
        "log_level": "warning",
    }
