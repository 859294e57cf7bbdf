"""Options that several commands take, declared once so their flags and help stay alike.

Only typer is imported here: `voiceloop --help` must stay fast."""

from __future__ import annotations

from typing import Annotated

import typer

# Which settings a command uses, one rule for all of them: `-c` if given, else the profile or
# file named by $VOICELOOP_CONFIG, else the command's fallback profile. That fallback is
# `default` (the configured assistant: devices, Paraformer, Edge voice) except for the commands
# that must work on any machine straight after install (demo, bench, doctor), whose fallback is
# `offline` (virtual room, embedded recogniser and voice). Every --help says which.
DEFAULT_PROFILE = "default"
OFFLINE_PROFILE = "offline"
CONFIG_ENV = "VOICELOOP_CONFIG"


def config_help(fallback: str) -> str:
    return (
        "A profile name (default, offline) or a TOML file. "
        f"Without it: ${CONFIG_ENV} if set, else the '{fallback}' profile."
    )


ConfigOption = Annotated[str | None, typer.Option("--config", "-c", help=config_help(DEFAULT_PROFILE))]
OfflineConfigOption = Annotated[str | None, typer.Option("--config", "-c", help=config_help(OFFLINE_PROFILE))]
LlmOption = Annotated[
    str | None,
    typer.Option("--llm", help="A backend profile from \\[llm.backends], or an adapter (openai, echo)."),
]
AsrOption = Annotated[
    str | None, typer.Option("--asr", help="Recogniser: paraformer, qwen3, pocketsphinx, openai.")
]
