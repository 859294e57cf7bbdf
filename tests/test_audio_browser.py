"""The browser as a device: frame stamps on the server's clock, whatever the network does.

The page captures 20 ms of audio per message at its audio clock's pace; the network delivers
those messages late by varying amounts, and a stalled page delivers a burst. The clock is
driven by hand here so that each delivery's timing is exact."""

from __future__ import annotations

import asyncio
from itertools import pairwise

import numpy as np
import pytest

from voiceloop.audio.browser import ORIGIN_WINDOW_S, BrowserDuplex
from voiceloop.audio.playback import PlaybackQueue

MESSAGE_S = 0.02
MESSAGE = np.zeros(320, "<i2").tobytes()


class PageOnAClock(BrowserDuplex):
    """A BrowserDuplex whose `now()` is a clock the test sets; the loop takes each frame as
    soon as it is there, and each frame's stamp and each delivery's arrival are kept."""

    def __init__(self) -> None:
        async def send_audio(pcm: bytes) -> None:
            pass

        super().__init__(send_audio)
        self.clock = 100.0
        self.deliveries: list[tuple[bytes, float]] = []
        self.arrivals: list[tuple[int, float]] = []  # (frames received by then, arrival)
        self.stamps: list[float] = []

    def now(self) -> float:
        return self.clock

    def deliver(self, message: bytes, at: float) -> None:
        self.deliveries.append((message, at))

    def run(self) -> list[float]:
        async def loop() -> None:
            frames = self.frames(PlaybackQueue())
            for message, at in self.deliveries:
                self.clock = at
                self.push_mic(message)
                self.arrivals.append((self.mic_samples // 160, at))
                while len(self.stamps) < self.mic_samples // 160:
                    self.stamps.append((await anext(frames)).captured_at)
            self.end()
            await frames.aclose()

        asyncio.run(loop())
        return self.stamps


def assert_never_stamped_before_it_arrived(page: PageOnAClock, stamps: list[float]) -> None:
    for frames_by_then, arrived_at in page.arrivals:
        # The last frame of a message began 10 ms before the message could have been sent.
        assert stamps[frames_by_then - 1] <= arrived_at - 0.01 + 1e-9


def test_a_burst_after_a_stall_keeps_the_pace_the_audio_was_captured_at():
    page = PageOnAClock()
    network_delay = 0.03
    for i in range(50):  # one second, delivered evenly
        page.deliver(MESSAGE, 100 + (i + 1) * MESSAGE_S + network_delay)
    stalled_until = 100 + 1.5 + network_delay
    for i in range(50, 75):  # half a second held up, then all of it at once
        page.deliver(MESSAGE, stalled_until + (i - 50) * 1e-4)
    for i in range(75, 100):  # and even again
        page.deliver(MESSAGE, 100 + (i + 1) * MESSAGE_S + network_delay)

    stamps = page.run()
    assert len(stamps) == 200
    assert np.allclose(np.diff(stamps), 0.01)  # neither squeezed by the burst nor pushed apart
    assert stamps[0] == pytest.approx(100 + network_delay)  # the fastest delivery's clock
    assert_never_stamped_before_it_arrived(page, stamps)


def test_one_quick_delivery_moves_the_stamps_back_without_reordering_them():
    page = PageOnAClock()
    for i in range(25):
        page.deliver(MESSAGE, 100 + (i + 1) * MESSAGE_S + 0.08)
    for i in range(25, 50):  # the network got faster by 50 ms (still in order: one stream)
        page.deliver(MESSAGE, max(page.deliveries[-1][1], 100 + (i + 1) * MESSAGE_S + 0.03))

    stamps = page.run()
    assert all(later >= earlier for earlier, later in pairwise(stamps))
    assert stamps[-1] == pytest.approx(100 + 0.03 + 0.99)  # the last of 100 frames, on the faster clock
    assert_never_stamped_before_it_arrived(page, stamps)


def test_after_the_page_pauses_the_stamps_catch_up_with_the_clock():
    """A page that stopped sending (a suspended tab) skipped its audio: the samples after it
    belong to later times, found once the deliveries before the pause leave the window."""
    page = PageOnAClock()
    for i in range(50):
        page.deliver(MESSAGE, 100 + (i + 1) * MESSAGE_S)
    resumed_at = 100 + 1 + 5.0
    resumed_messages = int((ORIGIN_WINDOW_S + 1) / MESSAGE_S)
    for i in range(resumed_messages):
        page.deliver(MESSAGE, resumed_at + (i + 1) * MESSAGE_S)

    stamps = page.run()
    last_arrival = page.arrivals[-1][1]
    assert stamps[-1] == pytest.approx(last_arrival - 0.01)
    assert all(later >= earlier for earlier, later in pairwise(stamps))
    assert_never_stamped_before_it_arrived(page, stamps)


def test_a_message_that_splits_a_frame_stamps_it_by_its_first_sample():
    page = PageOnAClock()
    page.deliver(np.zeros(100, "<i2").tobytes(), 100.00625)  # 6.25 ms of audio
    page.deliver(np.zeros(220, "<i2").tobytes(), 100.02)  # the rest of the first 20 ms
    stamps = page.run()
    assert stamps == pytest.approx([100.0, 100.01])
