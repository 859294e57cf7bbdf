"""libmpg123's notes kept off the terminal.

libsndfile decodes MP3 with libmpg123, which prints its own diagnostics straight to file
descriptor 2 ("Note: Illegal Audio-MPEG-Header ... Trying to resync", "Warning: Xing stream
size off", "[src/libmpg123/layer3.c:...] error: ...") and offers no switch through libsndfile.
The file still decodes, or fails with an error voiceloop reports itself, so these lines only
scramble a progress bar or a server log. While an MP3 is opened and read, fd 2 goes to a
temporary file; afterwards every line that is not one of libmpg123's goes on to the real
stderr, so nothing another thread wrote in that window is lost (only delayed).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_MPG123_LINE = re.compile(rb"^(Note: |Warning: |Error: |\[src/libmpg123/)")
_lock = threading.Lock()  # one redirect at a time: fd 2 is the process's, not the thread's


def looks_like_mp3(path: Path) -> bool:
    if path.suffix.lower() in (".mp3", ".mpga", ".mp2"):
        return True
    try:
        with path.open("rb") as file:
            head = file.read(3)
    except OSError:
        return False
    return head == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


@contextmanager
def mpg123_notes_dropped() -> Iterator[None]:
    with _lock:
        _flush_python_stderr()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                _flush_python_stderr()
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                kept = [
                    line for line in capture.read().splitlines(keepends=True) if not _MPG123_LINE.match(line)
                ]
                if kept:
                    os.write(2, b"".join(kept))


def _flush_python_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):  # replaced or closed by a test runner
        pass
