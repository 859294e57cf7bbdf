"""`voiceloop config show` piped into another program: plain TOML that reads back, whatever the
line lengths (rich wrapped it at 80 columns when piped; issue 20)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from voiceloop.config import load_settings

VOICELOOP = [sys.executable, "-m", "voiceloop"]


def without_unset(data: dict) -> dict:
    return {k: without_unset(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("profile", ["default", "offline"])
def test_piped_output_is_toml_that_loads_back_as_the_same_settings(profile: str, tmp_path: Path) -> None:
    long_prompt = "Answer briefly, " * 20 + "and never read markdown aloud: “quoted”, \\ and \t too."
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "80", "VOICELOOP_LLM__SYSTEM_PROMPT": long_prompt}
    shown = subprocess.run(
        [*VOICELOOP, "config", "show", "-c", profile], capture_output=True, text=True, env=env, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "\x1b[" not in shown.stdout  # no colour codes in a pipe
    parsed = tomllib.loads(shown.stdout)
    assert parsed["llm"]["system_prompt"] == long_prompt

    saved = tmp_path / "saved.toml"
    saved.write_text(shown.stdout, encoding="utf-8")
    again = load_settings(saved).masked()
    assert parsed == without_unset(again)
    assert again == load_settings(profile, llm={"system_prompt": long_prompt}).masked()
    # Unset keys are named, as comments: the reader sees they exist, the text still loads.
    asr_table = shown.stdout[shown.stdout.index("[asr]\n") :].split("\n[", 1)[0]
    assert "# streaming_chunk_ms: unset" in asr_table.splitlines()
