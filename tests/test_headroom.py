"""Playing no louder than the mic can take: where our own voice drives the mic to full scale
the speaker plays quieter, a user who shouts over a held reply does not turn it down, and a
step lost to something that was not our echo (a knock on the mic) comes back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import bench_room, listener_on_the_mic, queue_whole_reply
from voiceloop.audio.base import DuplexFrame
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.headroom import SpeakerHeadroom
from voiceloop.audio.playback import PlaybackQueue
from voiceloop.build.llm import choose_llm
from voiceloop.session.log import read_session
from voiceloop.session.runner import conversation

RNG = np.random.default_rng(3)


def echo_frame(peak: float) -> np.ndarray:
    frame = (0.02 * RNG.standard_normal(FRAME_SAMPLES)).astype(np.float32)
    frame[FRAME_SAMPLES // 2] = peak
    return np.clip(frame, -1.0, 1.0)


def a_reply(headroom: SpeakerHeadroom, frames: int, clipped: int, held: bool = False) -> list[float]:
    """The volumes (dB) the headroom chose while a reply of `frames` played, `clipped` of them
    (spread evenly) at full scale, and as it ended."""
    every = frames // clipped if clipped else frames + 1
    chosen = [
        headroom.hear(echo_frame(1.0 if index % every == 0 else 0.6), playing=not held)
        for index in range(frames)
    ]
    chosen.append(headroom.reply_played())
    return [volume for volume in chosen if volume is not None]


def test_a_reply_whose_echo_clips_the_mic_turns_down_half_a_second_in_and_again_at_its_end():
    headroom = SpeakerHeadroom(step_db=6.0, min_volume_db=-12.0)
    assert a_reply(headroom, 200, clipped=50) == [-6.0, -12.0]  # 25 % of the frames at full scale
    assert headroom.clipped_share == pytest.approx(0.25, abs=0.01)
    assert a_reply(headroom, 200, clipped=50) == []  # at the floor
    assert headroom.volume_db == -12.0


def test_once_turned_down_far_enough_the_rest_of_the_reply_keeps_its_volume():
    headroom = SpeakerHeadroom(step_db=6.0, min_volume_db=-12.0)
    first_half_second = [
        headroom.hear(echo_frame(1.0 if i % 5 == 0 else 0.6), playing=True) for i in range(50)
    ]
    assert [v for v in first_half_second if v is not None] == [-6.0]
    for _ in range(250):  # 6 dB down the echo no longer clips
        assert headroom.hear(echo_frame(0.5), playing=True) is None
    assert headroom.reply_played() is None and headroom.volume_db == -6.0


def test_an_echo_under_full_scale_or_a_clip_now_and_then_changes_nothing():
    headroom = SpeakerHeadroom(step_db=6.0, min_volume_db=-12.0)
    assert a_reply(headroom, 300, clipped=0) == []
    assert a_reply(headroom, 300, clipped=3) == []  # 1 %: a plosive, not a room
    assert a_reply(headroom, 30, clipped=30) == []  # too short a reply to judge
    assert headroom.volume_db == 0.0


def test_a_user_shouting_over_a_held_reply_does_not_turn_it_down():
    headroom = SpeakerHeadroom(step_db=6.0, min_volume_db=-12.0)
    assert a_reply(headroom, 300, clipped=300, held=True) == []  # nothing of ours played
    assert headroom.volume_db == 0.0


def a_quiet_reply(headroom: SpeakerHeadroom, peak: float) -> list[float]:
    """A reply whose echo never clips, its loudest sample `peak`."""
    chosen = [headroom.hear(echo_frame(peak), playing=True) for _ in range(200)]
    chosen.append(headroom.reply_played())
    return [volume for volume in chosen if volume is not None]


def test_a_knock_on_the_mic_costs_a_step_until_three_replies_show_room_for_it():
    headroom = SpeakerHeadroom(step_db=6.0, min_volume_db=-12.0)
    knock = [headroom.hear(echo_frame(1.0 if i in (10, 11) else 0.3), playing=True) for i in range(200)]
    assert [v for v in knock if v is not None] == [-6.0]  # two clipped frames half a second in
    assert headroom.reply_played() is None
    assert a_quiet_reply(headroom, 0.2) == []  # a step louder: 0.4, 8 dB under full scale
    assert a_quiet_reply(headroom, 0.2) == []
    assert a_quiet_reply(headroom, 0.2) == [0.0]


def test_an_echo_that_clipped_a_step_louder_is_never_raised_into_clipping_again():
    headroom = SpeakerHeadroom(step_db=6.0, min_volume_db=-12.0)
    assert a_reply(headroom, 200, clipped=50) == [-6.0, -12.0]
    for _ in range(5):  # at -12 dB the echo peaks at half of what clipped at -6 dB: no room
        assert a_quiet_reply(headroom, 0.5) == []
    assert a_quiet_reply(headroom, 0.2) == []  # one quiet reply is not three
    assert a_quiet_reply(headroom, 0.5) == []  # and a loud one starts the count again
    assert headroom.volume_db == -12.0


def test_a_reply_cut_short_is_judged_when_the_next_starts_and_that_one_from_its_own_start():
    headroom = SpeakerHeadroom(step_db=6.0, min_volume_db=-12.0)
    for _ in range(80):  # its first half second is judged (no clip), then a barge-in stops it
        assert headroom.hear(echo_frame(0.6), playing=True) is None
    assert headroom.reply_played() is None  # the next reply starts: the leftovers are judged
    assert headroom.reply_played() is None  # and judging again finds nothing
    clipping = [headroom.hear(echo_frame(1.0 if i % 4 == 0 else 0.6), playing=True) for i in range(50)]
    assert [v for v in clipping if v is not None] == [-6.0]  # judged half a second in


def test_a_step_of_zero_never_turns_it_down():
    assert a_reply(SpeakerHeadroom(step_db=0.0, min_volume_db=-12.0), 300, clipped=300) == []


def test_a_new_volume_glides_over_one_frame_then_holds():
    queue = PlaybackQueue()
    queue.open_turn(1)
    piece = queue.begin_piece(1, "hello")
    assert piece is not None
    queue.append(1, piece, np.full(FRAME_SAMPLES * 3, 0.5, np.float32))
    queue.volume = 0.5
    glide = queue.pull(FRAME_SAMPLES, at=0.0)
    assert glide[0] == pytest.approx(0.5) and glide[-1] == pytest.approx(0.25)
    assert np.all(np.diff(glide) <= 0)  # no step: every sample a little quieter than the last
    assert np.allclose(queue.pull(FRAME_SAMPLES, at=0.01), 0.25)
    queue.volume = 1.0
    assert queue.pull(FRAME_SAMPLES, at=0.02)[-1] == pytest.approx(0.5)


def test_the_listener_turns_the_speaker_down_for_a_knock_and_back_up_after_three_quiet_replies(
    tmp_path: Path,
):
    """The wiring: the listener feeds every frame, asks as each reply starts and ends, and sets
    the playback queue's volume both ways, saying so in the session log."""
    queue = PlaybackQueue()
    listener = listener_on_the_mic(
        queue, tmp_path, headroom=SpeakerHeadroom(step_db=6.0, min_volume_db=-12.0)
    )
    volumes, frame = [], 0
    for turn in range(1, 5):
        queue.open_turn(turn)
        piece = queue.begin_piece(turn, "It is noon.")
        assert piece is not None
        queue.append(turn, piece, np.full(SAMPLE_RATE, 0.4, np.float32))
        queue.end_piece(turn, piece)
        queue.close_turn(turn)
        for index in range(130):  # the second it plays, and its echo's tail
            at = frame / 100
            speaker = queue.pull(FRAME_SAMPLES, at=at)
            mic = 0.5 * speaker  # peaks at 0.2: a step louder, 0.4, still 8 dB under full scale
            if turn == 1 and index in (10, 11):
                mic[80] = 1.0  # a knock on the mic while the first reply plays
            listener.hear(DuplexFrame(mic, speaker, at, speaker))
            frame += 1
        volumes.append(queue.volume)
    six_db_down = pytest.approx(10 ** (-6 / 20))
    assert volumes == [six_db_down, six_db_down, six_db_down, 1.0]
    (log,) = tmp_path.glob("*/session.jsonl")
    changes = [
        (e["event"], e["volume_db"]) for e in read_session(log) if e["event"].startswith("speaker_volume")
    ]
    assert changes == [("speaker_volume_lowered", -6.0), ("speaker_volume_raised", 0.0)]


