"""Which settings a command uses without -c: one rule, stated in every command's --help
(issue 20: commands chose different profiles and no --help said which)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from voiceloop.cli.app import app

ENV = {"COLUMNS": "200", "VOICELOOP_CONFIG": ""}
# The commands that must work on any machine straight after install fall back to `offline`.
OFFLINE_COMMANDS = {("demo",), ("bench",), ("doctor",)}


def commands(command=None, path: tuple[str, ...] = ()):  # noqa: ANN001, ANN201
    command = command or typer.main.get_command(app)
    if not hasattr(command, "commands"):
        yield path
        return
    for name, sub in command.commands.items():
        yield from commands(sub, (*path, name))


ALL = sorted(commands())


def help_text(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env=ENV)
    assert result.exit_code == 0, result.output
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())


def test_every_command_is_found() -> None:
    assert {("serve",), ("transcribe",), ("config", "show"), ("models", "download"), ("demo",)} <= set(ALL)


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_every_help_states_the_rule_and_the_commands_own_fallback(path: tuple[str, ...]) -> None:
    fallback = "offline" if path in OFFLINE_COMMANDS else "default"
    text = help_text(*path)
    assert f"Without it: $VOICELOOP_CONFIG if set, else the '{fallback}' profile." in text


def test_the_top_level_help_states_the_rule() -> None:
    text = help_text()
    assert "without it $VOICELOOP_CONFIG if set, else the 'default' profile" in text
    assert "demo, bench and doctor: the 'offline' profile" in text


def shown_recogniser(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, ["config", "show", *args], env={**ENV, **env})
    assert result.exit_code == 0, result.output
    return re.search(r'\[asr\]\nname = "(\w+)"', result.stdout).group(1)  # type: ignore[union-attr]


def test_without_c_the_environment_then_the_default_profile_decide() -> None:
    assert shown_recogniser({}) == "paraformer"  # the default profile, not the built-in defaults
    assert shown_recogniser({"VOICELOOP_CONFIG": "offline"}) == "pocketsphinx"
    assert shown_recogniser({"VOICELOOP_CONFIG": "offline"}, "-c", "default") == "paraformer"


def test_transcribe_honours_voiceloop_config(tmp_path: Path) -> None:
    """It used to fall back to `default` whatever VOICELOOP_CONFIG said."""
    spoken = tmp_path / "a.wav"
    runner = CliRunner()
    said = runner.invoke(app, ["say", "thank you", "--tts", "espeak", "-o", str(spoken)], env=ENV)
    assert said.exit_code == 0, said.output
    heard = runner.invoke(app, ["transcribe", str(spoken)], env={**ENV, "VOICELOOP_CONFIG": "offline"})
    assert heard.exit_code == 0, heard.output
    assert heard.stdout.strip() == "thank you"
