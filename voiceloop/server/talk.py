"""`WebSocket /v1/session/talk`: a conversation through the browser's microphone and speaker.

The page sends `{"type": "start", "sample_rate": 16000}`, then Int16 mono PCM; the server
answers with the assistant's voice in the same format, `{"type": "flush"}` when the user
interrupts (drop what is queued), and `{"type": "error", "message"}` before closing on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import WebSocket, WebSocketDisconnect

from voiceloop.audio.browser import BrowserDuplex
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.server.errors import ApiError
from voiceloop.server.live import LiveHub

RATE = SAMPLE_RATE  # what the page must send: the loop's own format
START_TIMEOUT_S = 10.0


async def talk(websocket: WebSocket, hub: LiveHub) -> None:
    await websocket.accept()
    sending = asyncio.Lock()

    async def send_audio(pcm: bytes) -> None:
        async with sending:
            await websocket.send_bytes(pcm)

    async def send_flush() -> None:
        async with sending:
            await websocket.send_json({"type": "flush"})

    async def refuse(message: str, code: int = 4400) -> None:
        with contextlib.suppress(Exception):
            await websocket.send_json({"type": "error", "message": message})
            await websocket.close(code=code, reason=message[:120])

    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            first = await websocket.receive_text()
        start = json.loads(first)
        if not isinstance(start, dict) or start.get("type") != "start":
            raise ValueError
    except (TimeoutError, ValueError, KeyError, WebSocketDisconnect, RuntimeError):
        await refuse('send {"type": "start", "sample_rate": 16000} first, then 16-bit mono PCM')
        return
    if start.get("sample_rate", RATE) != RATE:
        await refuse(f"send audio at {RATE} Hz (got sample_rate {start.get('sample_rate')})")
        return
    device = BrowserDuplex(send_audio, send_flush)
    try:
        await hub.start("browser", device=device)
    except ApiError as exc:
        await refuse(exc.message, 4409 if exc.status == 409 else 4400)
        return
    await websocket.send_json({"type": "ready", "sample_rate": RATE})
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes"):
                device.push_mic(message["bytes"])
            elif message.get("text") and '"stop"' in message["text"]:
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        device.end()
        await hub.finish(device)
        with contextlib.suppress(Exception):
            await websocket.close()
