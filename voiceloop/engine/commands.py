"""Spoken commands the loop answers itself, from config, with no LLM call: "switch to …"
moves the conversation to another backend profile, "which model are you" says which is on."""

from __future__ import annotations

from dataclasses import dataclass

from voiceloop.config import Settings
from voiceloop.errors import one_line
from voiceloop.llm.backends import BackendSet, aliases, describe_for_speech
from voiceloop.llm.base import ChatModel
from voiceloop.llm.commands import Command, WhichModel, parse_command


@dataclass(frozen=True)
class CommandAnswer:
    text: str  # what the assistant says (never part of the history)
    switched_to: str | None = None  # the backend now answering, when a switch happened


def command_in(text: str, settings: Settings, llm: ChatModel) -> Command | None:
    llm_cfg = settings.llm
    names = aliases(settings) if isinstance(llm, BackendSet) else {}
    return parse_command(text, names, llm_cfg.switch_phrases, llm_cfg.which_phrases)


def answer_command(command: Command, llm: ChatModel) -> CommandAnswer:
    if isinstance(command, WhichModel):
        return CommandAnswer(describe_for_speech(llm))
    if command.name is None:
        known = ", ".join(llm.names) if isinstance(llm, BackendSet) else llm.name
        return CommandAnswer(f"I don't know a backend called {command.heard}. I know {known}.")
    if not isinstance(llm, BackendSet):
        return CommandAnswer(f"Only {llm.name} is configured here.")
    try:
        llm.switch(command.name)
    except Exception as exc:  # a profile that cannot be built: say so, keep the old one
        return CommandAnswer(f"I could not switch to {command.name}: {one_line(exc)}")
    return CommandAnswer(f"Switched to {command.name}. {llm.model_name} is answering now.", command.name)
