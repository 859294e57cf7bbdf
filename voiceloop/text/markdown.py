"""Turns a markdown-flavoured piece of reply into plain speakable text.

LLMs answer in markdown even when told not to; a voice reading "asterisk asterisk" or a URL
aloud is the failure users notice first.
"""

from __future__ import annotations

import re

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images: keep the alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links: keep the words
    (re.compile(r"https?://\S+"), ""),  # bare URLs are unspeakable
    (re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE), ""),  # headings
    (re.compile(r"^\s*>\s?", re.MULTILINE), ""),  # quotes
    (re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+", re.MULTILINE), ""),  # list markers
    (re.compile(r"^\s*(?:[-*_]\s*){3,}$", re.MULTILINE), ""),  # rules
    (re.compile(r"(\*\*|__|~~)(.+?)\1"), r"\2"),  # bold, strike
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"\1"),  # *italic*
    (re.compile(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)"), r"\1"),  # _italic_
    (re.compile(r"`([^`]*)`"), r"\1"),  # inline code: say the words
    (re.compile(r"\|"), " "),  # table pipes
    (re.compile(r"[*#`~]+"), ""),  # whatever markup is left over
    (re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]"), ""),  # emoji
    (re.compile(r"\s+"), " "),
)


def speakable(piece: str) -> str:
    for pattern, replacement in _RULES:
        piece = pattern.sub(replacement, piece)
    return piece.strip()


def has_words(text: str) -> bool:
    """False for pieces of pure punctuation, which a voice would render as noise or silence."""
    return any(ch.isalnum() for ch in text)
