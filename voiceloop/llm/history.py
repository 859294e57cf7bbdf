"""Conversation memory: the system prompt plus the last N exchanges, as actually heard.

The assistant's side of each exchange is what was played, not what the LLM wrote: after a
barge-in the model must not believe it said things the user never heard.
"""

from __future__ import annotations

from collections import deque

from voiceloop.llm.base import ChatMessage


class ConversationHistory:
    def __init__(self, system_prompt: str, max_exchanges: int = 8) -> None:
        self.system_prompt = system_prompt
        self._exchanges: deque[tuple[str, str]] = deque(maxlen=max(max_exchanges, 0) or None)
        self._keep = max_exchanges > 0

    def messages_for(self, user_text: str) -> list[ChatMessage]:
        messages = [ChatMessage("system", self.system_prompt)] if self.system_prompt else []
        for user, assistant in self._exchanges:
            messages += [ChatMessage("user", user), ChatMessage("assistant", assistant)]
        messages.append(ChatMessage("user", user_text))
        return messages

    def commit(self, user_text: str, heard_reply: str) -> None:
        """Records an exchange; one the user heard none of is kept out entirely."""
        if self._keep and user_text.strip() and heard_reply.strip():
            self._exchanges.append((user_text.strip(), heard_reply.strip()))

    @property
    def exchanges(self) -> list[tuple[str, str]]:
        return list(self._exchanges)
