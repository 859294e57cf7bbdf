"""Conversation memory: what the LLM is told, trimmed to a turn and a token budget."""

from __future__ import annotations

from voiceloop.llm.history import ConversationHistory, estimate_tokens


def test_history_keeps_the_last_exchanges_and_the_system_prompt_first():
    history = ConversationHistory("Be brief.", max_exchanges=2)
    for n in range(4):
        history.commit(f"question {n}", f"answer {n}")
    messages = history.messages_for("question 4")
    assert [m.role for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m.content for m in messages[1:]] == [
        "question 2",
        "answer 2",
        "question 3",
        "answer 3",
        "question 4",
    ]


def test_an_exchange_the_user_heard_nothing_of_is_not_kept():
    history = ConversationHistory("", max_exchanges=4)
    history.commit("hello", "")
    assert [m.content for m in history.messages_for("again")] == ["again"]


def test_old_exchanges_drop_out_when_the_token_budget_is_spent():
    history = ConversationHistory("", max_exchanges=10, max_tokens=30)
    history.commit("an old question " * 5, "an old and long answer " * 5)
    history.commit("recent", "short reply")
    assert [m.content for m in history.messages_for("now")] == ["recent", "short reply", "now"]


def test_token_estimate_counts_chinese_characters_one_each():
    assert estimate_tokens("今天天气很好") == 6
    assert estimate_tokens("hello there") == 3
