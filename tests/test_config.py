"""Config: profiles, environment overrides, secrets, and one-line errors naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voiceloop.config import ConfigError, load_settings

VOICELOOP = [sys.executable, "-m", "voiceloop"]


def test_the_offline_profile_is_the_embedded_stack():
    settings = load_settings("offline")
    assert (settings.asr.name, settings.vad.name, settings.tts.name) == ("pocketsphinx", "silero", "espeak")
    assert "what time is it" in settings.asr.phrases


def test_the_default_profile_is_the_mission_stack():
    settings = load_settings("default")
    assert (settings.asr.name, settings.tts.name, settings.llm.name) == ("paraformer", "edge", "openai")


def test_environment_variables_override_the_profile(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VOICELOOP_LLM__MODEL", "qwen3:8b")
    monkeypatch.setenv("VOICELOOP_VAD__STOP_MS", "320")
    settings = load_settings("offline")
    assert settings.llm.model == "qwen3:8b" and settings.vad.stop_ms == 320


def test_an_unknown_key_is_one_line_naming_it(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[asr]\nnmae = "pocketsphinx"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(bad)
    assert str(caught.value) == f"{bad}: unknown config key 'asr.nmae'"


def test_a_bad_value_names_the_key_and_the_value(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[vad]\nstop_ms = -5\n")
    with pytest.raises(ConfigError, match=r"bad value for 'vad.stop_ms'.*\(got -5\)"):
        load_settings(bad)


def test_broken_toml_and_missing_files_are_reported_plainly(tmp_path: Path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[asr\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)
    with pytest.raises(ConfigError, match="config file not found: nowhere"):
        load_settings("nowhere")


def test_config_show_masks_the_api_key(monkeypatch: pytest.MonkeyPatch):
    env = {"VOICELOOP_LLM__API_KEY": "sk-very-secret-123", "PATH": "/usr/bin:/bin"}
    shown = subprocess.run(
        [*VOICELOOP, "config", "show", "-c", "offline"], capture_output=True, text=True, env=env
    )
    assert shown.returncode == 0, shown.stderr
    assert "sk-very-secret-123" not in shown.stdout
    assert 'api_key = "**********"' in shown.stdout
    assert 'name = "pocketsphinx"' in shown.stdout


def test_config_show_with_a_typo_is_an_error_line_not_a_traceback(tmp_path: Path):
    bad = tmp_path / "typo.toml"
    bad.write_text('[tts]\nvoise = "en-us"\n')
    shown = subprocess.run([*VOICELOOP, "config", "show", "-c", str(bad)], capture_output=True, text=True)
    assert shown.returncode == 2
    assert "unknown config key 'tts.voise'" in shown.stderr
    assert "Traceback" not in shown.stderr + shown.stdout
