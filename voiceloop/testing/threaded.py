"""An ASGI app served by uvicorn from a background thread, for the local stand-in servers and
for `voiceloop serve` in tests: the socket is bound before the thread starts (so the port is
known and there is no race for it), start returns once uvicorn accepts, stop is bounded."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

HOST = "127.0.0.1"


class ThreadedServer:
    def __init__(
        self,
        app: Any,
        *,
        name: str,
        host: str = HOST,
        port: int = 0,
        lifespan: str = "off",
        ws: str = "auto",
        start_timeout_s: float = 5.0,
        stop_timeout_s: float = 5.0,
        **uvicorn_options: Any,
    ) -> None:
        """`uvicorn_options` go to uvicorn.Config as they are (over the defaults here)."""
        import uvicorn

        self.host = host
        self.port = port
        self.name = name
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        options: dict[str, Any] = {
            "log_config": None,  # leave the host program's logging configuration alone
            "log_level": "warning",
            "access_log": False,
            "lifespan": lifespan,
            "ws": ws,
            "timeout_graceful_shutdown": 1,  # a still-connected stalled request must not pin stop()
            **uvicorn_options,
        }
        self._server = uvicorn.Server(uvicorn.Config(app, **options))
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Serves; returns the port once the server answers."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {self.name} did not start on {self.host}:{self.port}")
            time.sleep(0.005)
        return self.port

    def stop(self) -> None:
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=self.stop_timeout_s)
        self._thread = None


class Serving:
    """start() and stop() as a context manager, sync and async: the stand-in servers' shape."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


class AppServer(Serving):
    """A stand-in server's ASGI `app` on a loopback port, served from a background thread."""

    server_name = "stand-in server"
    app: Any
    port: int
    _runner: ThreadedServer | None = None

    @property
    def base_url(self) -> str:
        """Where an OpenAI-style client points (its API lives under /v1)."""
        return f"http://{HOST}:{self.port}/v1"

    def start(self) -> Self:
        """The socket is bound here, so there is no race for the port."""
        self._runner = ThreadedServer(self.app, name=self.server_name, port=self.port)
        self.port = self._runner.start()
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()
            self._runner = None
