"""The turn detector `[turn] name` chooses, or None: turns then end on the silence window.

A detector that cannot be built (its model not downloaded, a damaged file) must not stop a
conversation: the loop runs as it did before there was one, and says so in one line naming
the command that fixes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from voiceloop.build.adapters import build_adapter
from voiceloop.turn.base import TurnError

if TYPE_CHECKING:
    from voiceloop.config import Settings
    from voiceloop.turn.base import TurnDetector

log = logging.getLogger("voiceloop")
# Turn endings with no model: the silence window alone, or the transcript's words with it.
NO_DETECTOR = ("none", "words")


def build_turn_detector(settings: Settings, say: Callable[[str], None] | None = None) -> TurnDetector | None:
    if settings.turn.name in NO_DETECTOR:
        return None
    try:
        detector: TurnDetector = build_adapter(settings, "turn")
    except TurnError as exc:
        (say or log.warning)(f"turn detector off, turns end on the silence window: {exc}")
        return None
    return detector
