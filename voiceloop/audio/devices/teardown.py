"""Closing PortAudio streams without hanging the program: a stream whose device vanished can
block in close for good, so the work runs in a daemon thread that is waited for only so long."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable


async def run_with_timeout(work: Callable[[], None], timeout_s: float) -> bool:
    """Runs blocking device teardown in a daemon thread: PortAudio can hang closing a stream
    whose device vanished, and that must not hang the program (a default-executor thread
    would be joined at exit)."""
    done = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001  # reported below, never raised into the loop
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=target, name="voiceloop-audio-close", daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while not done.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return done.is_set() and not errors


def stop_in_thread(work: Callable[[], None], timeout_s: float = 3.0) -> bool:
    """The blocking twin of `run_with_timeout`, for code outside an event loop."""
    done = threading.Event()

    def target() -> None:
        try:
            work()
        finally:
            done.set()

    threading.Thread(target=target, name="voiceloop-audio-close", daemon=True).start()
    return done.wait(timeout_s)
