"""Starting the CLI as a person at a terminal would, for tests that press Ctrl-C on it.

A non-interactive shell starts `&` jobs with SIGINT ignored, and an ignored signal stays ignored
across exec: a test runner launched that way would start `voiceloop run` deaf to Ctrl-C, and a
test of "Ctrl-C ends it cleanly" would hang for reasons that have nothing to do with the code.
"""

from __future__ import annotations

import signal


def interruptible() -> None:
    """A `preexec_fn`: the child gets SIGINT's default disposition, as from a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
