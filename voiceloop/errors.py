"""How an error reads wherever it is shown: one line (the console, the log, a turn's record, an
API answer). A traceback belongs in the log's debug output, not in front of a user."""

from __future__ import annotations


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The message's first non-empty line, white space folded, at most `limit` characters; the
    exception's type name when it says nothing (an empty message must not become an empty
    line, or an IndexError)."""
    for line in str(exc).splitlines():
        if line.strip():
            return " ".join(line.split())[:limit]
    return type(exc).__name__
