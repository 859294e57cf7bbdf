"""Cuts a streamed reply into speakable pieces, the first one short.

Waiting for a whole first sentence cost Pipecat ~100 ms per turn in our measurements, so the
first piece may end at a clause break (a comma) once it has a word or two, and where no
punctuation comes, after a few words.
Later pieces end at sentences, which gives the voice better prosody. Latin periods need care:
"Dr. Smith", "e.g. this", "3.14" and "1. item" are not sentence ends, and a period at the very
end of the buffer waits for the next character to decide.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from voiceloop.text.markdown import has_words, speakable
from voiceloop.text.scripts import UNSPACED_CHAR
from voiceloop.text.unspoken import UnspokenFilter

CJK_SENTENCE_END = "。！？；"
LATIN_SENTENCE_END = ".!?;"
CLAUSE_BREAK = ",，、:：—"
CLOSERS = "\"'”’)）」』】]"
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e eg ie no fig approx dept est inc ltd co mt"
    " jan feb apr jun jul aug sep sept oct nov dec".split()
)
MAX_PIECE_CHARS = 220  # a piece longer than this is cut at a clause break or a space


def speech_weight(text: str) -> int:
    """Roughly how long a piece sounds: a CJK character is a syllable, worth two letters."""
    return sum(2 if UNSPACED_CHAR.match(ch) else 1 for ch in text if not ch.isspace())


class SentenceChunker:
    def __init__(self, first_piece_min_chars: int = 4, first_piece_max_words: int = 8) -> None:
        self.first_piece_min_chars = first_piece_min_chars
        self.first_piece_max_words = first_piece_max_words
        self._filter = UnspokenFilter()
        self._buffer = ""
        self._pieces_out = 0

    def feed(self, delta: str) -> list[str]:
        self._buffer += self._filter.feed(delta)
        return list(self._cut(final=False))

    def flush(self) -> list[str]:
        self._buffer += self._filter.flush()
        return list(self._cut(final=True))

    # -- cutting ----------------------------------------------------------------------------------

    def _cut(self, final: bool) -> Iterator[str]:
        while True:
            end = self._find_cut(final)
            if end is None:
                break
            piece, self._buffer = self._buffer[:end], self._buffer[end:]
            spoken = speakable(piece)
            if has_words(spoken):
                self._pieces_out += 1
                yield spoken
        if final:
            spoken = speakable(self._buffer)
            self._buffer = ""
            if has_words(spoken):
                self._pieces_out += 1
                yield spoken

    def _find_cut(self, final: bool) -> int | None:
        text = self._buffer
        first = self._pieces_out == 0
        for index, ch in enumerate(text):
            if ch == "\n":
                if text[:index].strip():
                    return index + 1
                continue
            if ch in CJK_SENTENCE_END:
                return self._after_closers(index + 1)
            if ch in LATIN_SENTENCE_END:
                cut = self._latin_sentence_end(index, final)
                if cut == -1:
                    return None  # undecidable until more text arrives
                if cut is not None:
                    return cut
            elif ch in CLAUSE_BREAK and first and self._clause_cut_ok(index, final):
                if speech_weight(text[:index]) >= self.first_piece_min_chars:
                    return self._after_closers(index + 1)
        if len(text) > MAX_PIECE_CHARS:
            return self._forced_cut(text)
        if first and self.first_piece_max_words:
            return self._after_words(text, self.first_piece_max_words)
        return None

    @staticmethod
    def _after_words(text: str, words: int) -> int | None:
        """The cut after `words` complete words (a space must follow the last one)."""
        seen = 0
        for match in re.finditer(r"\S+(?=\s)", text):
            seen += 1
            if seen == words:
                return match.end()
        return None

    def _latin_sentence_end(self, index: int, final: bool) -> int | None:
        """The cut position after `index`, None if not a sentence end, -1 if undecidable."""
        text = self._buffer
        after = self._after_closers(index + 1)
        while after < len(text) and text[after] in LATIN_SENTENCE_END:
            after = self._after_closers(after + 1)  # "?!", "..."
        if after >= len(text):
            return after if final else -1
        nxt = text[after]
        if not (nxt.isspace() or UNSPACED_CHAR.match(nxt)):
            return None  # "3.14", "e.g.x", "example.com"
        if text[index] == "." and self._period_is_not_an_end(index):
            return None
        return after

    def _period_is_not_an_end(self, index: int) -> bool:
        word = re.split(r"\s", self._buffer[:index])[-1].lstrip("(\"'“‘").lower()
        if word in ABBREVIATIONS:
            return True
        if len(word) == 1 and word.isalpha():
            return True  # an initial: "J. R. R. Tolkien"
        line_start = self._buffer.rfind("\n", 0, index) + 1
        return word.isdigit() and not self._buffer[line_start : index - len(word)].strip()

    def _clause_cut_ok(self, index: int, final: bool) -> bool:
        if UNSPACED_CHAR.match(self._buffer[index]) or self._buffer[index] in "，、：":
            return True
        nxt = index + 1
        if nxt >= len(self._buffer):
            return final
        return self._buffer[nxt].isspace()  # "1,000" is not a clause break

    def _after_closers(self, position: int) -> int:
        while position < len(self._buffer) and self._buffer[position] in CLOSERS:
            position += 1
        return position

    def _forced_cut(self, text: str) -> int:
        window = text[:MAX_PIECE_CHARS]
        for marks in (CLAUSE_BREAK, " "):
            best = max(window.rfind(mark) for mark in marks)
            if best > MAX_PIECE_CHARS // 3:
                return best + 1
        return MAX_PIECE_CHARS
