"""One adapter from settings, by kind and name, through its registry spec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voiceloop.config.settings import StageSection
from voiceloop.registry import Kind, spec

if TYPE_CHECKING:
    from voiceloop.config import Settings


def build_adapter(settings: Settings, kind: Kind, name: str | None = None, **kwargs: Any) -> Any:
    """The adapter `name` (default: the one `[kind] name` chooses) with its own options table
    and its stage's shared section; `kwargs` go to its factory (a voice asked for, a test's
    callback). Audio backends get the settings: a device reads `[audio]` and `[aec] delay_ms`."""
    if kind == "audio":
        chosen = name or settings.audio.backend
        return spec(kind, chosen).create(None, settings, **kwargs)
    section = getattr(settings, kind)
    chosen = name or section.name
    found = spec(kind, chosen)
    options = section.options_for(chosen) if isinstance(section, StageSection) else None
    return found.create(options, section, **kwargs)
