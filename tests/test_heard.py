"""The check the real-device tests use: played audio found whole and in order in a recording,
with silence that late blocks put into it allowed, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from voiceloop.audio.frames import SAMPLE_RATE, to_float32
from voiceloop.testing.heard import assert_heard_whole_and_in_order
from voiceloop.tts.espeak import render

DELAY = 1234


@pytest.fixture(scope="module")
def reply() -> np.ndarray:
    return 0.5 * to_float32(render("You said: what time is it. That is all.", "en-us", 175))


def recorded(played: np.ndarray, gap_at: int | None = None, gap: int = 0) -> np.ndarray:
    """The speaker's sink, recorded from before it played; `gap` samples of silence at `gap_at`."""
    heard = np.concatenate([np.zeros(DELAY, np.float32), played, np.zeros(SAMPLE_RATE, np.float32)])
    if gap_at is not None:
        at = DELAY + gap_at
        heard = np.concatenate([heard[:at], np.zeros(gap, np.float32), heard[at:]])
    noise = np.random.default_rng(0).standard_normal(heard.size).astype(np.float32) * 1e-3
    return heard + noise


def test_a_clean_recording_gives_one_delay(reply: np.ndarray):
    delays = assert_heard_whole_and_in_order(reply, recorded(reply), min_pieces=4)
    assert set(delays) == {DELAY}


def test_silence_put_in_by_a_late_block_is_allowed_and_shows_as_a_later_delay(reply: np.ndarray):
    gap_at = reply.size // 2 + 1000  # inside a piece, which then matches poorly
    delays = assert_heard_whole_and_in_order(reply, recorded(reply, gap_at, gap=4000), min_pieces=4)
    assert delays[0] == DELAY and delays[-1] == DELAY + 4000


def test_a_different_recording_is_refused(reply: np.ndarray):
    other = 0.5 * to_float32(render("The quick brown fox jumps over the lazy dog.", "en-us", 175))
    with pytest.raises(AssertionError, match="pieces whole|spoilt|no piece"):
        assert_heard_whole_and_in_order(reply, recorded(other), min_pieces=4)


def test_pieces_out_of_order_are_refused(reply: np.ndarray):
    half = reply.size // 2
    swapped = np.concatenate([reply[half:], reply[:half]])
    with pytest.raises(AssertionError, match="out of order|gaps too long|spoilt"):
        assert_heard_whole_and_in_order(reply, recorded(swapped), min_pieces=4)


def test_a_long_silence_is_more_than_a_gap(reply: np.ndarray):
    with pytest.raises(AssertionError, match="gaps too long"):
        assert_heard_whole_and_in_order(reply, recorded(reply, reply.size // 2, gap=2 * SAMPLE_RATE), 4)


def test_a_block_dropped_to_catch_up_is_allowed_only_when_the_device_counted_it(reply: np.ndarray):
    """The device played ten blocks late (silence) and dropped ten to get back in step: the
    delay is unchanged, but the piece around them no longer matches."""
    pieces = reply[: reply.size // 4000 * 4000].reshape(-1, 4000)
    at = int(np.argmax(np.sum(pieces**2, axis=1))) * 4000 + 1000  # in the loudest piece
    blocks = 10 * 160
    caught_up = np.concatenate([reply[:at], np.zeros(blocks, np.float32), reply[at + blocks :]])
    heard = recorded(caught_up)
    with pytest.raises(AssertionError, match="0 gaps and 0 late blocks"):
        assert_heard_whole_and_in_order(reply, heard, min_pieces=4)
    assert set(assert_heard_whole_and_in_order(reply, heard, min_pieces=4, late_blocks=10)) == {DELAY}
