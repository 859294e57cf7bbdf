"""A walk mid-reply: the filter rebuilt for it re-learns with its output held down, and a user
talking meanwhile is held down with it unless the speaker plays quieter (`[aec.speex]
relearn_duck_db`, voiceloop/aec/path_watch.py) or the filter is fed its recent frames again
and learns the room sooner (`[aec.speex] relearn_replay_every`).

The room runs online, frame by frame, as the loop runs it: the speaker plays each frame at the
gain the canceller asks for (aec/base.py's `speaker_gain`, glided over the frame as
PlaybackQueue glides a volume change), and the echo and the reference follow what it played.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import listener_on_the_mic, queue_whole_reply
from voiceloop.aec import speex
from voiceloop.aec.base import speaker_gain
from voiceloop.aec.compensated import DriftCompensated
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.room_echo import EchoConditions
from voiceloop.audio.virtual import REFERENCE_LEAD_MS, echo_path, room_impulse_response
from voiceloop.config.settings import RoomSettings
from voiceloop.vad.silero import CHUNK_SAMPLES, SileroVad

pytestmark = pytest.mark.skipif(not speex.ctypes.util.find_library("speexdsp"), reason="no libspeexdsp")

# A desk set-up, echo 6 dB over the user (tests/test_aec_drift.py's room).
DESK = RoomSettings(echo_delay_ms=45, echo_gain_db=6, rt60_s=0.4, noise_dbfs=-55)
LEAD_S = 0.5
WALK_AT_S = LEAD_S + 7.0
SECONDS = 10.0
VAD_THRESHOLD = 0.5


@dataclass(frozen=True)
class Played:
    output: np.ndarray  # the canceller's, lined up with the mic
    user: np.ndarray  # the user alone, as the mic took them
    gains: np.ndarray  # the speaker's gain, frame by frame
    relearning: np.ndarray  # frame by frame: a rebuilt filter re-learning, its output held down
    rebuilds: int


@functools.cache
def played(duck_db: float, user_after_walk_s: float | None, replay_every: int = 0) -> Played:
    """The English reply in DESK, someone walking past at WALK_AT_S, the profile's
    canceller with `relearn_duck_db` = `duck_db` and `relearn_replay_every` = `replay_every`,
    and "turn off the lights" said `user_after_walk_s` after the walk (None: nobody talks)."""
    from voiceloop.testing.clips import spoken_clip
    from voiceloop.testing.replies import english_reply

    frames = int((LEAD_S + SECONDS) * SAMPLE_RATE) // FRAME_SAMPLES
    total = frames * FRAME_SAMPLES
    far_start = int(LEAD_S * SAMPLE_RATE)
    speaker = np.zeros(total, np.float32)
    speaker[far_start:] = np.tile(english_reply(), 4)[: total - far_start]
    user = np.zeros(total, np.float32)
    if user_after_walk_s is not None:
        words = spoken_clip("turn off the lights", lead_s=0.0, tail_s=0.0)
        start = int((WALK_AT_S + user_after_walk_s) * SAMPLE_RATE)
        user[start : start + words.size] = words
    rir = room_impulse_response(DESK.rt60_s, np.random.default_rng(DESK.seed))
    path = echo_path(DESK, EchoConditions(path_change_at_s=WALK_AT_S), rir)
    rng = np.random.default_rng(DESK.seed + 1)
    noise = (10 ** (DESK.noise_dbfs / 20) * rng.standard_normal(total)).astype(np.float32)
    inner = speex.SpeexCanceller(
        path_change_recovery=True,
        residual_suppression=True,
        relearn_duck_db=duck_db,
        relearn_replay_every=replay_every,
    )
    canceller = DriftCompensated(inner)
    # The reference is what the speaker played, handed out 10 ms before its echo.
    lead = round((DESK.echo_delay_ms - REFERENCE_LEAD_MS) * SAMPLE_RATE / 1000)
    sounded = np.zeros(lead + total, np.float32)
    out, gains, relearning, applied = [], [], [], 1.0
    assert inner.path_watch is not None
    for k in range(frames):
        span = slice(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES)
        gain = speaker_gain(canceller)
        frame = speaker[span] * np.linspace(applied, gain, FRAME_SAMPLES, dtype=np.float32)
        applied = gain
        sounded[lead + span.start : lead + span.stop] = frame
        mic = np.clip(path.process(frame) + user[span] + noise[span], -1.0, 1.0).astype(np.float32)
        out.append(canceller.process(mic, sounded[span]))
        gains.append(gain)
        relearning.append(inner.path_watch.relearning)
    delay = canceller.output_delay_samples
    output = np.concatenate(out)
    output = np.concatenate([output[delay:], np.zeros(delay, np.float32)])
    return Played(output, user, np.array(gains), np.array(relearning), inner.path_watch.changes)


def voiced(audio: np.ndarray) -> np.ndarray:
    vad = SileroVad()
    chunks = audio[: audio.size // CHUNK_SAMPLES * CHUNK_SAMPLES].reshape(-1, CHUNK_SAMPLES)
    return np.array([vad.speech_probability(chunk) >= VAD_THRESHOLD for chunk in chunks])


def heard_of_the_user(run: Played) -> tuple[int, int]:
    """(voiced chunks of the user's words silero hears in the output, voiced chunks of the words
    alone)."""
    said = voiced(run.user)
    return int(np.count_nonzero(voiced(run.output) & said)), int(np.count_nonzero(said))


def ducked_then_back(gains: np.ndarray) -> tuple[int, int, int]:
    """(first frame asked quieter, first frame of the way back up, first frame back at 1) of a
    speaker asked 10 dB down once and back up gently, checking its shape on the way."""
    quieter = np.flatnonzero(gains < 1.0)
    assert quieter.size and np.all(np.diff(quieter) == 1)  # one span
    start, back = quieter[0], quieter[-1] + 1
    held = np.flatnonzero(np.isclose(gains[start:back], 10 ** (-10 / 20)))
    rising = start + held[-1] + 1
    assert np.all(np.diff(gains[rising - 1 : back + 1]) > 0)  # up a little each frame
    assert back - rising <= speex.BACK_UP_FRAMES and np.all(gains[back:] == 1.0)
    return int(start), int(rising), int(back)


def test_the_speaker_plays_quieter_only_while_the_rebuilt_filter_relearns() -> None:
    run = played(-10.0, None)
    assert run.rebuilds == 1
    start, rising, _ = ducked_then_back(run.gains)
    # From the rebuild, a few checks after the walk, for at most the watch's 1.5 s re-learn.
    walk_frame = int(WALK_AT_S * SAMPLE_RATE) // FRAME_SAMPLES
    assert walk_frame < start < walk_frame + 40
    assert rising - start <= int(1.5 * SAMPLE_RATE) // FRAME_SAMPLES
    # Not asked where nothing is ducked.
    assert np.all(played(0.0, None).gains == 1.0)


@pytest.mark.parametrize("after_s", [0.4, 0.8])
def test_a_user_talking_while_the_filter_relearns_is_heard_where_the_speaker_plays_quieter(
    after_s: float,
) -> None:
    """Measured here: "turn off the lights" said 0.4-0.8 s after the walk, 0 of its 31-33 voiced
    chunks heard at full volume, 27-28 ducked. In bench_bargein's mandarin-10db-walks, 12 of the
    14 interruptions missed were said in such a hold (README, echo section)."""
    heard, said = heard_of_the_user(played(-10.0, after_s))
    assert heard >= 0.75 * said
    heard, said = heard_of_the_user(played(0.0, after_s))
    assert heard <= 0.1 * said


def test_the_echo_let_out_of_the_relearning_hold_is_not_speech() -> None:
    """While ducked, a residual the reference explains little of is let through: the echo of a
    filter still learning must not be that (measured: none of it called speech)."""
    run = played(-10.0, None)
    flags = voiced(run.output)
    after_walk = int(WALK_AT_S * SAMPLE_RATE) // CHUNK_SAMPLES
    assert np.count_nonzero(flags[after_walk:]) * CHUNK_SAMPLES / SAMPLE_RATE <= 0.1


@pytest.mark.parametrize("after_s", [0.4, 0.9])
def test_a_user_talking_while_the_filter_relearns_is_heard_where_it_is_fed_its_recent_frames_again(
    after_s: float,
) -> None:
    """Measured here, the speaker as loud: "turn off the lights" said 0.3-0.9 s after the walk,
    0 of its 30-35 voiced chunks heard with the filter learning from live frames alone, 10-22
    with the last 0.4 s fed through it again every 5 frames; the hold 150 → 126 frames."""
    heard, said = heard_of_the_user(played(0.0, after_s, replay_every=5))
    assert heard >= 0.5 * said
    heard, said = heard_of_the_user(played(0.0, after_s))
    assert heard <= 0.1 * said
    assert played(0.0, None, replay_every=5).relearning.sum() < played(0.0, None).relearning.sum()


def test_the_echo_of_a_filter_fed_its_recent_frames_again_is_not_speech() -> None:
    """What the replay teaches the filter is the echo: more of it goes, none turns to speech
    (measured: 0.03 s after the walk, one chunk)."""
    run = played(0.0, None, replay_every=5)
    assert run.rebuilds == 1
    flags = voiced(run.output)
    after_walk = int(WALK_AT_S * SAMPLE_RATE) // CHUNK_SAMPLES
    assert np.count_nonzero(flags[after_walk:]) * CHUNK_SAMPLES / SAMPLE_RATE <= 0.1


@pytest.mark.parametrize("after_s", [0.3, 0.5, 0.7])
def test_a_user_talking_while_the_filter_relearns_is_heard_where_it_both_ducks_and_is_fed_again(
    after_s: float,
) -> None:
    """The default profile does both. Measured here: "turn off the lights" said 0.3-0.9 s after
    the walk, 25-33 of its 30-35 voiced chunks heard with both, 18-34 ducked alone (18 of 32 at
    0.7 s), 10-22 fed again alone (10 of 33 at 0.3 s)."""
    heard, said = heard_of_the_user(played(-10.0, after_s, replay_every=5))
    assert heard >= 0.75 * said


def test_the_echo_of_a_filter_ducked_and_fed_again_is_within_the_false_speech_target() -> None:
    """Fed again while ducked, the filter's output is let out of the hold sooner, some of the
    echo with it (measured: 0.13 s after the walk; ducked alone none, fed again alone 0.03 s);
    issue 15's target is at most 0.5 s called speech per 10 s of echo."""
    run = played(-10.0, None, replay_every=5)
    assert run.rebuilds == 1
    flags = voiced(run.output)
    after_walk = int(WALK_AT_S * SAMPLE_RATE) // CHUNK_SAMPLES
    speech_s = np.count_nonzero(flags[after_walk:]) * CHUNK_SAMPLES / SAMPLE_RATE
    assert speech_s <= 0.05 * (LEAD_S + SECONDS - WALK_AT_S)


