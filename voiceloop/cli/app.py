"""The `voiceloop` command line.

Heavy imports (numpy, onnxruntime, the adapters) happen inside each command, never at module
import: `voiceloop --help` has to answer in well under a second.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from voiceloop.cli.options import (
    CONFIG_ENV,
    DEFAULT_PROFILE,
    OFFLINE_PROFILE,
    ConfigOption,
    LlmOption,
    OfflineConfigOption,
)
from voiceloop.config.settings import ConfigError

app = typer.Typer(
    name="voiceloop",
    help="A voice-assistant loop that listens while it speaks, cancels its own echo, and is fast.\n\n"
    "Settings: -c PROFILE|FILE; without it $VOICELOOP_CONFIG if set, else the 'default' profile "
    "(demo, bench and doctor: the 'offline' profile, so they work on any machine).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def fail(message: str, code: int = 2) -> NoReturn:
    from rich.console import Console

    from voiceloop.cli.messages import error_line

    # soft_wrap: a command in the message (e.g. how to download a model) must stay copyable.
    Console(stderr=True).print(error_line(message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load(  # noqa: ANN201
    config: str | None,
    fallback: str = DEFAULT_PROFILE,
    llm: str | None = None,
    overrides: dict[str, Any] | None = None,
):
    """The settings, with a command's flags as `overrides` (sections as dicts, see load_settings).

    `config` is the command's -c; without it $VOICELOOP_CONFIG, else the `fallback` profile
    (the rule each --help states, voiceloop/cli/options.py)."""
    import os

    from voiceloop.config import load_settings

    profile = config or os.environ.get(CONFIG_ENV) or fallback
    try:
        settings = load_settings(profile, **(overrides or {}))
        if llm is None:
            return settings
        return load_settings(profile, replacing=llm_choice(settings, llm), **(overrides or {}))
    except ConfigError as exc:
        fail(str(exc))


def llm_choice(settings, llm: str) -> dict[str, Any]:  # noqa: ANN001
    """`--llm NAME`, as what it replaces in the loaded settings: a backend profile if one has
    that name (the session starts with it), else an adapter on [llm] itself (profiles set aside)."""
    from voiceloop.registry import available

    if llm in settings.llm.backends:
        return {"llm": {"default": llm}}
    if llm in available("llm"):
        return {"llm": {"name": llm, "backends": {}, "default": None}}
    known = ", ".join([*settings.llm.backends, *available("llm")])
    raise ConfigError(f"--llm {llm}: no such backend profile or adapter (known: {known})")


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective config (profile + VOICELOOP_... overrides), secrets masked.

    The output is TOML that reads back (save it as a profile); colours only on a terminal."""
    from voiceloop.config.toml_text import to_toml

    text = to_toml(load(config).masked())
    if not sys.stdout.isatty():
        sys.stdout.write(text)  # piped: plain text, no line ever wrapped
        return
    from rich.console import Console
    from rich.syntax import Syntax

    Console().print(Syntax(text, "toml", theme="ansi_dark", background_color="default"), soft_wrap=True)


@app.command()
def demo(
    config: OfflineConfigOption = None,
    script: Annotated[Path | None, typer.Option(help="The scripted user (TOML).")] = None,
    report: Annotated[Path | None, typer.Option(help="Also write the JSON report here.")] = None,
    out: Annotated[Path | None, typer.Option(help="Where session folders go (default runs/).")] = None,
    llm: LlmOption = None,
) -> None:
    """Run a scripted spoken conversation in the virtual room, offline, and report on it."""
    import asyncio
    import json

    from voiceloop.audio.script import load_script
    from voiceloop.cli.show import DemoConsole
    from voiceloop.config.settings import CONFIGS_DIR
    from voiceloop.demo import run_demo

    settings = load(config, OFFLINE_PROFILE, llm, {"log": {"dir": out}} if out is not None else None)
    try:
        user_script = load_script(script or CONFIGS_DIR / "demo-script.toml")
    except ConfigError as exc:
        fail(str(exc))
    console = DemoConsole(settings)
    try:
        result = asyncio.run(run_demo(settings, user_script, say=console.note, observer=console.observer()))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:  # an adapter that cannot load: one clear line, not a traceback
        fail(f"{type(exc).__name__}: {exc}", 1)
    console.summary(result)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result.report, indent=2, ensure_ascii=False), encoding="utf-8")
        console.note(f"report: {report}")


@app.command()
def doctor(config: OfflineConfigOption = None, llm: LlmOption = None) -> None:
    """Say what is installed, which adapters load, whether the LLM answers, devices, CUDA."""
    from voiceloop.cli.doctor import run_doctor

    settings = load(config, OFFLINE_PROFILE, llm)
    sys.exit(run_doctor(settings))


# Commands that live in their own modules (voiceloop/cli/<name>.py), each exposing
# `register(app)`. Those modules import only typer at the top, so --help stays fast.
COMMAND_MODULES = ("say", "voices", "transcribe", "models", "devices", "calibrate", "run", "bench", "serve")


def _register_command_modules() -> None:
    import importlib

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"voiceloop.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"voiceloop.cli.{name}":
                continue  # not built yet
            raise
        module.register(app)


_register_command_modules()


def main() -> None:
    app()
