"""How the transcription requests went, counted where every one of them passes: the ASGI layer.

The recogniser's queue counts only what reached the recogniser; an upload refused as empty,
undecodable or too long never does, yet it is a failed request to whoever sent it. Counting
here, from the status each response goes out with, sees every request whatever route or
check ended it. Each response also carries `Server-Timing: app;dur=<ms>` (the server's own
time for it, upload excluded), which the page divides by the audio's length for a
real-time factor.
"""

from __future__ import annotations

import threading
import time
from typing import Any

Scope = dict[str, Any]
COUNTED_PATHS = frozenset({"/v1/audio/transcriptions", "/asr"})


class RequestCounts:
    """Totals since the server started; read by `/info` as its "requests"."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.succeeded = 0
        self.failed = 0  # refused as the request's fault (4xx): empty, undecodable, too long
        self.busy = 0  # 503: the queue was full
        self.errors = 0  # other 5xx: the server's or the recogniser's fault
        self.seconds = 0.0  # server time spent on the successful ones

    def count(self, status: int, seconds: float) -> None:
        with self._lock:
            self.total += 1
            if status < 400:
                self.succeeded += 1
                self.seconds += seconds
            elif status == 503:
                self.busy += 1
            elif status < 500:
                self.failed += 1
            else:
                self.errors += 1

    def stats(self) -> dict[str, float | int]:
        with self._lock:
            return {
                "total": self.total,
                "succeeded": self.succeeded,
                "failed": self.failed,
                "busy": self.busy,
                "errors": self.errors,
                "busy_s": round(self.seconds, 3),
            }


class RequestTiming:
    """ASGI middleware: Server-Timing on every HTTP response, counts for the transcription routes."""

    def __init__(self, app: Any, counts: RequestCounts) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees when nothing at all went out

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                ms = (time.perf_counter() - started) * 1000
                header = (b"server-timing", f"app;dur={ms:.1f}".encode())
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if scope.get("path") in COUNTED_PATHS and scope.get("method") == "POST":
                self.counts.count(status, time.perf_counter() - started)
