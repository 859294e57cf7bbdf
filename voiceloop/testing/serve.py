"""The real `voiceloop serve` app on a loopback port, in a background thread, for tests and
benchmarks: requests go through uvicorn, the HTTP parser, the middleware, everything."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from voiceloop.config import Settings
from voiceloop.testing.threaded import ThreadedServer


@contextlib.contextmanager
def running_server(settings: Settings, host: str = "127.0.0.1", **app_options: Any) -> Iterator[str]:
    """Yields the base URL ("http://127.0.0.1:PORT") once the server answers."""
    from voiceloop.server.app import create_app
    from voiceloop.server.listen import uvicorn_options

    if host != settings.serve.host:  # as `voiceloop serve --host` does: the app knows its bind
        settings = settings.model_copy(update={"serve": settings.serve.model_copy(update={"host": host})})
    runner = ThreadedServer(
        create_app(settings, **app_options),
        name="voiceloop server",
        host=host,
        lifespan="on",
        start_timeout_s=30,
        stop_timeout_s=15,
        **uvicorn_options(settings.serve),
    )
    port = runner.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        runner.stop()
