"""The chat-model contract: a message list in, a stream of text deltas out.

Streaming is the only mode because the first spoken piece must start before the reply is
complete; a backend that cannot stream yields its whole reply as one delta.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class LlmError(RuntimeError):
    """A backend failed; the message is short, speakable, and never contains a secret."""


@runtime_checkable
class ChatModel(Protocol):
    # Read-only to callers: a backend set answers with the active backend's name.
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str:  # e.g. "openai qwen2.5 at http://127.0.0.1:11434/v1"
        ...

    def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        """Yields text deltas as they arrive; raises LlmError on failure."""
        ...

    async def check(self) -> str | None:
        """None when the backend answers, else a one-line reason it does not."""
        ...

    async def aclose(self) -> None: ...
