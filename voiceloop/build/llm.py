"""The LLM for a session: the configured backends, or the demo's echo stand-in in their place."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from voiceloop.llm.backends import BackendSet
from voiceloop.registry import spec

if TYPE_CHECKING:
    from voiceloop.config import Settings
    from voiceloop.llm.base import ChatModel


async def choose_llm(
    settings: Settings, say: Callable[[str], None], *, echo_fallback: bool | None = None
) -> ChatModel:
    """The configured backends, if the first answers; else, where allowed (`echo_fallback`,
    default `llm.fallback_to_echo`: the demo's choice, never a real session's), the echo
    stand-in in its place (said plainly)."""
    backends = BackendSet(settings)
    if backends.resolved.llm.name == "echo":
        say("LLM: the echo backend (it repeats what you said; set llm.name to use a real model)")
        return backends
    reason = await backends.check()
    if reason is None:
        say(f"LLM: {backends.description}")
        return backends
    allowed = settings.llm.fallback_to_echo if echo_fallback is None else echo_fallback
    if not allowed:
        say(f"LLM: {backends.description} is not answering ({reason}); turns will report the error")
        return backends
    say(
        f"LLM: {backends.description} is not answering ({reason}), so this demo uses the "
        "echo backend, which replies 'You said: …'. Start an OpenAI-compatible server "
        "(e.g. Ollama) or set llm.base_url to talk to a real model."
    )
    backends.replace_active(spec("llm", "echo").create(None, settings.llm))
    return backends
