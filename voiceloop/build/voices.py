"""The configured voice, with `[tts] fallback` behind it.

Any voice can have any other behind it: the first is `tts.name` speaking `tts.voice`, the
second `tts.fallback` speaking `tts.fallback_voice`, or a voice of its own kind derived from
`tts.voice` (an Edge voice's language for espeak: zh-CN-XiaoxiaoNeural → cmn; Edge maps an
espeak voice to the service's usual voice for it). No fallback, or the same adapter named
twice, leaves the voice unwrapped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from voiceloop.build.adapters import build_adapter
from voiceloop.tts.fallback import FallbackVoice

if TYPE_CHECKING:
    from voiceloop.config import Settings
    from voiceloop.tts.base import SpeechSynthesizer

log = logging.getLogger("voiceloop.tts")


def build_voice(settings: Settings, *, voice: str | None = None, **kwargs: Any) -> SpeechSynthesizer:
    """`voice` (default `tts.voice`) from the configured adapter, wrapped with the fallback
    when one is set; `kwargs` go to the first voice's factory."""
    tts = settings.tts
    chosen = voice or tts.voice
    primary = build_adapter(settings, "tts", **({"voice": chosen} if voice else {}), **kwargs)
    if not tts.fallback or tts.fallback == tts.name:
        return primary
    waits = getattr(primary, "connect_timeout_s", 0.0) + getattr(primary, "first_audio_timeout_s", 0.0)
    if waits >= tts.timeout_s:
        log.warning(
            "%s's connect and first-audio time limits (%g s) leave the fallback no time within "
            "tts.timeout_s (%g s): a stalled service will fail pieces instead",
            tts.name,
            waits,
            tts.timeout_s,
        )
    secondary = build_adapter(
        settings, "tts", tts.fallback, voice=tts.fallback_voice or fallback_voice_for(tts.fallback, chosen)
    )
    return FallbackVoice(primary, secondary, retry_after_s=tts.fallback_retry_s)


def fallback_voice_for(adapter: str, voice: str) -> str:
    """The voice the fallback `adapter` speaks when none is set: espeak's own voice for an Edge
    voice's language; any other adapter is given the first voice's name and maps it itself."""
    if adapter != "espeak":
        return voice
    from voiceloop.tts.edge import espeak_voice_for
    from voiceloop.tts.espeak import list_voices

    return espeak_voice_for(voice, list_voices())
