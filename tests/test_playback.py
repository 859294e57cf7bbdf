"""The playback queue: frame-accurate stop, and a ledger of what was actually heard."""

from __future__ import annotations

import numpy as np

from voiceloop.audio.playback import PlaybackQueue
from voiceloop.engine.events import PlaybackFinished, PlaybackStarted

FRAME = 160


def tone(seconds: float) -> np.ndarray:
    return np.full(int(seconds * 16_000), 0.5, dtype=np.float32)


def queue_pieces(queue: PlaybackQueue, turn: int, texts: list[str], seconds: float = 0.1) -> None:
    for text in texts:
        index = queue.begin_piece(turn, text)
        assert index is not None
        queue.append(turn, index, tone(seconds))
        queue.end_piece(turn, index)


def play(queue: PlaybackQueue, frames: int, start: float = 0.0) -> np.ndarray:
    return np.concatenate([queue.pull(FRAME, at=start + k * 0.01) for k in range(frames)])


def test_pieces_play_in_order_and_the_turn_finishes_when_drained():
    queue = PlaybackQueue()
    queue.open_turn(1)
    queue_pieces(queue, 1, ["One.", "Two."])
    queue.close_turn(1)
    audio = play(queue, 25)
    assert np.count_nonzero(audio) == 2 * 1600
    events = queue.drain_events()
    assert events[0] == PlaybackStarted(1, 0.0)
    assert isinstance(events[1], PlaybackFinished) and abs(events[1].at - 0.2) < 1e-9
    assert queue.heard_text(1) == "One. Two."


def test_stop_silences_the_very_next_frame_and_reports_only_what_was_heard():
    queue = PlaybackQueue()
    queue.open_turn(1)
    queue_pieces(queue, 1, ["The first sentence here.", "A second one that nobody hears."], seconds=0.5)
    play(queue, 60)  # 0.6 s: all of piece one, a fifth of piece two
    heard = queue.stop(1)
    assert heard == "The first sentence here. A"
    assert not np.any(queue.pull(FRAME, at=1.0))
    # Audio still arriving from a cancelled voice is dropped.
    assert queue.begin_piece(1, "late") is None


def test_an_underrun_waits_for_the_voice_instead_of_finishing():
    queue = PlaybackQueue()
    queue.open_turn(1)
    index = queue.begin_piece(1, "Streaming piece.")
    queue.append(1, index, tone(0.05))
    play(queue, 10)
    assert [type(e) for e in queue.drain_events()] == [PlaybackStarted]
    queue.append(1, index, tone(0.05))
    queue.end_piece(1, index)
    queue.close_turn(1)
    play(queue, 10, start=0.1)
    assert [type(e) for e in queue.drain_events()] == [PlaybackFinished]
    assert queue.heard_text(1) == "Streaming piece."


def test_notices_are_played_but_never_counted_as_heard_reply():
    queue = PlaybackQueue()
    queue.open_turn(1)
    queue_pieces(queue, 1, ["Real words."])
    index = queue.begin_piece(1, "Sorry, my answer was cut off.", spoken=False)
    queue.append(1, index, tone(0.1))
    queue.end_piece(1, index)
    queue.close_turn(1)
    play(queue, 30)
    assert queue.heard_text(1) == "Real words."


def test_a_new_turn_ignores_audio_for_the_old_one():
    queue = PlaybackQueue()
    queue.open_turn(1)
    queue.open_turn(2)
    assert queue.begin_piece(1, "stale") is None
    assert not queue.append(1, 0, tone(0.1))


def test_pause_silences_the_next_frame_and_resume_plays_on_from_the_same_sample():
    queue = PlaybackQueue()
    queue.open_turn(1)
    ramp = np.arange(1, 4801, dtype=np.float32) / 4800  # 0.3 s, every sample different
    index = queue.begin_piece(1, "Nothing is lost while paused.")
    assert index is not None
    queue.append(1, index, ramp)
    queue.end_piece(1, index)
    queue.close_turn(1)
    before = play(queue, 10)  # 0.1 s
    assert queue.pause(1) and queue.paused and not queue.playing
    assert not queue.pause(1)  # already paused
    assert not np.any(play(queue, 50, start=0.1))
    assert queue.drain_events() == [PlaybackStarted(1, 0.0)]  # a pause does not finish the turn
    assert queue.resume(1) and not queue.paused
    after = play(queue, 25, start=0.6)
    # Every sample is played exactly once, in order, across the pause.
    assert np.array_equal(np.concatenate([before, after])[: ramp.size], ramp)
    assert queue.heard_text(1) == "Nothing is lost while paused."
    (finished,) = queue.drain_events()
    assert isinstance(finished, PlaybackFinished) and abs(finished.at - 0.8) < 1e-9


