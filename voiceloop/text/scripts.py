"""Scripts written without spaces between words (Chinese, Japanese kana): there every character
is a syllable, and a word boundary is the reader's guess. Chunking, token estimates, joining a
recogniser's units, placing a reply's words over its samples and matching heard words against
said ones all count them by character; one list keeps them counting the same characters."""

from __future__ import annotations

import re

UNSPACED = "\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff"  # kana, CJK ideographs and extension A
UNSPACED_CHAR = re.compile(rf"[{UNSPACED}]")
