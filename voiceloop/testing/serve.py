"""The real `voiceloop serve` app on a loopback port, in a background thread, for tests and
benchmarks: requests go through uvicorn, the HTTP parser, the middleware, everything."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from voiceloop.config import Settings
from voiceloop.testing.llm_server import unused_port


@contextlib.contextmanager
def running_server(settings: Settings, host: str = "127.0.0.1", **app_options: Any) -> Iterator[str]:
    """Yields the base URL ("http://127.0.0.1:PORT") once the server answers."""
    import uvicorn

    from voiceloop.server.app import create_app

    app = create_app(settings, **app_options)
    port = unused_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", ws="websockets-sansio")
    )
    thread = threading.Thread(target=server.run, name="voiceloop-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
