"""Streaming removal of what must never be read aloud: reasoning blocks and code.

Models stream `<think>…</think>` and fenced code across arbitrary token boundaries (a tag can
arrive as `<th` + `ink>`), so this filter holds back just enough of a possible tag to decide.
Inline markdown is handled per piece in `markdown.py`, where whole words are available.
"""

from __future__ import annotations

HIDDEN_BLOCKS = (("<think>", "</think>"), ("```", "```"))


class UnspokenFilter:
    def __init__(self) -> None:
        self._pending = ""
        self._closing: str | None = None  # the tag that ends the block we are inside

    def feed(self, delta: str) -> str:
        self._pending += delta
        spoken: list[str] = []
        while self._pending:
            if self._closing is not None:
                end = self._pending.find(self._closing)
                if end < 0:
                    # Keep only a tail that could be the start of the closing tag.
                    self._pending = self._pending[-(len(self._closing) - 1) :]
                    break
                self._pending = self._pending[end + len(self._closing) :]
                self._closing = None
                continue
            start, opening, closing = self._first_opening()
            if start < 0:
                keep = self._partial_tag_tail()
                spoken.append(self._pending[: len(self._pending) - keep])
                self._pending = self._pending[len(self._pending) - keep :]
                break
            spoken.append(self._pending[:start])
            self._pending = self._pending[start + len(opening) :]
            self._closing = closing
        return "".join(spoken)

    def flush(self) -> str:
        rest, self._pending = ("" if self._closing else self._pending), ""
        self._closing = None
        return rest

    def _first_opening(self) -> tuple[int, str, str]:
        found = (-1, "", "")
        for opening, closing in HIDDEN_BLOCKS:
            index = self._pending.find(opening)
            if index >= 0 and (found[0] < 0 or index < found[0]):
                found = (index, opening, closing)
        return found

    def _partial_tag_tail(self) -> int:
        """Length of the longest buffer suffix that is a prefix of some opening tag."""
        longest = 0
        for opening, _ in HIDDEN_BLOCKS:
            for size in range(min(len(opening) - 1, len(self._pending)), 0, -1):
                if self._pending.endswith(opening[:size]):
                    longest = max(longest, size)
                    break
        return longest
