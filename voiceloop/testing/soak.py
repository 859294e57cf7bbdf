"""The fault soak: hundreds of turns in the virtual room with every stage failing on purpose.

A seeded schedule decides, turn by turn, what the scripted user does (a plain question, a
noise burst, a cough over the reply, talking over the reply, a minute of silence, clipped
input, the device vanishing), and, call by call, how the LLM server, the Edge-TTS service and
the recogniser misbehave. The real parts do the rest: the `openai` client against a local
OpenAI-compatible server, the `edge-tts` client against a loopback Edge service (falling back
to espeak), pocketsphinx, silero, speex. The report says whether the
loop held: no crash, no turn missing from the session log, no unspoken text in the history,
no growth of memory, tasks or file descriptors.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import resource
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voiceloop.audio.script import UserScript
from voiceloop.build import build_adapter, build_voice
from voiceloop.config import Settings, load_settings
from voiceloop.engine.runtime import Observer
from voiceloop.engine.timing import TurnRecord
from voiceloop.llm.base import ChatMessage
from voiceloop.session.log import read_session
from voiceloop.testing.edge_server import EdgeFault, EdgeServer
from voiceloop.testing.faults import FaultyRecognizer
from voiceloop.testing.kiosk_hour import PASSERS_BY
from voiceloop.testing.kiosk_lines import kiosk_script, passer_by_turns
from voiceloop.testing.llm_server import Fault, LlmServer, unused_port

PHRASES = [
    "what time is it",
    "tell me a joke",
    "what is the weather like today",
    "set a timer for five minutes",
    "turn on the lights",
    "play some music",
    "how are you",
    "what can you do",
]
INTERRUPTIONS = ["never mind", "stop", "thank you"]
KIOSK_ATTENTION_S = 3.0  # kiosk mode (--kiosk): short, so passers-by find it asleep soon

AUDIO_FAULTS = ("noise_burst", "cough", "talk_over", "silence_minute", "clipped", "device_drop")
LLM_FAULTS = ("refused", "stall", "429", "500", "cut", "malformed", "long_reply")
TTS_FAULTS = ("refused", "stall", "cut", "403")  # at the loopback Edge service
ASR_FAULTS = ("error", "empty", "other_script")
LONG_REPLY = " ".join(["This is a very long reply that goes on and on, sentence after sentence."] * 12)


@dataclass
class SoakPlan:
    """Everything the seed decided, before the run."""

    script: UserScript
    audio_faults: Counter[str]
    llm_schedule: list[str | None]  # per chat request
    tts_schedule: list[str | None]  # per connection to the Edge service
    asr_schedule: dict[int, str]  # per recognition call


def plan(turns: int, seed: int, fault_rate: float = 0.35, kiosk: bool = False) -> SoakPlan:
    rng = random.Random(seed)
    script_turns: list[dict[str, Any]] = []
    audio = Counter[str]()
    for index in range(turns):
        question = {"say": rng.choice(PHRASES), "pause_ms": 700, "reply_timeout_ms": 6000}
        fault = rng.choice(AUDIO_FAULTS) if rng.random() < fault_rate / 2 else None
        if fault is None or index == 0:
            script_turns.append(question)
            continue
        audio[fault] += 1
        if fault == "noise_burst":
            script_turns += [
                {"noise_ms": rng.randint(200, 900), "pause_ms": 500, "reply_timeout_ms": 3000},
                question,
            ]
        elif fault == "cough":
            script_turns += [question, {"cough_ms": 200, "interrupt_after_ms": 600, "reply_timeout_ms": 3000}]
        elif fault == "talk_over":
            script_turns += [
                question,
                {"say": rng.choice(INTERRUPTIONS), "interrupt_after_ms": rng.randint(400, 1200)},
            ]
        elif fault == "silence_minute":
            script_turns.append({**question, "pause_ms": 60_000})
        elif fault == "clipped":
            script_turns.append({**question, "clipped": True})
        elif fault == "device_drop":
            script_turns += [
                {"drop_ms": rng.randint(1000, 5000), "pause_ms": 300, "reply_timeout_ms": 1500},
                question,
            ]
    script = UserScript.model_validate(
        {
            "voice": "en-us+m3",
            "turns": script_turns,
            "tail_ms": 1500,
            "max_session_s": 40.0 * len(script_turns) + 300,
        }
    )
    if kiosk:  # each request after the wake word, passers-by in between
        script = kiosk_script(script, KIOSK_ATTENTION_S, seed)
    calls = 4 * len(script.turns)  # more calls than any stage will make
    return SoakPlan(
        script=script,
        audio_faults=audio,
        llm_schedule=[
            rng.choice(LLM_FAULTS) if rng.random() < fault_rate / 2 else None for _ in range(calls)
        ],
        tts_schedule=[
            rng.choice(TTS_FAULTS) if rng.random() < fault_rate / 4 else None for _ in range(calls)
        ],
        asr_schedule={call: rng.choice(ASR_FAULTS) for call in range(calls) if rng.random() < fault_rate / 4},
    )


class ScheduledChat:
    """Routes each chat request by the schedule: to a port nobody listens on ("refused"), or
    to the live server with that request's fault queued. The real client both times."""

    def __init__(self, settings: Settings, server: LlmServer, schedule: list[str | None]) -> None:
        self.name = "soak"
        self.description = f"soak server at {server.base_url}"
        self.server = server
        self.schedule = schedule
        self.injected = Counter[str]()
        self._live = build_adapter(settings, "llm", "openai")
        dead = settings.model_copy(
            update={
                "llm": settings.llm.model_copy(update={"base_url": f"http://127.0.0.1:{unused_port()}/v1"})
            }
        )
        self._dead = build_adapter(dead, "llm", "openai")
        self._calls = 0
        self._long_next = False

    def reply_for(self, messages: list[dict[str, Any]]) -> str:
        if self._long_next:
            self._long_next = False
            return LONG_REPLY
        return f"Sure. You asked: {messages[-1]['content']}. Here is my answer."

    def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        kind = self.schedule[self._calls % len(self.schedule)]
        self._calls += 1
        if kind is not None:
            self.injected[kind] += 1
        if kind == "refused":
            return self._dead.stream(messages)
        fault = {
            "stall": Fault(stall_s=30.0),
            "429": Fault(status=429),
            "500": Fault(status=500),
            "cut": Fault(cut_after_tokens=4),
            "malformed": Fault(malformed_after_tokens=3),
        }.get(kind or "", Fault())
        if kind in ("429", "500"):
            self.server.fail_next(fault, fault, fault)  # outlast the retries
        else:
            self.server.fail_next(fault)
        self._long_next = kind == "long_reply"
        return self._live.stream(messages)

    async def check(self) -> str | None:
        return await self._live.check()

    async def aclose(self) -> None:
        await self._live.aclose()
        await self._dead.aclose()