def test_a_paused_reply_stopped_keeps_only_what_was_heard_and_a_new_turn_is_not_paused():
    queue = PlaybackQueue()
    queue.open_turn(1)
    queue_pieces(queue, 1, ["Heard before the pause.", "Never heard at all."], seconds=0.5)
    play(queue, 50)
    assert queue.pause(1)
    play(queue, 30, start=0.5)
    assert queue.stop(1) == "Heard before the pause."
    assert not queue.resume(1)  # nothing left to resume
    queue.open_turn(2)
    queue_pieces(queue, 2, ["Next."])
    assert not queue.paused and np.any(queue.pull(FRAME, at=2.0))


def test_the_words_sounded_at_a_time_are_placed_by_their_share_of_the_letters():
    """Over 4 s, "one two three four" (3+3+5+4 letters): "one" 0-0.8 s, "two" 0.8-1.6,
    "three" 1.6-2.93, "four" 2.93-4."""
    queue = PlaybackQueue()
    queue.open_turn(1)
    queue_pieces(queue, 1, ["one two three four"], seconds=4.0)
    play(queue, 200, start=10.0)  # 2 s
    queue.pause(1)
    play(queue, 100, start=12.0)  # a second held: nothing sounds
    queue.resume(1)
    play(queue, 200, start=13.0)  # the last 2 s
    assert queue.words_sounded(10.0, 10.5) == "one"
    assert queue.words_sounded(10.9, 11.5) == "two"
    assert queue.words_sounded(10.5, 11.7) == "one two three"
    assert queue.words_sounded(12.1, 12.9) == ""  # held
    # After the hold the clock is a second ahead of the samples: 13.1 s is the piece's 2.1 s.
    assert queue.words_sounded(13.1, 13.5) == "three"
    assert queue.words_sounded(14.2, 16.0) == "four"
    assert queue.words_sounded(16.5, 20.0) == ""


def test_a_piece_still_rendering_counts_whole_and_notices_not_at_all():
    queue = PlaybackQueue()
    queue.open_turn(1)
    rendering = queue.begin_piece(1, "You said: thank you.")
    assert rendering is not None
    queue.append(1, rendering, tone(1.0))  # its length is not known yet
    play(queue, 20, start=5.0)
    assert queue.words_sounded(5.0, 5.1) == "You said: thank you."
    queue.stop(1)
    queue.open_turn(2)
    notice = queue.begin_piece(2, "Sorry, the language model did not answer.", spoken=False)
    assert notice is not None
    queue.append(2, notice, tone(0.5))
    queue.end_piece(2, notice)
    play(queue, 50, start=6.0)
    # A stopped reply's words are still what sounded then; an error notice is not a reply.
    assert queue.words_sounded(5.0, 6.5) == "You said: thank you."


def test_words_of_a_script_without_spaces_are_placed_character_by_character():
    """The default profile speaks Mandarin: a reply cut off mid-sentence keeps, for the history,
    the characters heard (by spaces there is one word, heard whole or not at all)."""
    queue = PlaybackQueue()
    queue.open_turn(1)
    # 15 characters and 2 marks over 3.4 s: 0.2 s each, a mark with the character before it.
    queue_pieces(queue, 1, ["好的，我来设置一个五分钟的计时器。"], seconds=3.4)
    play(queue, 340, start=0.0)
    assert queue.words_sounded(0.0, 0.25) == "好的，"
    assert queue.words_sounded(2.7, 3.4) == "计时器。"
    queue.open_turn(2)
    queue_pieces(queue, 2, ["好的，我来设置一个五分钟的计时器。"], seconds=3.4)
    play(queue, 150, start=4.0)  # 1.5 s: "好的，我来设置" and half of "一"
    assert queue.stop(2) == "好的，我来设置"
