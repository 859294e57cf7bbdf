"""Spoken commands the loop answers itself: switching backends, and "which model are you".

Matching is forgiving because ASR is: the phrase's fixed part must be recognised, the name is
matched fuzzily against profile names and aliases ("switch to deep seek" finds `deepseek`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz, process

NAME_CUTOFF = 70
PHRASE_CUTOFF = 85
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class SwitchBackend:
    name: str | None  # None: a switch was asked for, but no backend matched `heard`
    heard: str


@dataclass(frozen=True)
class WhichModel:
    pass


Command = SwitchBackend | WhichModel


def normalise(text: str) -> str:
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def parse_command(
    text: str, names: dict[str, str], switch_phrases: list[str], which_phrases: list[str]
) -> Command | None:
    """`names` maps every spoken name (profile names and aliases) to its profile."""
    said = normalise(text)
    if not said:
        return None
    for phrase in which_phrases:
        if fuzz.ratio(said, normalise(phrase)) >= PHRASE_CUTOFF:
            return WhichModel()
    for phrase in switch_phrases:
        prefix, _, suffix = (normalise(part) for part in phrase.partition("{name}"))
        if not said.startswith(prefix) or (suffix and not said.endswith(suffix)):
            continue
        heard = said[len(prefix) : len(said) - len(suffix) if suffix else None].strip()
        if not heard:
            continue
        spoken = {normalise(alias): profile for alias, profile in names.items()}
        match = process.extractOne(heard, list(spoken), scorer=fuzz.WRatio, score_cutoff=NAME_CUTOFF)
        if match is None:  # spaces dropped: "deep seek" → "deepseek"
            match = process.extractOne(
                heard.replace(" ", ""), list(spoken), scorer=fuzz.ratio, score_cutoff=NAME_CUTOFF
            )
        return SwitchBackend(spoken[match[0]] if match else None, heard)
    return None