@dataclass
class SoakReport:
    turns: int
    completed: int
    faults: dict[str, int]
    outcomes: dict[str, int]
    crashes: int
    lost_turns: int
    unspoken_in_history: int
    rss_growth_mb: float
    tasks_left: int
    fds_left: int
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "turns": self.turns,
            "completed": self.completed,
            "faults": self.faults,
            "outcomes": self.outcomes,
            "crashes": self.crashes,
            "lost_turns": self.lost_turns,
            "unspoken_in_history": self.unspoken_in_history,
            "rss_growth_mb": self.rss_growth_mb,
            "tasks_left": self.tasks_left,
            "fds_left": self.fds_left,
            **self.details,
        }


def lost_turns(log: list[dict[str, Any]]) -> list[int]:
    """Turns that began (speech was handed to ASR) but never got their "turn" line. A turn
    whose last news is a dropped speculation was never a turn: the user just paused."""
    last_event: dict[int, str] = {}
    for line in log:
        if line["event"] in ("speech", "speculation_dropped"):
            last_event[line["turn"]] = line["event"]
    logged = {line["turn_id"] for line in log if line["event"] == "turn"}
    return sorted(t for t, event in last_event.items() if event == "speech" and t not in logged)


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def soak_settings(out_dir: Path, speed: float, kiosk: bool = False) -> Settings:
    settings = load_settings("offline")
    settings.audio.room.speed = speed
    settings.log.dir = out_dir
    settings.log.record_wav = False  # a 500-turn WAV is gigabytes of nothing new
    settings.llm.model = "soak"
    settings.llm.first_token_timeout_s = 3.0
    settings.llm.timeout_s = 20.0
    settings.llm.fallback_to_echo = False
    settings.llm.max_tokens = 400
    settings.tts.name = "edge"  # against the loopback service; espeak when it fails
    settings.tts.voice = "en-US-EmmaMultilingualNeural"
    settings.tts.edge.connect_timeout_s = 1.0
    settings.tts.edge.first_audio_timeout_s = 1.0
    settings.tts.timeout_s = 4.0
    settings.tts.fallback_retry_s = 2.0  # try the service again soon, so its faults keep coming
    settings.loop.watchdog_s = 30.0
    settings.asr.pocketsphinx.phrases = sorted(
        {*settings.asr.pocketsphinx.phrases, *PHRASES, *INTERRUPTIONS, *(PASSERS_BY if kiosk else ())}
    )
    if kiosk:
        settings.loop.wake = "okay_nabu"
        settings.loop.attention_s = KIOSK_ATTENTION_S
    return settings


