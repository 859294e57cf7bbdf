"""The end-of-turn helpers, pure: the transcript's word on a "complete" verdict, backchannels,
and the held utterance's rules (stale verdicts, the ceiling, parts joined)."""

from __future__ import annotations

import numpy as np

from voiceloop.config.turn_section import BACKCHANNELS, INCOMPLETE_ENDINGS
from voiceloop.engine.ending import HeldUtterance, ends_incomplete, is_backchannel
from voiceloop.engine.events import SpeechEnded, Transcript

ENDINGS = frozenset(INCOMPLETE_ENDINGS)
BACK = frozenset(BACKCHANNELS)


def part(start: float, end: float, samples: int = 160) -> SpeechEnded:
    return SpeechEnded(at=end, started_at=start, detected_at=end + 0.2, audio=np.ones(samples, np.float32))


def test_words_ending_on_a_preposition_article_conjunction_or_filler_are_incomplete():
    for text in ("I would like to book a table for", "set a timer for", "turn on the", "I can't seem to, um",
                 "milk and", "So,", "我想要那个", "我的", "苹果和"):  # fmt: skip
        assert ends_incomplete(text, ENDINGS), text
    for text in ("turn off the kitchen lights.", "what time is it?", "stop", "", "好的。", "for sure"):
        assert not ends_incomplete(text, ENDINGS), text


def test_backchannels_are_only_backchannel_words_or_none():
    for text in ("mhm", "Yeah, okay.", "uh-huh", "right", "", "嗯", "好的", "对。"):
        assert is_backchannel(text, BACK), text
    for text in ("stop", "yeah but wait", "no I meant Tuesday", "不对"):
        assert not is_backchannel(text, BACK), text


def test_a_held_stop_joins_the_parts_and_only_its_own_verdict_counts():
    held = HeldUtterance(ceiling_s=2.0, endings=ENDINGS)
    first, ask_now = held.hold(part(0.0, 1.0))
    assert ask_now
    assert held.ask == 1 and not held.due(2.99) and held.due(3.0)
    assert held.verdict(1, complete=False, error=None, at=1.3) is None
    held.go_on()  # the user spoke again
    assert held.verdict(1, complete=True, error=None, at=1.5) is None  # stale: ignored
    whole, _ = held.hold(part(1.6, 2.4, samples=320))
    assert whole.started_at == 0.0 and whole.audio.size == first.audio.size + 320 and held.ask == 3
    # "complete", but the words are not there yet: wait for them, then they decide.
    assert held.verdict(3, complete=True, error=None, at=2.65) is None and held.waits_text
    assert held.words(Transcript(1, "set a timer for", at=2.7), at=2.7) is None  # the words win
    assert held.decide(4.0) is None and not held.due(4.39) and held.due(4.4)  # only the ceiling
    held.words_complete = None
    assert held.words(Transcript(1, "set a timer for five minutes", at=2.7), at=2.7) == "detector"
    held.model = None
    assert held.verdict(3, complete=False, error="broken", at=2.8) == "silence"
    assert held.release() is whole and held.held is None


def test_asked_at_the_pause_an_early_answer_waits_for_the_stop_and_more_silence_asks_again():
    held = HeldUtterance(ceiling_s=2.0, endings=frozenset(), reask_s=0.5)
    ask = held.ask_at_pause()
    assert held.verdict(ask, complete=False, error=None, at=0.95) is None and held.early == (False, None)
    stopped, ask_now = held.hold(part(0.0, 1.0))
    assert not ask_now and held.ask == ask  # the stop's question was the pause's
    assert held.decide(1.2) is None  # its "incomplete" holds the stop
    assert not held.reask(1.69) and held.reask(1.7) and held.ask == ask + 1
    assert not held.reask(2.5)  # one question out at a time
    assert held.verdict(ask + 1, complete=True, error=None, at=1.75) == "detector"
    held.talked_on()
    assert held.verdict(ask + 1, complete=True, error=None, at=1.8) is None


def test_words_that_sound_complete_wait_for_the_detector_only_within_its_budget():
    held = HeldUtterance(ceiling_s=2.0, endings=ENDINGS, wait_s=0.08)
    _, ask_now = held.hold(part(0.0, 1.0))  # the stop is detected at 1.2
    assert ask_now
    assert held.words(Transcript(1, "what time is it", at=1.1), at=1.2) is None  # waiting on the model
    assert held.decide(1.27) is None and held.decide(1.28) == "words"  # late: the words end it
    # In time, the model's word counts.
    held = HeldUtterance(ceiling_s=2.0, endings=ENDINGS, wait_s=0.08)
    held.hold(part(0.0, 1.0))
    held.words(Transcript(1, "what time is it", at=1.1), at=1.2)
    assert held.verdict(held.ask, complete=True, error=None, at=1.25) == "detector"


def test_a_doubted_complete_sounding_turn_ends_after_the_doubt_window_not_the_ceiling():
    held = HeldUtterance(ceiling_s=2.0, endings=ENDINGS, reask_s=0.3, wait_s=0.08, doubt_s=0.8)
    held.hold(part(0.0, 1.0))  # detected at 1.2
    assert held.words(Transcript(1, "thanks that's all", at=1.1), at=1.2) is None
    assert held.verdict(held.ask, complete=False, error=None, at=1.3) is None
    assert held.reask(1.5) and held.verdict(held.ask, complete=False, error=None, at=1.6) is None
    assert held.decide(1.99) is None and held.decide(2.0) == "doubt"
    # Words that trail off are never doubted out early, and never asked about again.
    held = HeldUtterance(ceiling_s=2.0, endings=ENDINGS, reask_s=0.3, wait_s=0.08, doubt_s=0.8)
    held.hold(part(0.0, 1.0))
    held.verdict(held.ask, complete=False, error=None, at=1.25)
    assert held.words(Transcript(1, "I would like to book a table for", at=1.3), at=1.3) is None
    assert held.decide(2.9) is None and not held.reask(2.0) and held.due(3.0)


def test_with_no_detector_the_words_alone_end_or_hold_the_turn():
    held = HeldUtterance(ceiling_s=2.0, endings=ENDINGS, detector=False)
    _, ask_now = held.hold(part(0.0, 1.0))
    assert not ask_now and not held.reask(5.0)
    assert held.words(Transcript(1, "play some music by the beatles", at=1.2), at=1.2) == "words"
    held.release()
    held.hold(part(2.0, 3.0))
    assert held.words(Transcript(1, "play some music by", at=3.2), at=3.2) is None
    assert held.decide(4.9) is None and held.due(5.0)


def test_no_words_at_all_hold_the_stop_like_words_that_trail_off():
    held = HeldUtterance(ceiling_s=2.0, endings=ENDINGS, detector=False)
    held.hold(part(0.0, 1.0))
    assert held.words(Transcript(1, "", at=1.2), at=1.2) is None  # "I need a recipe for, um", missed
    assert held.decide(2.9) is None and held.due(3.0)
