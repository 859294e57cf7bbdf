"""Options that several commands take, declared once so their flags and help stay alike.

Only typer is imported here: `voiceloop --help` must stay fast."""

from __future__ import annotations

from typing import Annotated

import typer

ConfigOption = Annotated[
    str | None,
    typer.Option("--config", "-c", help="A TOML file, or a profile name from configs/ (offline, default)."),
]
LlmOption = Annotated[
    str | None,
    typer.Option("--llm", help="A backend profile from \\[llm.backends], or an adapter (openai, echo)."),
]
AsrOption = Annotated[
    str | None, typer.Option("--asr", help="Recogniser: paraformer, qwen3, pocketsphinx, openai.")
]
