"""Named LLM backends and the one answering now.

A profile (`[llm.backends.NAME]`) overrides the `[llm]` defaults; resolving it yields a
Settings copy whose `llm` section is that profile, so every adapter keeps reading plain
`settings.llm`. The set behaves as a ChatModel itself (it streams from the active backend),
which is what lets a spoken "switch to NAME" change the next turn without the engine knowing
about profiles.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from voiceloop.config.settings import ConfigError
from voiceloop.llm.base import ChatMessage, ChatModel

if TYPE_CHECKING:
    from voiceloop.config import Settings
    from voiceloop.config.settings import LlmSettings

INLINE = "default"  # the profile made of the [llm] section itself, when no backends are named


def profile_names(settings: Settings) -> list[str]:
    return list(settings.llm.backends) or [INLINE]


def resolve(settings: Settings, name: str | None = None) -> Settings:
    """Settings for one backend: its profile applied over [llm]. Raises ConfigError."""
    llm = settings.llm
    name = name or llm.default or (next(iter(llm.backends)) if llm.backends else INLINE)
    if name == INLINE and not llm.backends:
        merged = llm.model_copy()
    elif name in llm.backends:
        overrides = llm.backends[name].model_dump(exclude_none=True, exclude={"aliases"})
        adapter = overrides.pop("adapter", None)
        merged = llm.model_copy(update={**overrides, **({"name": adapter} if adapter else {})})
    else:
        known = ", ".join(profile_names(settings))
        raise ConfigError(f"no LLM backend named '{name}' (known: {known})")
    if merged.api_key_env:
        value = os.environ.get(merged.api_key_env)
        if value is None:
            raise ConfigError(f"backend '{name}': environment variable {merged.api_key_env} is not set")
        merged = merged.model_copy(update={"api_key": SecretStr(value)})
    return settings.model_copy(update={"llm": merged})


def aliases(settings: Settings) -> dict[str, str]:
    """Every spoken name of every backend → its profile name."""
    names = {name: name for name in profile_names(settings)}
    for name, profile in settings.llm.backends.items():
        names.update({alias: name for alias in profile.aliases})
    return names


def build_chat_model(llm: LlmSettings) -> ChatModel:
    """The adapter `llm.name` from one resolved `[llm]` section (a profile applied over it)."""
    from voiceloop.registry import spec

    return spec("llm", llm.name).create(None, llm)


class BackendSet:
    """The configured backends; streams from the active one, switchable between turns."""

    def __init__(self, settings: Settings, first: str | None = None) -> None:
        self._settings = settings
        self._models: dict[str, ChatModel] = {}
        self.active = first or settings.llm.default or profile_names(settings)[0]
        self.resolved = resolve(settings, self.active)  # fail early on a bad default
        self._model(self.active)

    # -- ChatModel ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.active

    @property
    def description(self) -> str:
        return f"{self.active}: {self._model(self.active).description}"

    @property
    def model_name(self) -> str:
        return self.resolved.llm.model if self.resolved.llm.name != "echo" else "echo"

    def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        return self._model(self.active).stream(messages)

    async def check(self) -> str | None:
        return await self._model(self.active).check()

    async def aclose(self) -> None:
        for model in self._models.values():
            await model.aclose()
        self._models.clear()

    # -- switching ------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return profile_names(self._settings)

    def switch(self, name: str) -> None:
        """Makes `name` answer from the next turn on (ConfigError if it cannot be built)."""
        resolved = resolve(self._settings, name)
        self._model(name)
        self.active, self.resolved = name, resolved

    def replace_active(self, model: ChatModel) -> None:
        """Puts a stand-in (the demo's echo backend) in place of the active backend."""
        self._models[self.active] = model

    def _model(self, name: str) -> ChatModel:
        if name not in self._models:
            resolved = resolve(self._settings, name)
            self._models[name] = build_chat_model(resolved.llm)
        return self._models[name]


def describe_for_speech(backends: Any) -> str:
    """What "which model are you" is answered with: from config, not from the model."""
    if isinstance(backends, BackendSet):
        return f"This is {backends.active}, running {backends.model_name}."
    return f"This is {getattr(backends, 'description', backends.name)}."