async def conversation_in(
    room_name: str, room_settings
) -> tuple[list[dict], dict[float, float], dict[float, float]]:
    """The greeting and one reply in a bench room: the session log, and at each volume the
    loudest sample queued (as the voice rendered it) and played."""
    room = bench_room(room_settings, room_name, {"say": "tell me a joke", "pause_ms": 300})
    rendered: dict[float, float] = {}
    played: dict[float, float] = {}
    llm = await choose_llm(room_settings, lambda _: None)
    async with conversation(room_settings, room, llm=llm) as talk:
        queue = talk.playback
        append, pull = queue.append, queue.pull

        def append_and_measure(turn_id: int, piece: int, audio: np.ndarray) -> bool:
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            rendered[queue.volume] = max(rendered.get(queue.volume, 0.0), peak)
            return append(turn_id, piece, audio)

        def pull_and_measure(samples: int, at: float) -> np.ndarray:
            out = pull(samples, at)
            played[queue.volume] = max(played.get(queue.volume, 0.0), float(np.max(np.abs(out))))
            return out

        queue.append = append_and_measure  # type: ignore[method-assign]
        queue.pull = pull_and_measure  # type: ignore[method-assign]
        await talk.run()
    return read_session(talk.session.dir / "session.jsonl"), rendered, played


