"""The live session: one conversation at a time, watched by any number of pages.

A kiosk has one conversation, so the server runs at most one: the virtual room's scripted
demo, the machine's own microphone and speaker, or a browser talking over a websocket. Every
page subscribed to the events feed sees the same state changes, words and per-turn latencies;
a page that connects mid-session gets a snapshot of what it missed. Recognition goes through
the server's shared model queue, ahead of file requests.

The feed (`WebSocket /v1/session/events`) is typed in voiceloop/server/events.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, get_args

from voiceloop.audio.base import AudioDeviceError, DuplexAudio
from voiceloop.audio.script import UserScript
from voiceloop.config import Settings
from voiceloop.engine.machine import State
from voiceloop.engine.runtime import Conversation, Observer
from voiceloop.engine.timing import TurnRecord
from voiceloop.errors import one_line
from voiceloop.llm.base import ChatModel
from voiceloop.server.asr_queue import QueuedRecognizer, RecognizerQueue
from voiceloop.server.errors import ApiError
from voiceloop.server.events import (
    GREETING_TURN,
    AttentionEvent,
    DetectorEvent,
    ErrorEvent,
    FeedEvent,
    NoteEvent,
    PartialEvent,
    SessionEvent,
    SessionSource,
    SessionStatus,
    Snapshot,
    StateEvent,
    TurnEvent,
    UserEvent,
)

log = logging.getLogger("voiceloop.server")

SOURCES: tuple[str, ...] = get_args(SessionSource)
RECENT_EVENTS = 600
SUBSCRIBER_BACKLOG = 1000


class LiveHub:
    def __init__(
        self,
        settings: Settings,
        recognizers: RecognizerQueue,
        *,
        script: UserScript | None = None,
        llm_factory: Callable[[Settings], Awaitable[ChatModel]] | None = None,
    ) -> None:
        self.settings = settings
        self.recognizers = recognizers
        self.script = script
        self.llm_factory = llm_factory
        self.recent: deque[FeedEvent] = deque(maxlen=RECENT_EVENTS)
        self._subscribers: set[asyncio.Queue[FeedEvent | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._device: DuplexAudio | None = None
        self.source: str | None = None
        self.state: str | None = None
        self.turns = 0
        self.session_dir: Path | None = None
        self.started_at: float | None = None
        self._talk: Conversation | None = None  # the running conversation (push-to-talk reaches it)

    # -- the feed -----------------------------------------------------------------------------

    def session_status(self) -> SessionStatus:
        return SessionStatus(
            running=self.running,
            source=self.source,
            state=self.state,
            turns=self.turns,
            session_dir=None if self.session_dir is None else str(self.session_dir),
            started_at=self.started_at,
        )

    def status(self) -> dict[str, Any]:
        """`GET /v1/session` (and /info's "session") as JSON."""
        return self.session_status().wire()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def snapshot(self) -> Snapshot:
        return Snapshot(session=self.session_status(), events=list(self.recent))

    def subscribe(self) -> asyncio.Queue[FeedEvent | None]:
        queue: asyncio.Queue[FeedEvent | None] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[FeedEvent | None]) -> None:
        self._subscribers.discard(queue)

    def publish(self, event: FeedEvent) -> None:
        self.recent.append(event)
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # A page that stopped reading: cut it loose rather than hold events for it.
                self._subscribers.discard(queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)

    def observer(self) -> Observer:
        def on_state(state: str) -> None:
            self.state = state
            self.publish(StateEvent(state=State(state)))

        def on_turn(record: TurnRecord) -> None:
            if record.turn_id != GREETING_TURN:
                self.turns += 1
            self.publish(TurnEvent.of(record))

        return Observer(
            on_turn=on_turn,
            on_error=lambda message: self.publish(ErrorEvent(message=message)),
            on_state=on_state,
            on_transcript=lambda turn, text: self.publish(UserEvent(turn=turn, text=text)),
            on_attention=lambda attention, why: self.publish(
                AttentionEvent(state="awake" if attention == "awake" else "asleep", why=why)
            ),
            on_partial=lambda partial: self.publish(
                PartialEvent(utterance=partial.utterance, text=partial.text)
            ),
            on_verdict=lambda verdict: self.publish(
                DetectorEvent(
                    turn=verdict.turn_id,
                    probability=round(verdict.probability, 3),
                    complete=verdict.complete,
                    elapsed_ms=verdict.elapsed_ms,
                )
            ),
        )

    # -- sessions -----------------------------------------------------------------------------

    async def start(self, source: str, device: DuplexAudio | None = None) -> dict[str, Any]:
        if source not in SOURCES:
            raise ApiError(400, f"source must be one of {', '.join(SOURCES)} (got '{source}')", "bad_source")
        if self.running:
            raise ApiError(
                409,
                f"a {self.source} session is already running; stop it first (DELETE /v1/session)",
                "session_running",
            )
        settings = self.settings
        if device is None:
            device = self._device_for(source, settings)
        self.recent.clear()
        self.source, self.state, self.turns, self.session_dir = source, None, 0, None
        self.started_at = time.time()
        self._device = device
        self._task = asyncio.create_task(self._run(source, settings, device), name=f"live-{source}")
        return self.status()

    def _device_for(self, source: str, settings: Settings) -> DuplexAudio:
        if source == "demo":
            from voiceloop.audio.virtual import VirtualRoom, room_as_configured

            script = self.script
            if script is None:
                from voiceloop.audio.script import load_script
                from voiceloop.config.settings import CONFIGS_DIR

                script = load_script(CONFIGS_DIR / "demo-script.toml")
            return VirtualRoom(script, room_as_configured(settings))
        if source == "browser":
            raise ApiError(
                400, "browser sessions start from the page (WebSocket /v1/session/talk)", "bad_source"
            )
        from voiceloop.build import build_adapter

        backend = settings.audio.backend if settings.audio.backend != "virtual" else "sounddevice"
        try:
            return build_adapter(settings, "audio", backend)
        except AudioDeviceError as exc:
            raise ApiError(503, f"no audio device for a session: {exc}", "no_audio_device") from None

    async def _choose_llm(self, settings: Settings) -> ChatModel:
        if self.llm_factory is not None:
            return await self.llm_factory(settings)
        from voiceloop.build.llm import choose_llm

        return await choose_llm(settings, lambda line: self.publish(NoteEvent(message=line)))

    async def _run(self, source: str, settings: Settings, device: DuplexAudio) -> None:
        from voiceloop.build import build_adapter
        from voiceloop.session.runner import conversation

        self.publish(SessionEvent(status="started", source=source, detail=device.name))
        detail = "finished"
        try:
            llm = await self._choose_llm(settings)
            recognizer = QueuedRecognizer(self.recognizers)
            # The browser cancels its own echo (see audio/browser.py): no second canceller.
            aec = build_adapter(settings, "aec", "none") if source == "browser" else None
            async with conversation(
                settings, device, llm=llm, aec=aec, asr=recognizer, observer=self.observer()
            ) as talk:
                self.session_dir = talk.session.dir
                self._talk = talk
                await talk.run()
        except asyncio.CancelledError:
            detail = "stopped"
        except Exception as exc:  # a device or adapter that fails ends this session, not the server
            detail = f"failed: {one_line(exc)}"
            log.warning("live session (%s) %s", source, detail)
            self.publish(ErrorEvent(message=f"session {detail}"))
        finally:
            with contextlib.suppress(Exception):
                await device.aclose()  # also when no conversation began (the LLM check failed)
            self.state = None
            self._device = None
            self._talk = None
            self.publish(SessionEvent(status="ended", source=source, detail=detail))

    def push_to_talk(self) -> dict[str, Any]:
        """The page's button: opens a turn as the wake word would."""
        if self._talk is None:
            raise ApiError(
                409, "no live session to talk to: start one first (POST /v1/session)", "no_session"
            )
        self._talk.push_to_talk("button")
        return self.status()

    async def stop(self) -> dict[str, Any]:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return self.status()

    async def finish(self, device: DuplexAudio, grace_s: float = 5.0) -> None:
        """The browser hung up: let the session end on its own (it drains), else stop it."""
        if self._device is not device or self._task is None:
            return
        task = self._task
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            async with asyncio.timeout(grace_s):
                await asyncio.shield(task)
        if not task.done():
            await self.stop()

    async def wait(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def aclose(self) -> None:
        await self.stop()
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self._subscribers.clear()
