"""The `voiceloop` command line.

Heavy imports (numpy, onnxruntime, the adapters) happen inside each command, never at module
import: `voiceloop --help` has to answer in well under a second.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from voiceloop.cli.options import ConfigOption, LlmOption
from voiceloop.config.settings import ConfigError

app = typer.Typer(
    name="voiceloop",
    help="A voice-assistant loop that listens while it speaks, cancels its own echo, and is fast.",
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
    default_profile: str | None = None,
    llm: str | None = None,
    overrides: dict[str, Any] | None = None,
):
    """The settings, with a command's flags as `overrides` (sections as dicts, see load_settings)."""
    from voiceloop.config import load_settings

    profile = config if config is not None else default_profile
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
    """Print the effective config (profile + VOICELOOP_... overrides), secrets masked."""
    from rich.console import Console
    from rich.syntax import Syntax

    settings = load(config)
    Console().print(
        Syntax(_to_toml(settings.masked()), "toml", theme="ansi_dark", background_color="default")
    )


def _to_toml(data: dict, prefix: str = "") -> str:
    import json

    scalars, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif value is not None:
            scalars.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    out = []
    if scalars:
        if prefix:
            out.append(f"[{prefix}]")
        out.extend(scalars)
        out.append("")
    for key, value in tables:
        out.append(_to_toml(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(out)


@app.command()
def demo(
    config: ConfigOption = None,
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

    settings = load(config, "offline", llm, {"log": {"dir": out}} if out is not None else None)
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
def doctor(config: ConfigOption = None) -> None:
    """Say what is installed, which adapters load, whether the LLM answers, devices, CUDA."""
    from voiceloop.cli.doctor import run_doctor

    settings = load(config, "offline")
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