async def run_soak(
    turns: int,
    seed: int,
    out_dir: Path,
    speed: float = 4.0,
    progress: Callable[[str], None] = lambda _: None,
    kiosk: bool = False,
) -> SoakReport:
    from voiceloop.demo import run_demo

    schedule = plan(turns, seed, kiosk=kiosk)
    settings = soak_settings(out_dir, speed, kiosk)
    build_adapter(settings, "vad", "silero")  # onnxruntime opens its files once per process: not a leak
    fds_before = open_fds()
    tasks_before = len(asyncio.all_tasks())
    finished = 0
    rss_at_50: float | None = None

    def on_turn(record: TurnRecord) -> None:
        nonlocal finished, rss_at_50
        finished += 1
        if finished == min(50, max(turns // 4, 1)):
            gc.collect()
            rss_at_50 = rss_mb()
        if finished % 25 == 0:
            progress(f"{finished} turns, RSS {rss_mb():.0f} MB")

    crashes = 0
    edge_faults = {
        "refused": EdgeFault(status=503),
        "stall": EdgeFault(stall_s=30.0),
        "cut": EdgeFault(cut_after_chunks=2),
        "403": EdgeFault(status=403),
    }
    with (
        LlmServer(first_token_delay_s=0.03, token_interval_s=0.01) as server,
        EdgeServer(chunk_interval_s=0.002) as edge,
        edge.patched(),
    ):
        edge.fail_next(*(edge_faults[kind] if kind else EdgeFault() for kind in schedule.tts_schedule))
        settings.llm.base_url = server.base_url
        chat = ScheduledChat(settings, server, schedule.llm_schedule)
        server.reply = chat.reply_for
        asr = FaultyRecognizer(build_adapter(settings, "asr"), schedule.asr_schedule)
        voice = build_voice(settings)
        try:
            result = await run_demo(
                settings,
                schedule.script,
                say=progress,
                observer=Observer(on_turn=on_turn),
                llm=chat,
                asr=asr,
                tts=voice,
            )
        except Exception as exc:  # the one thing the soak exists to catch
            crashes += 1
            progress(f"CRASH: {type(exc).__name__}: {exc}")
            result = None
        edge_connections = edge.connections
        fallback_pieces = getattr(voice, "fallback_pieces", 0)
    await asyncio.sleep(0.1)
    gc.collect()
    rss_end = rss_mb()
    tasks_left = len(asyncio.all_tasks()) - tasks_before
    fds_left = open_fds() - fds_before

    session_dir = (
        result.session_dir if result else max(Path(out_dir).iterdir(), key=lambda p: p.stat().st_mtime)
    )
    log = read_session(session_dir / "session.jsonl")
    crashes += sum(1 for line in log if line["event"] == "internal_error")
    lost = lost_turns(log)
    outcomes = Counter(line["outcome"] for line in log if line["event"] == "turn")
    heard = {line["heard_text"] for line in log if line["event"] == "turn" and line["heard_text"]}
    unspoken = [assistant for _, assistant in (result.history if result else []) if assistant not in heard]
    faults = {f"audio.{k}": v for k, v in schedule.audio_faults.items()}
    faults.update({f"llm.{k}": v for k, v in chat.injected.items()})
    faults.update(
        {
            f"tts.{kind}": n
            for kind, n in Counter(k for k in schedule.tts_schedule[:edge_connections] if k).items()
        }
    )
    faults.update(
        {
            f"asr.{kind}": n
            for kind, n in Counter(
                schedule.asr_schedule[c] for c in schedule.asr_schedule if c < asr.calls
            ).items()
        }
    )
    return SoakReport(
        turns=sum(1 for t in schedule.script.turns if t.is_speech and not t.passer_by),
        completed=sum(n for outcome, n in outcomes.items() if outcome != "timeout"),
        faults=dict(sorted(faults.items())),
        outcomes=dict(outcomes),
        crashes=crashes,
        lost_turns=len(lost),
        unspoken_in_history=len(unspoken),
        rss_growth_mb=round(rss_end - (rss_at_50 if rss_at_50 is not None else rss_end), 1),
        tasks_left=tasks_left,
        fds_left=fds_left,
        details={
            "tts_fallback_pieces": fallback_pieces,
            "seed": seed,
            "speed": speed,
            "rss_end_mb": round(rss_end, 1),
            "session": str(session_dir),
            "lost": lost,
            "unspoken": unspoken[:5],
            **({"passer_by_turns": passer_by_turns(log)} if kiosk else {}),
        },
    )
