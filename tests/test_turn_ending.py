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
    assert held.verdict(1, complete=False, error=None, early=None) is None
    held.go_on()  # the user spoke again
    assert held.verdict(1, complete=True, error=None, early=None) is None  # stale: ignored
    whole, _ = held.hold(part(1.6, 2.4, samples=320))
    assert whole.started_at == 0.0 and whole.audio.size == first.audio.size + 320 and held.ask == 3
    # "complete", but the words are not there yet: wait for them, then they decide.
    assert held.verdict(3, complete=True, error=None, early=None) is None and held.waits_text
    assert held.words(Transcript(1, "set a timer for", at=2.7)) is None
    assert held.verdict(3, complete=True, error=None, early=Transcript(1, "five minutes", 2.7)) == "detector"
    assert held.verdict(3, complete=False, error="broken", early=None) == "silence"
    assert held.release() is whole and held.held is None


def test_asked_at_the_pause_an_early_answer_waits_for_the_stop_and_more_silence_asks_again():
    held = HeldUtterance(ceiling_s=2.0, endings=frozenset(), reask_s=0.5)
    ask = held.ask_at_pause()
    assert held.verdict(ask, complete=False, error=None, early=None) is None and held.early == (False, None)
    stopped, ask_now = held.hold(part(0.0, 1.0))
    assert not ask_now and held.ask == ask  # the stop's question was the pause's
    assert not held.reask(1.69) and held.reask(1.7) and held.ask == ask + 1
    assert not held.reask(2.5)  # one question out at a time
    assert held.verdict(ask + 1, complete=True, error=None, early=None) == "detector"
    held.talked_on()
    assert held.verdict(ask + 1, complete=True, error=None, early=None) is None
