"""Push-to-talk for `voiceloop run`: the space key opens a turn without the wake word.

Only when stdin is a terminal: it is put in cbreak mode (keys arrive one at a time, unechoed;
Ctrl-C still interrupts) and read by the event loop, never by a thread, so a key press reaches
the conversation on the loop like any other event. The terminal is restored on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Iterator

PUSH_KEY = " "


@contextlib.contextmanager
def push_to_talk_key(on_press: Callable[[], None]) -> Iterator[bool]:
    """Yields whether the key is live (False: stdin is no terminal, or has no termios)."""
    try:
        import termios
        import tty
    except ImportError:  # not a POSIX terminal
        yield False
        return
    stdin = sys.stdin
    if not stdin.isatty():
        yield False
        return
    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    loop = asyncio.get_running_loop()

    def read_keys() -> None:
        with contextlib.suppress(OSError):
            if PUSH_KEY in os.read(fd, 32).decode(errors="ignore"):
                on_press()

    tty.setcbreak(fd)
    loop.add_reader(fd, read_keys)
    try:
        yield True
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