@pytest.mark.slow
async def test_in_a_room_where_the_greeting_clips_the_mic_it_goes_on_6_db_quieter(room_settings):
    events, rendered, played = await conversation_in("mandarin-10db-drift80", room_settings)
    lowered = [e for e in events if e["event"] == "speaker_volume_lowered"]
    assert lowered[0]["volume_db"] == -6.0 and lowered[0]["clipped_share"] > 0.1
    greeting = next(e for e in events if e["event"] == "greeting")
    assert lowered[0]["t"] < greeting["t"]  # half a second into it, not after it
    half = 10 ** (-6 / 20)
    assert 0.3 < played[1.0] <= rendered[1.0]  # its first half second
    after = next(volume for volume in played if volume == pytest.approx(half))
    assert played[after] <= max(rendered.values()) * half + 1e-6  # the rest, and the reply
    assert min(played) >= 10 ** (-12 / 20) - 1e-6


@pytest.mark.slow
async def test_in_a_quiet_room_the_speaker_keeps_its_volume(room_settings):
    events, _, played = await conversation_in("desk-quiet", room_settings)
    assert not [e for e in events if e["event"] == "speaker_volume_lowered"]
    assert set(played) == {1.0}


def test_frames_the_canceller_has_the_speaker_quieter_in_do_not_count_for_the_reply(tmp_path: Path):
    """A walk's second played 10 dB down (aec/base.py's speaker_gain), counted, thinned the
    share of the reply that clipped under the line: in bench_bargein's mandarin-10db-walks fewer
    sessions stepped down to -12 dB after the walk (15 of 41 against 19)."""
    from voiceloop.aec.passthrough import PassthroughCanceller

    class AsksQuieterAtFirst(PassthroughCanceller):
        """As speex re-learning a changed room asks: quieter, for the reply's first 2 s."""

        def __init__(self) -> None:
            super().__init__()
            self.frames = 0

        def process(self, mic_frame: np.ndarray, reference_frame: np.ndarray) -> np.ndarray:
            self.frames += 1
            return super().process(mic_frame, reference_frame)

        @property
        def speaker_gain(self) -> float:
            return 10 ** (-10 / 20) if self.frames < 200 else 1.0

    queue = PlaybackQueue()
    listener = listener_on_the_mic(
        queue, tmp_path, headroom=SpeakerHeadroom(step_db=6.0, min_volume_db=-12.0), aec=AsksQuieterAtFirst()
    )
    reply = np.full(3 * SAMPLE_RATE, 0.3, np.float32)
    reply[int(2.5 * SAMPLE_RATE) : int(2.5 * SAMPLE_RATE) + 2 * FRAME_SAMPLES] = 0.5  # peaks that clip
    queue_whole_reply(queue, reply)
    for frame in range(330):
        speaker = queue.pull(FRAME_SAMPLES, at=frame / 100)
        mic = np.clip(2.0 * speaker, -1.0, 1.0)  # the echo at full volume clips on the peaks alone
        listener.hear(DuplexFrame(mic, speaker, frame / 100, speaker))
    # Judged over the second it played as loud: 2 of 100 frames clipped, not 2 of 300.
    assert queue.volume == pytest.approx(10 ** (-6 / 20))