def test_the_listener_plays_the_reply_quieter_while_the_canceller_relearns(tmp_path: Path) -> None:
    """The wiring: the listener reads the canceller's ask each frame, the playback queue plays
    the next frame at it (gliding), and the session log says when and by how much."""
    from voiceloop.audio.base import DuplexFrame
    from voiceloop.audio.playback import PlaybackQueue
    from voiceloop.session.log import read_session
    from voiceloop.testing.replies import english_reply

    queue = PlaybackQueue()
    canceller = DriftCompensated(
        speex.SpeexCanceller(path_change_recovery=True, residual_suppression=True, relearn_duck_db=-10.0)
    )
    listener = listener_on_the_mic(queue, tmp_path, aec=canceller)
    frames = int((LEAD_S + SECONDS) * SAMPLE_RATE) // FRAME_SAMPLES
    total, far_start = frames * FRAME_SAMPLES, int(LEAD_S * SAMPLE_RATE)
    reply = np.zeros(total, np.float32)  # as played() gives it: the reply from LEAD_S on
    reply[far_start:] = np.tile(english_reply(), 4)[: total - far_start]
    queue_whole_reply(queue, reply)
    rir = room_impulse_response(DESK.rt60_s, np.random.default_rng(DESK.seed))
    path = echo_path(DESK, EchoConditions(path_change_at_s=WALK_AT_S), rir)
    rng = np.random.default_rng(DESK.seed + 1)
    lead = round((DESK.echo_delay_ms - REFERENCE_LEAD_MS) * SAMPLE_RATE / 1000)
    sounded = np.zeros(lead + total, np.float32)
    asked, played_at = [1.0], []
    for k in range(frames):
        span = slice(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES)
        speaker = queue.pull(FRAME_SAMPLES, at=k / 100)
        sounded[lead + span.start : lead + span.stop] = speaker
        noise = (10 ** (DESK.noise_dbfs / 20) * rng.standard_normal(FRAME_SAMPLES)).astype(np.float32)
        mic = np.clip(path.process(speaker) + noise, -1.0, 1.0).astype(np.float32)
        listener.hear(DuplexFrame(mic, sounded[span], k / 100, speaker))
        asked.append(speaker_gain(canceller))
        given = reply[span][-1]
        played_at.append(float(speaker[-1] / given) if abs(given) > 1e-3 else None)
    start, rising, back = ducked_then_back(np.array(asked))
    # Each frame ends at the gain asked after the frame before (the first glides into it).
    for gain, wanted in zip(played_at, asked, strict=False):
        assert gain is None or gain == pytest.approx(wanted, abs=1e-4)
    assert sum(gain is not None and gain < 0.99 for gain in played_at) > 0.8 * (back - start)
    (log,) = tmp_path.glob("*/session.jsonl")
    ducks = [(e["event"], e.get("volume_db")) for e in read_session(log) if "ducked" in e["event"]]
    assert ducks == [("speaker_ducked", -10.0), ("speaker_unducked", None)]
