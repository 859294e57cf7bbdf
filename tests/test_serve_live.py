"""The live session behind the web page: the events feed while a virtual-room conversation runs,
and a conversation through the browser's websocket audio, on the real server."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np
import pytest
import websockets

from tests.conftest import script
from voiceloop.config import Settings
from voiceloop.testing.clips import spoken_clip
from voiceloop.testing.serve import running_server

pytestmark = pytest.mark.timeout(180)


async def collect_until(socket_, done, timeout_s: float = 60.0) -> list[dict]:
    events: list[dict] = []
    async with asyncio.timeout(timeout_s):
        while True:
            event = json.loads(await socket_.recv())
            events.append(event)
            if done(event):
                return events


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


async def test_the_events_feed_follows_a_virtual_room_session(room_settings: Settings) -> None:
    user = script({"say": "what time is it"}, {"say": "tell me a joke"})
    with running_server(room_settings, script=user) as url:
        async with websockets.connect(url.replace("http", "ws") + "/v1/session/events") as feed:
            snapshot = json.loads(await feed.recv())
            assert snapshot["type"] == "snapshot" and snapshot["session"]["running"] is False

            started = httpx.post(f"{url}/v1/session", json={"source": "demo"})
            assert started.status_code == 200 and started.json()["running"] is True
            again = httpx.post(f"{url}/v1/session", json={"source": "demo"})
            assert again.status_code == 409 and "already running" in again.json()["error"]["message"]

            events = await collect_until(feed, lambda e: e["type"] == "session" and e["status"] == "ended")

    assert of_type(events, "session")[0] == {
        **of_type(events, "session")[0],
        "status": "started",
        "source": "demo",
    }
    states = [e["state"] for e in of_type(events, "state")]
    assert {"listening", "user_speaking", "speaking"} <= set(states)
    assert [e["text"] for e in of_type(events, "user")] == ["what time is it", "tell me a joke"]
    turns = of_type(events, "turn")
    assert [t["user"] for t in turns] == ["what time is it", "tell me a joke"]
    assert all(t["outcome"] == "answered" and "you asked me" in t["reply"] for t in turns)
    for turn in turns:
        timings = turn["timings_ms"]
        assert 0 < timings["voice_to_voice"] < 3000
        assert timings["endpoint"] is not None and timings["llm_ttft"] is not None
    # The transcript of a turn reaches the page before its reply finishes.
    first_user = events.index(of_type(events, "user")[0])
    assert first_user < events.index(turns[0])
    assert of_type(events, "session")[-1]["detail"] == "finished"


async def test_a_page_that_connects_late_gets_what_it_missed(room_settings: Settings) -> None:
    user = script({"say": "hello there"}, {"say": "thank you", "pause_ms": 4000})
    with running_server(room_settings, script=user) as url:
        httpx.post(f"{url}/v1/session", json={"source": "demo"})
        async with websockets.connect(url.replace("http", "ws") + "/v1/session/events") as feed:
            snapshot = json.loads(await feed.recv())
            while snapshot["session"]["turns"] == 0:  # come back once a turn has happened
                await asyncio.sleep(0.3)
                async with websockets.connect(url.replace("http", "ws") + "/v1/session/events") as late:
                    snapshot = json.loads(await late.recv())
        stopped = httpx.delete(f"{url}/v1/session").json()

    assert snapshot["session"]["running"] is True and snapshot["session"]["source"] == "demo"
    kinds = [e["type"] for e in snapshot["events"]]
    assert kinds[0] == "session" and "turn" in kinds and "user" in kinds
    assert stopped["running"] is False


async def test_stopping_a_session_ends_it_and_a_new_one_can_start(room_settings: Settings) -> None:
    user = script({"say": "hello there"}, {"say": "goodbye", "pause_ms": 20_000})
    with running_server(room_settings, script=user) as url:
        async with websockets.connect(url.replace("http", "ws") + "/v1/session/events") as feed:
            await feed.recv()
            httpx.post(f"{url}/v1/session", json={"source": "demo"})
            await collect_until(feed, lambda e: e["type"] == "turn")
            assert httpx.delete(f"{url}/v1/session").json()["running"] is False
            events = await collect_until(feed, lambda e: e["type"] == "session" and e["status"] == "ended")
            assert events[-1]["detail"] == "stopped"
            assert httpx.post(f"{url}/v1/session", json={"source": "demo"}).status_code == 200
            httpx.delete(f"{url}/v1/session")


# -- talking through the browser's websocket -----------------------------------------------------


def pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


class BrowserSide:
    """What the page does: streams its mic in real time, plays (here: counts) what comes back."""

    CHUNK = 320  # 20 ms

    def __init__(self, socket_) -> None:
        self.socket = socket_
        self.received = 0
        self.voiced_at: list[float] = []  # when audible chunks arrived
        self.messages: list[dict] = []

    async def receive(self) -> None:
        async for message in self.socket:
            if isinstance(message, bytes):
                samples = np.frombuffer(message, dtype="<i2")
                self.received += samples.size
                if np.abs(samples).max(initial=0) > 1000:
                    self.voiced_at.append(time.monotonic())
            else:
                self.messages.append(json.loads(message))

    async def stream(self, audio: np.ndarray) -> None:
        start = time.monotonic()
        for k, at in enumerate(range(0, len(audio), self.CHUNK)):
            await self.socket.send(pcm(audio[at : at + self.CHUNK]))
            lag = start + (k + 1) * self.CHUNK / 16_000 - time.monotonic()
            if lag > 0:
                await asyncio.sleep(lag)

    def room_tone(self, seconds: float) -> np.ndarray:
        return (np.random.default_rng(3).standard_normal(int(seconds * 16_000)) * 10 ** (-50 / 20)).astype(
            np.float32
        )

    def speaking_now(self) -> bool:
        return bool(self.voiced_at) and time.monotonic() - self.voiced_at[-1] < 0.3


async def test_talking_through_the_browser_socket_and_interrupting(room_settings: Settings) -> None:
    with running_server(room_settings) as url:
        talk_url = url.replace("http", "ws") + "/v1/session/talk"
        async with (
            websockets.connect(talk_url) as socket_,
            websockets.connect(url.replace("http", "ws") + "/v1/session/events") as feed,
        ):
            await feed.recv()
            await socket_.send(json.dumps({"type": "start", "sample_rate": 16_000}))
            assert json.loads(await socket_.recv())["type"] == "ready"
            browser = BrowserSide(socket_)
            receiving = asyncio.create_task(browser.receive())

            await browser.stream(browser.room_tone(3.0))  # the greeting plays
            await browser.stream(spoken_clip("what time is it", lead_s=0.2))
            for _ in range(400):  # wait for the reply to be playing, then talk over it
                if browser.speaking_now() and time.monotonic() - browser.voiced_at[0] > 0:
                    break
                await browser.stream(browser.room_tone(0.1))
            await browser.stream(browser.room_tone(0.8))
            await browser.stream(spoken_clip("tell me a joke", lead_s=0.0))
            await browser.stream(browser.room_tone(2.5))
            await socket_.close()
            receiving.cancel()
            events = await collect_until(
                feed, lambda e: e["type"] == "session" and e["status"] == "ended", 30
            )

    assert browser.received > 16_000 * 5  # the voice came back, in real time
    assert {"type": "flush"} in browser.messages  # the interruption dropped what the page had queued
    assert [e["text"] for e in of_type(events, "user")][:2] == ["what time is it", "tell me a joke"]
    first = of_type(events, "turn")[0]
    assert first["user"] == "what time is it" and first["outcome"] == "interrupted" and first["interrupted"]
    # Frame stamps and the loop's clock agree: the stop window and voice-to-voice come out right.
    assert 100 < first["timings_ms"]["endpoint"] < 1000
    assert first["timings_ms"]["endpoint"] < first["timings_ms"]["voice_to_voice"] < 3000
    assert of_type(events, "session")[0]["source"] == "browser"


async def test_a_second_talker_is_turned_away_while_a_session_runs(room_settings: Settings) -> None:
    user = script({"say": "hello there", "pause_ms": 10_000})
    with running_server(room_settings, script=user) as url:
        httpx.post(f"{url}/v1/session", json={"source": "demo"})
        async with websockets.connect(url.replace("http", "ws") + "/v1/session/talk") as socket_:
            await socket_.send(json.dumps({"type": "start", "sample_rate": 16_000}))
            refusal = json.loads(await socket_.recv())
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await socket_.recv()
        httpx.delete(f"{url}/v1/session")
    assert refusal["type"] == "error" and "already running" in refusal["message"]
    assert socket_.close_code == 4409


async def test_a_talker_that_sends_the_wrong_rate_is_told_so(room_settings: Settings) -> None:
    with running_server(room_settings) as url:
        async with websockets.connect(url.replace("http", "ws") + "/v1/session/talk") as socket_:
            await socket_.send(json.dumps({"type": "start", "sample_rate": 48_000}))
            refusal = json.loads(await socket_.recv())
    assert refusal["type"] == "error" and "16000" in refusal["message"]


def test_a_devices_session_with_a_missing_microphone_is_a_clear_503(room_settings: Settings) -> None:
    room_settings.audio.backend = "sounddevice"
    room_settings.audio.input_device = "no-such-microphone-anywhere"
    with running_server(room_settings) as url:
        response = httpx.post(f"{url}/v1/session", json={"source": "devices"}, timeout=30)
        status = httpx.get(f"{url}/v1/session").json()

    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert message.startswith("no audio device for a session:") and "Traceback" not in message
    assert status["running"] is False
