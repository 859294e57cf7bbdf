"""Semantic end of turn: given the audio of a turn so far, has the speaker finished?

A silence window alone cannot tell "set a timer for … five minutes" from "stop"; a model that
hears intonation and words can. Providers implement `TurnDetector` (base.py); `smart-turn`
runs Smart Turn v3.2 (smart_turn.py) on Whisper features computed here (features.py) from a
model file fetched once by `voiceloop models download smart-turn` (models.py).
"""

from voiceloop.turn.base import TurnDetector, TurnError, TurnModelMissing, TurnVerdict

__all__ = ["TurnDetector", "TurnError", "TurnModelMissing", "TurnVerdict"]
