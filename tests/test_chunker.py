"""The sentence chunker on streamed text: what reaches the voice, and when."""

from __future__ import annotations

import pytest

from voiceloop.text.chunker import SentenceChunker


def stream(
    text: str, step: int = 3, first_piece_min_chars: int = 12, first_piece_max_words: int = 0
) -> list[tuple[int, str]]:
    """Feeds `text` in `step`-character deltas; returns (chars fed when cut, piece)."""
    chunker = SentenceChunker(first_piece_min_chars, first_piece_max_words)
    out: list[tuple[int, str]] = []
    for start in range(0, len(text), step):
        out += [(start + step, piece) for piece in chunker.feed(text[start : start + step])]
    out += [(len(text), piece) for piece in chunker.flush()]
    return out


def pieces(text: str, **kwargs) -> list[str]:
    return [piece for _, piece in stream(text, **kwargs)]


def test_english_sentences_are_cut_as_they_complete():
    text = "It is ten past nine. The weather is fine! Anything else?"
    out = stream(text)
    assert [p for _, p in out] == ["It is ten past nine.", "The weather is fine!", "Anything else?"]
    assert out[0][0] < len(text)  # the first piece left before the reply was complete


def test_the_first_piece_may_end_at_a_comma_so_audio_starts_early():
    assert pieces("Well, that is a good question, and the answer is long. Next.") == [
        "Well, that is a good question,",
        "and the answer is long.",
        "Next.",
    ]
    # Later pieces do not cut at commas: whole sentences sound better.
    assert (
        pieces("Yes. One, two, three, four, five, six, seven.")[1]
        == "One, two, three, four, five, six, seven."
    )


def test_abbreviations_numbers_and_list_markers_are_not_sentence_ends():
    assert pieces("Dr. Smith paid $3.14 for it, e.g. twice. Done.") == [
        "Dr. Smith paid $3.14 for it,",
        "e.g. twice.",
        "Done.",
    ]
    assert pieces("Steps:\n1. Open it.\n2. Close it.") == ["Steps:", "Open it.", "Close it."]


def test_chinese_is_cut_at_chinese_punctuation():
    assert pieces("你好！今天天气很好，我们去公园散步吧。好的；再见") == [
        "你好！",
        "今天天气很好，我们去公园散步吧。",
        "好的；",
        "再见",
    ]


def test_mixed_chinese_and_english_streams():
    assert pieces("OK，我们开始吧。First, the plan. 然后是细节。", step=2) == [
        "OK，我们开始吧。",
        "First, the plan.",
        "然后是细节。",
    ]


def test_a_long_chinese_first_clause_is_cut_at_its_comma():
    assert pieces("今天北京的天气非常好，适合出去散步。")[0] == "今天北京的天气非常好，"


@pytest.mark.parametrize("step", [1, 2, 5, 100])
def test_think_blocks_never_reach_the_voice_however_the_tags_are_split(step: int):
    text = "<think>The user wants the time. I should answer.</think>It is nine o'clock."
    assert pieces(text, step=step) == ["It is nine o'clock."]


def test_an_unclosed_think_block_is_dropped_entirely():
    assert pieces("Sure. <think>still reasoning about it", step=4) == ["Sure."]


def test_markdown_is_spoken_as_plain_words():
    text = "## Answer\n**Bold** claim, with `code` and a [link](http://x.y/z).\n- item one\n* item two\n"
    assert pieces(text) == ["Answer", "Bold claim, with code and a link.", "item one", "item two"]


def test_code_blocks_are_not_read_aloud():
    text = "Here it is:\n```python\nprint('hello. world!')\n```\nThat prints a greeting."
    assert pieces(text, step=4) == ["Here it is:", "That prints a greeting."]


def test_pieces_of_pure_punctuation_or_emoji_are_skipped():
    assert pieces("Great! 😀🎉\n---\n...") == ["Great!"]


def test_a_sentence_with_no_punctuation_is_flushed_at_the_end():
    assert pieces("you said what time is it") == ["you said what time is it"]


def test_a_run_on_reply_is_cut_before_it_gets_too_long():
    words = " ".join(["word"] * 100)
    out = pieces(words)
    assert len(out) > 1 and all(len(piece) <= 220 for piece in out)
    assert " ".join(out) == words


def test_by_default_even_a_one_word_opener_is_its_own_first_piece():
    chunker = SentenceChunker()
    assert chunker.feed("Okay, ") == ["Okay,"]
    assert chunker.feed("here is the answer. ") == ["here is the answer."]


def test_a_first_piece_with_no_punctuation_is_cut_after_a_few_words():
    out = stream(
        "Here is what you asked about in some detail today. Then more.", step=2, first_piece_max_words=5
    )
    assert [p for _, p in out] == ["Here is what you asked", "about in some detail today.", "Then more."]
    assert out[0][0] <= len("Here is what you asked ") + 2  # cut as soon as the fifth word ended
