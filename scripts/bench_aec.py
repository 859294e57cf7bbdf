#!/usr/bin/env python
"""Echo cancellers side by side in the virtual room's echo scenarios.

Each scenario (voiceloop.audio.rooms.all_scenarios(): the original rooms and the hard ones:
clock drift, a changing path, a clipping speaker at +10 dB, long, Mandarin and music-like
replies) plays the same kind of audio: half a second of room noise, then the assistant speaking
alone (its reply: espeak "en-us", "cmn" or music, voiceloop.testing.replies) for --seconds (or
the scenario's own reply_s), then the user ("en-us+m3", other sentences) talking over the
assistant's continued reply. Echo, noise and the reference are made by the room's own parts, as
VirtualRoom makes them: its echo path (drifting, changing or overdriven where the scenario says)
over a seeded room impulse response, and the reference delayed by the reported delay minus
REFERENCE_LEAD_MS (so the uncalibrated room hands it out with no delay at all). Each take is
played frame by frame at the gain the canceller asks the speaker for (aec/base.py's
speaker_gain: `[aec.speex] relearn_duck_db`), the echo and the reference following it; a
canceller that asks for none hears the same mic, sample for sample.

Per scenario and canceller:
  erle_db         echo-only ERLE from 2 s (or the canceller's longer warmup_s: speex+drift
                  3.5 s) after the assistant starts to the user's first word
  t10_s           from the assistant's first sample until a 0.5 s sliding ERLE first reaches
                  10 dB, at the window's end (so 0.5 is the floor: there from the start);
                  windows where the echo is under 10 dB above the noise floor are skipped, as
                  noise suppression alone could score there; null if never
  dt_sisdr_db     SI-SDR of the output in double talk against the same canceller's output for
                  the user alone (a fresh one, silent reference): what the echo and the
                  canceller's double-talk handling cost the user's voice
  dt_user_voiced  share of the user's voiced 32 ms chunks (silero on the user alone) that
                  silero still calls speech in the output during double talk (flattered where
                  residual echo is called speech too: read it next to false_speech_s)
  false_speech_s  seconds of echo-only output (from the same point) silero calls speech, per
                  10 s of echo
  us_per_frame    mean CPU time per `process` call (the thread's time: what other processes
                  on a loaded machine take is not counted); with --repeat N the median of N
                  runs over the same take, each with a fresh canceller (us_per_frame_runs)
  drift_ppm       (speex+drift) the playback/capture drift the compensator measured

Cancellers: "speex" (speex's own defaults), "speex+drift" (with drift compensation),
"profile" (as configs/default.toml sets `aec.name` and its options), "profile+residual" (the
same with `[aec.speex] residual_suppression` on, as the profile has it), "profile-residual"
(with it off: the default before it), "profile-replay" (a rebuilt filter learning from live
frames alone: `[aec.speex] relearn_replay_every = 0`, the default before it), "profile-duck"
(the speaker as loud while a rebuilt filter re-learns: `[aec.speex] relearn_duck_db = 0`, the
default before it), "webrtc", "none".

    .venv/bin/python scripts/bench_aec.py [--json] [--seconds 12] [--rooms a,b] [--cancellers speex,webrtc]
        [--repeat 5]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from voiceloop.aec.base import EchoCanceller, speaker_gain
from voiceloop.aec.metrics import erle_db, kept_level_db, si_sdr_db, sliding_erle_db
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.rooms import Scenario, all_scenarios
from voiceloop.audio.virtual import (
    REFERENCE_LEAD_MS,
    at_voice_level,
    echo_path,
    room_impulse_response,
    trim_silence,
)
from voiceloop.build import build_adapter
from voiceloop.config import Settings, load_settings
from voiceloop.config.settings import RoomSettings
from voiceloop.testing.replies import reply
from voiceloop.tts.espeak import render
from voiceloop.vad.silero import CHUNK_SAMPLES, SileroVad

USER_VOICE = "en-us+m3"
USER_LINES = (
    "Stop, please set a timer for ten minutes instead.",
    "And remind me to call my sister tonight.",
)
LEAD_S = 0.5  # room noise before the assistant starts: the suppressors learn the floor first
SETTLED_S = 2.0  # ERLE and false speech are counted from here (after the assistant starts)
SLIDING_S = 0.5
T10_DB = 10.0
ECHO_ABOVE_NOISE_DB = 10.0
VAD_THRESHOLD = 0.5
CANCELLERS = (
    "speex",
    "speex+drift",
    "profile",
    "profile+residual",
    "profile-residual",
    "profile-replay",
    "profile-duck",
    "webrtc",
    "none",
)
PROFILE = "default"


def build_canceller(name: str, settings: Settings) -> EchoCanceller:
    """A canceller by name as the loop builds it: "speex" with speex's own defaults,
    "speex+drift" the same with `[aec.speex] drift_compensation` on, "profile" what
    configs/default.toml chooses (`aec.name` and its options table), "profile+residual" that
    with the per-band residual suppressor on (as the profile has it), "profile-residual" off,
    "profile-replay" with a rebuilt filter fed no recent frames again, "profile-duck" with the
    speaker as loud while it re-learns."""
    if name in ("profile", "profile+residual", "profile-residual", "profile-replay", "profile-duck"):
        profile = load_settings(PROFILE)
        if name in ("profile+residual", "profile-residual"):
            profile.aec.speex.residual_suppression = name == "profile+residual"
        elif name == "profile-replay":
            profile.aec.speex.relearn_replay_every = 0
        elif name == "profile-duck":
            profile.aec.speex.relearn_duck_db = 0.0
        return build_adapter(profile, "aec", profile.aec.name)  # type: ignore[no-any-return]
    if name == "speex+drift":
        speex_options = settings.aec.speex.model_copy(update={"drift_compensation": True})
        settings = settings.model_copy(
            update={"aec": settings.aec.model_copy(update={"speex": speex_options})}
        )
        name = "speex"
    canceller: EchoCanceller = build_adapter(settings, "aec", name)
    return canceller


@dataclass(frozen=True)
class Take:
    """One scenario's audio, whole frames; times in samples. The mic and the reference are the
    take with the speaker as given (`speaker`); `play` plays it for a canceller, which may ask
    for the speaker quieter meanwhile (aec/base.py's speaker_gain), as the loop plays it."""

    mic: np.ndarray
    reference: np.ndarray
    user: np.ndarray  # the user alone, as it reaches the mic
    far_start: int
    user_start: int
    user_stop: int
    speaker: np.ndarray  # what the speaker is given, before any gain the canceller asks for
    noise: np.ndarray
    new_path: Callable[[], Any]  # the room's echo path, fresh (it keeps the audio it has heard)
    reference_delay: int  # samples: the reference is handed out this much after it played

    def play(self, canceller: EchoCanceller) -> tuple[np.ndarray, np.ndarray, float]:
        """(the mic as heard, the canceller's output, its mean µs per `process` call): frame by
        frame, the speaker at the gain the canceller asks for (glided over the frame as
        PlaybackQueue glides a volume change), the echo and the reference following what it
        played. Where it asks for none, the mic is `self.mic` sample for sample."""
        path, frames = self.new_path(), self.mic.size // FRAME_SAMPLES
        sounded = np.zeros(self.reference_delay + self.mic.size, np.float32)
        mic, out = np.empty_like(self.mic), np.empty_like(self.mic)
        spent, applied = 0, 1.0
        for k in range(frames):
            span = slice(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES)
            gain = speaker_gain(canceller)
            frame = self.speaker[span]
            if gain != 1.0 or applied != 1.0:
                frame = frame * np.linspace(applied, gain, FRAME_SAMPLES, dtype=np.float32)
            applied = gain
            sounded[self.reference_delay + span.start : self.reference_delay + span.stop] = frame
            mic[span] = np.clip(self.user[span] + path.process(frame) + self.noise[span], -1.0, 1.0)
            started = time.thread_time_ns()
            out[span] = canceller.process(mic[span], sounded[span])
            spent += time.thread_time_ns() - started
        return mic, out, spent / frames / 1000


@functools.cache
def user_speech() -> np.ndarray:
    gap = np.zeros(SAMPLE_RATE // 4, np.float32)
    lines = [trim_silence(render(line, USER_VOICE)) for line in USER_LINES]
    return at_voice_level(np.concatenate([lines[0], gap, *lines[1:]]))


def make_take(scenario: Scenario | RoomSettings, seconds: float) -> Take:
    """The scenario's mic and reference, built frame by frame as VirtualRoom builds them."""
    if isinstance(scenario, RoomSettings):
        scenario = Scenario(scenario)
    room = scenario.room
    seconds = scenario.reply_s or seconds
    assistant = reply(scenario.reply)
    far_start = int(LEAD_S * SAMPLE_RATE)
    user_start = far_start + int(seconds * SAMPLE_RATE)
    user_stop = user_start + user_speech().size
    frames = -(-(user_stop + SAMPLE_RATE // 2) // FRAME_SAMPLES)
    total = frames * FRAME_SAMPLES
    needed = total - far_start
    repeats = -(-needed // assistant.size)
    speaker = np.zeros(total, np.float32)
    speaker[far_start:] = np.tile(assistant, repeats)[:needed]
    user = np.zeros(total, np.float32)
    user[user_start:user_stop] = user_speech()

    def new_path() -> Any:
        return echo_path(
            room, scenario.conditions, room_impulse_response(room.rt60_s, np.random.default_rng(room.seed))
        )

    path = new_path()
    echo = np.concatenate([path.process(frame) for frame in speaker.reshape(frames, FRAME_SAMPLES)])
    noise_rng = np.random.default_rng(room.seed + 1)
    noise = 10 ** (room.noise_dbfs / 20) * noise_rng.standard_normal(total).astype(np.float32)
    mic = np.clip(user + echo + noise, -1.0, 1.0).astype(np.float32)

    reported = room.echo_delay_ms if room.reported_delay_ms is None else room.reported_delay_ms
    delay = max(0, round((reported - REFERENCE_LEAD_MS) * SAMPLE_RATE / 1000))
    reference = np.concatenate([np.zeros(delay, np.float32), speaker])[:total]
    return Take(mic, reference, user, far_start, user_start, user_stop, speaker, noise, new_path, delay)


def cancel(canceller: EchoCanceller, mic: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, float]:
    """(output, mean µs of this thread's CPU time per process call: wall time on a machine
    shared with other work counts their time slices too)."""
    out = np.empty_like(mic)
    spent = 0
    frames = mic.size // FRAME_SAMPLES
    for k in range(frames):
        span = slice(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES)
        started = time.thread_time_ns()
        out[span] = canceller.process(mic[span], reference[span])
        spent += time.thread_time_ns() - started
    return out, spent / frames / 1000


def speech_flags(audio: np.ndarray, stop: int) -> np.ndarray:
    """Silero's speech decision per 32 ms chunk of audio[:stop], run from the beginning as the
    loop runs it (its state depends on what came before)."""
    vad = SileroVad()
    chunks = audio[: stop // CHUNK_SAMPLES * CHUNK_SAMPLES].reshape(-1, CHUNK_SAMPLES)
    return np.array([vad.speech_probability(chunk) >= VAD_THRESHOLD for chunk in chunks])


def speech_seconds(audio: np.ndarray, start: int, stop: int) -> float:
    """Seconds of [start, stop) in chunks silero flags."""
    first = -(-start // CHUNK_SAMPLES)
    return float(np.count_nonzero(speech_flags(audio, stop)[first:])) * CHUNK_SAMPLES / SAMPLE_RATE


def voiced_kept(take: Take, output: np.ndarray, delay: int) -> float:
    """Of the chunks silero calls speech in the user alone, the share it still calls speech in
    the canceller's output during double talk."""
    alone = speech_flags(take.user, take.user_stop)
    heard = speech_flags(output[delay:], take.user_stop)
    first = take.user_start // CHUNK_SAMPLES
    voiced = alone[first:]
    return float(np.count_nonzero(voiced & heard[first : first + voiced.size])) / max(
        int(np.count_nonzero(voiced)), 1
    )


def time_to_10_db(
    take: Take, heard: np.ndarray, output: np.ndarray, delay: int, noise_dbfs: float
) -> float | None:
    """From `heard`, the mic as the take was played (Take.play)."""
    stop = take.user_start - delay
    mic = heard[take.far_start : stop]
    out = output[take.far_start + delay : stop + delay]
    window = int(SLIDING_S * SAMPLE_RATE)
    erle = sliding_erle_db(mic, out, window, FRAME_SAMPLES)
    cumulative = np.concatenate([[0.0], np.cumsum(np.square(mic, dtype=np.float64))])
    starts = np.arange(erle.size) * FRAME_SAMPLES
    mic_dbfs = 10 * np.log10((cumulative[starts + window] - cumulative[starts]) / window + 1e-20)
    usable = mic_dbfs >= noise_dbfs + ECHO_ABOVE_NOISE_DB
    hits = np.flatnonzero((erle >= T10_DB) & usable)
    return None if hits.size == 0 else (hits[0] * FRAME_SAMPLES + window) / SAMPLE_RATE


def measure(name: str, room: RoomSettings, take: Take, settings: Settings, repeat: int = 1) -> dict[str, Any]:
    canceller = build_canceller(name, settings)
    mic, output, us_per_frame = take.play(canceller)
    runs = [us_per_frame]
    for _ in range(repeat - 1):  # the same take again, a fresh canceller: only its time is kept
        runs.append(take.play(build_canceller(name, settings))[2])
    target, _ = cancel(build_canceller(name, settings), take.user, np.zeros_like(take.reference))
    delay = canceller.output_delay_samples

    # The loop believes no speech over playback before the canceller's warm-up (drift
    # compensation adds the time its estimate takes), so neither does the count.
    settled = take.far_start + int(max(SETTLED_S, canceller.warmup_s) * SAMPLE_RATE)
    stop = take.user_start - delay  # the output's echo-only part ends `delay` after the mic's
    echo_s = (stop - settled) / SAMPLE_RATE
    double_talk = slice(take.user_start + delay, take.user_stop + delay)
    return {
        "erle_db": round(erle_db(mic[settled:stop], output[settled + delay : stop + delay]), 2),
        "t10_s": _rounded(time_to_10_db(take, mic, output, delay, room.noise_dbfs)),
        "dt_sisdr_db": round(si_sdr_db(output[double_talk], target[double_talk]), 2),
        "dt_user_level_db": round(kept_level_db(output[double_talk], target[double_talk]), 2),
        "dt_user_voiced": round(voiced_kept(take, output, delay), 3),
        "false_speech_s": round(speech_seconds(output, settled + delay, stop + delay) * 10 / echo_s, 2),
        "us_per_frame": round(float(np.median(runs)), 1),
        **({"us_per_frame_runs": [round(run, 1) for run in runs]} if repeat > 1 else {}),
        **({"drift_ppm": round(canceller.drift_ppm, 1)} if hasattr(canceller, "drift_ppm") else {}),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def run(
    seconds: float,
    log: Callable[[str], None],
    rooms: list[str] | None = None,
    cancellers: tuple[str, ...] = CANCELLERS,
    repeat: int = 1,
) -> dict[str, Any]:
    settings = Settings()
    chosen = {name: s for name, s in all_scenarios().items() if rooms is None or name in rooms}
    scenarios: dict[str, dict[str, Any]] = {}
    for scenario, spec in chosen.items():
        take = make_take(spec, seconds)
        scenarios[scenario] = {}
        for name in cancellers:
            log(f"{scenario} / {name}")
            scenarios[scenario][name] = measure(name, spec.room, take, settings, repeat)
    meta = {
        "echo_only_s": {scenario: spec.reply_s or seconds for scenario, spec in chosen.items()},
        "double_talk_s": round(user_speech().size / SAMPLE_RATE, 2),
        "room_seeds": {scenario: spec.room.seed for scenario, spec in chosen.items()},
        "sample_rate": SAMPLE_RATE,
    }
    return {"scenarios": scenarios, "meta": meta}


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="echo cancellers per room (echo-only seconds in the JSON's meta)")
    for column in (
        "scenario",
        "canceller",
        "ERLE dB",
        "t10 s",
        "DT SI-SDR dB",
        "DT user dB",
        "DT voiced kept",
        "false speech s/10 s",
        "µs/frame",
        "drift ppm",
    ):
        table.add_column(column, justify="left" if column in ("scenario", "canceller") else "right")
    for scenario, by_canceller in results["scenarios"].items():
        for i, (name, m) in enumerate(by_canceller.items()):
            t10 = "never" if m["t10_s"] is None else f"{m['t10_s']:.2f}"
            table.add_row(
                scenario if i == 0 else "",
                name,
                f"{m['erle_db']:.1f}",
                t10,
                f"{m['dt_sisdr_db']:.1f}",
                f"{m['dt_user_level_db']:+.1f}",
                f"{m['dt_user_voiced']:.0%}",
                f"{m['false_speech_s']:.2f}",
                f"{m['us_per_frame']:.0f}",
                "" if "drift_ppm" not in m else f"{m['drift_ppm']:+.1f}",
                end_section=i == len(by_canceller) - 1,
            )
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--seconds", type=float, default=12.0, help="echo-only seconds per room (≥ 3)")
    parser.add_argument("--rooms", help="comma-separated scenario names (default: all)")
    parser.add_argument("--cancellers", default=",".join(CANCELLERS), help=f"of {', '.join(CANCELLERS)}")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time each canceller over N runs of the take: µs/frame is their median",
    )
    args = parser.parse_args()
    if args.seconds < SETTLED_S + 1:
        parser.error(f"--seconds must be at least {SETTLED_S + 1:g}: ERLE is counted after {SETTLED_S:g} s")
    rooms = args.rooms.split(",") if args.rooms else None
    cancellers = tuple(args.cancellers.split(","))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    results = run(args.seconds, lambda line: print(line, file=sys.stderr), rooms, cancellers, args.repeat)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
