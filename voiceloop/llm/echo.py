"""The `echo` backend: an offline stand-in that repeats the last thing the user said.

It lets the whole loop (ASR → chat → TTS, barge-in, history) run with no model server, and it
streams word by word so the engine's first-piece logic sees a realistic stream of small deltas.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from voiceloop.llm.base import ChatMessage

if TYPE_CHECKING:
    from voiceloop.config.settings import LlmSettings

_WORD_TOKEN = re.compile(r"\s*\S+|\s+")


def word_tokens(text: str) -> list[str]:
    """Splits into word-ish tokens that keep their leading space, like an LLM's deltas.

    Concatenating the tokens gives back `text` exactly, so a stream built from them can be
    compared with the whole reply.
    """
    return _WORD_TOKEN.findall(text)


class EchoChat:
    name = "echo"
    description = "echo (offline stand-in: repeats what you said)"

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        for token in word_tokens(echo_reply(messages)):
            yield token
            # Yield to the loop between tokens, as a network stream would, so consumers that
            # race the stream against barge-in get a chance to run.
            await asyncio.sleep(0)

    async def check(self) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


def echo_reply(messages: list[ChatMessage]) -> str:
    said = next((m.content.strip() for m in reversed(messages) if m.role == "user"), "")
    if not said:
        return "You said nothing."
    return f"You said: {said}" + ("" if said[-1] in ".!?" else ".")


def create(options: object, llm: LlmSettings, **kwargs: Any) -> EchoChat:
    return EchoChat()
