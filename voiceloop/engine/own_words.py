"""The reply's own words, heard back: what the recogniser made of the echo the canceller left.

Where the echo path has just changed (someone walked past the speaker) the canceller leaves
the reply's voice clear for a second or two; silero is sure of it and the reference explains
too little of it to tell it from a user (aec/coherence.py: such echo read 0.19-0.30, users up
to 0.297). A recogniser that writes down what it hears then writes the reply's own words: with
no canceller at all, pocketsphinx without phrases heard the living room's echo as "you" (README,
"The reply's own words"). The assistant knows what it said and when, so held speech whose words
are, in order, the words its speaker sounded while that speech was heard is its own echo,
whatever the acoustics say. A recogniser held to a few phrases forces the echo into one of them
("You said" → "thank you"), which this cannot tell from a user.

A user who says, at that very moment, exactly the words being played (reading along) is taken
for the echo too; the window is the sounding words' own (`PlaybackQueue.words_sounded`), not
the reply's, so a "stop" said over a sentence that holds "stop" earlier still stops it.
"""

from __future__ import annotations

import re

from voiceloop.text.scripts import UNSPACED

# A token is a CJK character (scripts written without spaces: the recogniser and the reply may
# place word boundaries apart) or a run of letters and digits (apostrophes split both alike).
_TOKEN = re.compile(rf"[{UNSPACED}]|[^\W_{UNSPACED}]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def said_by_us(transcript: str, sounded: str) -> bool:
    """True when every word of `transcript` is among `sounded`'s, in a row and in order."""
    heard, said = tokens(transcript), tokens(sounded)
    if not heard:
        return False
    span = len(heard)
    return any(said[index : index + span] == heard for index in range(len(said) - span + 1))
