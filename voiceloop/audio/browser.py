"""A web page as the microphone and speaker: audio over a websocket, paced by the browser.

The browser captures with its own echo cancellation on (`getUserMedia({echoCancellation:
true})`): it knows exactly what it plays and when, which a server across a network never
does, so the loop runs without a canceller of its own (`aec.name = "none"`) on this device.

The browser's audio clock paces everything here: every 10 ms of mic audio that arrives pulls
exactly 10 ms from the playback queue and sends it back, so playback runs at the rate the
browser captures and the two cannot drift.

Each frame is stamped on `now()`'s clock (the event loop's, which stamps the loop's own
events), so latencies that span both come out right. The network delays messages unevenly
and a stalled page sends in bursts, so a message's arrival alone would squeeze a burst's frames
together, and a stamp pushed to keep 10 ms apart would run ahead of the clock (an endpoint that
comes before the speech ended). Instead the frames are stamped at the pace of their samples
from the fastest delivery seen in the last couple of seconds: never later than the audio could
have arrived, 10 ms apart, and following a clock that drifts or a page that pauses within that
window.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np

from voiceloop.audio.base import DuplexFrame
from voiceloop.audio.frames import FRAME_SAMPLES
from voiceloop.audio.playback import PlaybackQueue

FRAME_S = FRAME_SAMPLES / 16_000
MAX_BUFFERED_S = 2.0  # mic audio not yet consumed; beyond this the oldest is dropped
ORIGIN_WINDOW_S = 2.0  # how far back the fastest delivery is remembered


class BrowserDuplex:
    name = "browser"

    def __init__(
        self,
        send_audio: Callable[[bytes], Awaitable[None]],
        send_flush: Callable[[], Awaitable[None]] | None = None,
        frames_per_message: int = 2,
    ) -> None:
        self._send_audio = send_audio
        self._send_flush = send_flush
        self._frames_per_message = frames_per_message
        self._mic: asyncio.Queue[tuple[np.ndarray, float] | None] = asyncio.Queue()
        self._carry = np.zeros(0, np.float32)
        self._closed = False
        self.mic_samples = 0
        # (arrival, when sample 0 would have been captured had everything come as fast as this
        # message), kept increasing in the second so the first is the window's smallest.
        self._origins: deque[tuple[float, float]] = deque()
        self.sent_samples = 0
        self.dropped_frames = 0

    def push_mic(self, pcm: bytes) -> None:
        """Int16 little-endian mono 16 kHz from the page, any length."""
        if self._closed:
            return
        usable = len(pcm) - len(pcm) % 2
        samples = np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float32) / 32768.0
        first_sample = self.mic_samples - self._carry.size  # of the audio framed below
        self.mic_samples += samples.size
        origin = self._fastest_origin(self.now())
        audio = np.concatenate([self._carry, samples]) if self._carry.size else samples
        whole = audio.size - audio.size % FRAME_SAMPLES
        for start in range(0, whole, FRAME_SAMPLES):
            began_at = origin + (first_sample + start) / 16_000
            self._mic.put_nowait((audio[start : start + FRAME_SAMPLES], began_at))
        self._carry = audio[whole:].copy()
        while self._mic.qsize() > MAX_BUFFERED_S / FRAME_S:
            self._mic.get_nowait()  # the loop fell behind: the oldest audio goes first
            self.dropped_frames += 1

    def _fastest_origin(self, arrived_at: float) -> float:
        """The capture time of sample 0 by the fastest delivery in the window, this one included."""
        origin = arrived_at - self.mic_samples / 16_000
        while self._origins and self._origins[-1][1] >= origin:
            self._origins.pop()
        self._origins.append((arrived_at, origin))
        while self._origins[0][0] < arrived_at - ORIGIN_WINDOW_S:
            self._origins.popleft()
        return self._origins[0][1]

    def end(self) -> None:
        """The page hung up: the conversation ends after the audio already here."""
        if not self._closed:
            self._closed = True
            self._mic.put_nowait(None)

    async def frames(self, playback: PlaybackQueue) -> AsyncIterator[DuplexFrame]:
        captured_at = -np.inf
        stops = playback.stops
        outgoing: list[np.ndarray] = []
        while (item := await self._mic.get()) is not None:
            mic_frame, began_at = item
            # When a faster delivery moves the origin back, the stamps wait for the frame before.
            captured_at = max(began_at, captured_at)
            speaker_frame = playback.pull(FRAME_SAMPLES, at=captured_at)
            if playback.stops != stops:
                stops = playback.stops
                outgoing.clear()
                if self._send_flush is not None:
                    await self._send_flush()
            outgoing.append(speaker_frame)
            if len(outgoing) >= self._frames_per_message:
                await self._send(np.concatenate(outgoing))
                outgoing.clear()
            yield DuplexFrame(
                mic_frame=mic_frame,
                reference_frame=speaker_frame,
                captured_at=captured_at,
                speaker_frame=speaker_frame,
            )

    async def _send(self, audio: np.ndarray) -> None:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self.sent_samples += audio.size
        try:
            await self._send_audio(pcm)
        except Exception:
            self.end()  # the socket is gone: the conversation winds down

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def true_speech_end(self, before: float) -> float | None:
        return None

    async def aclose(self) -> None:
        self.end()
