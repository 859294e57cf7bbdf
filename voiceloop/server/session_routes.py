"""The live session's routes: its status, start and stop, the events feed, and talking through
the browser."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

from voiceloop.server.audio_routes import require_json
from voiceloop.server.state import state

router = APIRouter()


class SessionRequest(BaseModel):
    source: Literal["demo", "devices"] = "demo"


# -- the live session ------------------------------------------------------------------------


@router.get("/v1/session", tags=["session"], summary="The live session's status")
async def session_status(request: Request) -> dict[str, Any]:
    return state(request).hub.status()


@router.post(
    "/v1/session",
    tags=["session"],
    summary="Start a live session (the demo room or this machine's devices)",
    dependencies=[Depends(require_json)],
)
async def session_start(request: Request, body: SessionRequest | None = None) -> dict[str, Any]:
    return await state(request).hub.start((body or SessionRequest()).source)


@router.post(
    "/v1/session/push-to-talk",
    tags=["session"],
    summary="Open a turn without the wake word (kiosk mode's button)",
    dependencies=[Depends(require_json)],  # no simple cross-site form may press it
)
async def session_push_to_talk(request: Request) -> dict[str, Any]:
    return state(request).hub.push_to_talk()


@router.delete("/v1/session", tags=["session"], summary="Stop the live session")
async def session_stop(request: Request) -> dict[str, Any]:
    return await state(request).hub.stop()


@router.websocket("/v1/session/events")
async def session_events(websocket: WebSocket) -> None:
    hub = state(websocket).hub
    await websocket.accept()
    queue = hub.subscribe()

    async def until_the_page_leaves() -> None:
        # The feed is one-way, but reading is how a page that left is noticed at once
        # (not at the next event), so it neither lingers as a subscriber nor holds up shutdown.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

    leaving = asyncio.create_task(until_the_page_leaves())
    try:
        await websocket.send_json(hub.snapshot().wire())
        while True:
            getting = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getting, leaving}, return_when=asyncio.FIRST_COMPLETED)
            if leaving in done:
                getting.cancel()
                break
            if (event := getting.result()) is None:
                break
            await websocket.send_json(event.wire())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        leaving.cancel()
        hub.unsubscribe(queue)


@router.websocket("/v1/session/talk")
async def session_talk(websocket: WebSocket) -> None:
    from voiceloop.server.talk import talk

    await talk(websocket, state(websocket).hub)
