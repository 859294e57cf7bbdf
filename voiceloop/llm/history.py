"""Conversation memory: the system prompt plus the last N exchanges, as actually heard.

The assistant's side of each exchange is what was played, not what the LLM wrote: after a
barge-in the model must not believe it said things the user never heard.
"""

from __future__ import annotations

import math
from collections import deque

from voiceloop.llm.base import ChatMessage
from voiceloop.text.scripts import UNSPACED_CHAR


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: a CJK character is about a token, other text about four
    characters a token. Close enough to keep a history inside a context budget."""
    cjk = len(UNSPACED_CHAR.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


class ConversationHistory:
    def __init__(self, system_prompt: str, max_exchanges: int = 8, max_tokens: int = 0) -> None:
        self.system_prompt = system_prompt
        self._exchanges: deque[tuple[str, str]] = deque(maxlen=max(max_exchanges, 0) or None)
        self._keep = max_exchanges > 0
        self.max_tokens = max_tokens  # 0 = no token budget, only the exchange count

    def messages_for(self, user_text: str) -> list[ChatMessage]:
        messages = [ChatMessage("system", self.system_prompt)] if self.system_prompt else []
        for user, assistant in self._within_budget():
            messages += [ChatMessage("user", user), ChatMessage("assistant", assistant)]
        messages.append(ChatMessage("user", user_text))
        return messages

    def _within_budget(self) -> list[tuple[str, str]]:
        """The most recent exchanges whose estimated tokens fit the budget (oldest dropped)."""
        kept: list[tuple[str, str]] = []
        spent = 0
        for user, assistant in reversed(self._exchanges):
            spent += estimate_tokens(user) + estimate_tokens(assistant)
            if self.max_tokens and spent > self.max_tokens:
                break
            kept.append((user, assistant))
        return kept[::-1]

    def commit(self, user_text: str, heard_reply: str) -> None:
        """Records an exchange; one the user heard none of is kept out entirely."""
        if self._keep and user_text.strip() and heard_reply.strip():
            self._exchanges.append((user_text.strip(), heard_reply.strip()))

    @property
    def exchanges(self) -> list[tuple[str, str]]:
        return list(self._exchanges)
