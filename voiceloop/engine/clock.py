"""Where the runtime gets its time: stamps, waits, stage timeouts and blocking work.

Every timing rule (the stop window, speculation, barge-in, the watchdog, stage timeouts) is
measured on one clock, so a test can swap it for a stepped one (`voiceloop.testing.stepped`)
and place a rule to the frame without waiting in real time. Nothing in `voiceloop.engine`
calls `time` or `asyncio.sleep` itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

from voiceloop.audio.base import DuplexAudio

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float:
        """The time every event and measurement is stamped with (the device's clock)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        """Bounds a stage call: raises TimeoutError in the block once `seconds` have passed."""
        ...

    async def run_blocking(self, work: Callable[..., T], *args: object) -> T:
        """Runs blocking work (recognition) without holding up the frame loop."""
        ...


class DeviceClock:
    """Real time. Stamps come from the device, whose clock a fast virtual room scales; waits
    and timeouts are on the event loop's clock, so a stage timeout is in real seconds at any
    room speed (a stalled service takes as long to give up whatever the room does)."""

    def __init__(self, device: DuplexAudio) -> None:
        self._device = device

    def now(self) -> float:
        return self._device.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)

    async def run_blocking(self, work: Callable[..., T], *args: object) -> T:
        return await asyncio.to_thread(work, *args)
