"""Kiosk mode through the server: the feed says asleep/awake, and the page's push-to-talk
button (POST /v1/session/push-to-talk) opens a turn without the wake word."""

from __future__ import annotations

import httpx
import pytest
import websockets

from tests.conftest import script
from tests.test_serve_live import collect_until, of_type
from voiceloop.config import Settings
from voiceloop.testing.serve import running_server

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


async def test_the_button_wakes_a_sleeping_kiosk_and_the_feed_says_so(room_settings: Settings) -> None:
    room_settings.loop.wake = "okay_nabu"
    user = script({"say": "hello there", "pause_ms": 2500})
    with running_server(room_settings, script=user) as url:
        idle = httpx.post(f"{url}/v1/session/push-to-talk", json={})
        assert idle.status_code == 409 and "start one first" in idle.json()["error"]["message"]
        async with websockets.connect(url.replace("http", "ws") + "/v1/session/events") as feed:
            await feed.recv()
            httpx.post(f"{url}/v1/session", json={"source": "demo"})
            # The greeting plays while the kiosk sleeps; once it is over, the button.
            before = await collect_until(feed, lambda e: e["type"] == "state" and e["state"] == "speaking")
            before += await collect_until(feed, lambda e: e["type"] == "state" and e["state"] == "listening")
            pressed = httpx.post(f"{url}/v1/session/push-to-talk", json={})
            assert pressed.status_code == 200 and pressed.json()["running"] is True
            after = await collect_until(feed, lambda e: e["type"] == "session" and e["status"] == "ended")

    assert [(e["state"], e["why"]) for e in of_type(before, "attention")] == [("asleep", "start")]
    attention = [(e["state"], e["why"]) for e in of_type(after, "attention")]
    assert attention[0] == ("awake", "push_to_talk")
    turns = of_type(after, "turn")
    assert [(t["user"], t["outcome"]) for t in turns] == [("hello there", "answered")]


def test_the_push_to_talk_route_wants_json(room_settings: Settings) -> None:
    with running_server(room_settings) as url:
        refused = httpx.post(
            f"{url}/v1/session/push-to-talk", content="x", headers={"content-type": "text/plain"}
        )
    assert refused.status_code == 415
