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
    assert "what time is it" in settings.asr.pocketsphinx.phrases


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


def test_an_unknown_key_in_an_adapter_table_is_one_line_naming_it(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[asr.paraformer]\nbogus = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(bad)
    assert str(caught.value) == f"{bad}: unknown config key 'asr.paraformer.bogus'"


def test_a_key_of_the_old_shape_says_where_it_moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    old = tmp_path / "old.toml"
    old.write_text('[asr]\nname = "paraformer"\nmodel = "paraformer-zh"\n[aec]\nfilter_ms = 128\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(old)
    assert str(caught.value).splitlines() == [
        f"{old}: unknown config key 'aec.filter_ms': it moved to 'aec.speex.filter_ms'",
        f"{old}: unknown config key 'asr.model': it moved to 'asr.paraformer.model'",
    ]
    monkeypatch.setenv("VOICELOOP_TTS__RATE_WPM", "200")
    with pytest.raises(
        ConfigError, match=r"^unknown config key 'tts.rate_wpm': it moved to 'tts.espeak.rate_wpm'$"
    ):
        load_settings()


def test_fallback_is_a_key_of_tts_not_a_voice_of_its_own(tmp_path: Path):
    old = tmp_path / "old.toml"
    old.write_text('[tts]\nname = "fallback"\nprimary = "edge"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(old)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2 and "tts.name = 'fallback' is gone" in lines[0]
    assert (
        lines[1]
        == f"{old}: unknown config key 'tts.primary': the first voice is tts.name, the second tts.fallback"
    )


def test_environment_variables_reach_an_adapter_table(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VOICELOOP_ASR__PARAFORMER__MODEL", "/models/seaco")
    monkeypatch.setenv("VOICELOOP_TTS__EDGE__RATE", "+10%")
    settings = load_settings("default")
    assert settings.asr.paraformer.model == "/models/seaco" and settings.tts.edge.rate == "+10%"
    assert settings.asr.paraformer.vad_model == "fsmn-vad"  # the rest of the table stays


def test_overrides_merge_into_the_profile_without_mutating_afterwards():
    settings = load_settings("default", asr={"name": "openai", "openai": {"base_url": "http://box:8000/v1"}})
    assert (settings.asr.name, settings.asr.language) == ("openai", "zh")
    assert settings.asr.openai.base_url == "http://box:8000/v1"
    assert settings.asr.paraformer.model == "paraformer-zh"


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


def test_replacing_empties_a_table_the_profile_fills(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VOICELOOP_LLM__DEFAULT", "vllm")
    merged = load_settings("default", llm={"backends": {}})
    assert "vllm" in merged.llm.backends  # an override merges into the profile's table
    replaced = load_settings("default", replacing={"llm": {"name": "echo", "backends": {}, "default": None}})
    assert (replaced.llm.name, replaced.llm.backends, replaced.llm.default) == ("echo", {}, None)
    assert replaced.llm.temperature == 0.7 and replaced.tts.name == "edge"  # the rest as loaded


@pytest.mark.parametrize(
    ("residual", "unsure", "pair", "alone", "mic_copy", "reads_echo", "reads_mic"),
    [
        (0.3, 0.2, 0.25, 0.6, 0.5, True, True),  # the profiles: every rule on
        (0.3, 0.0, 0.0, 0.0, 0.0, True, False),  # the residual rule alone reads no mic
        (0.0, 0.2, 0.0, 0.0, 0.0, True, False),  # nor does the unsure rule's floor alone
        (0.0, 0.0, 0.0, 0.0, 0.5, True, True),  # the mic hearing alone still reads both
        (0.0, 0.0, 0.25, 0.0, 0.0, True, True),  # so does the pair rule alone
        (0.0, 0.0, 0.0, 0.6, 0.0, True, True),  # and the mic rule alone
        (0.0, 0.0, 0.0, 0.0, 0.0, False, False),  # no rule reads either: the listener measures nothing
    ],
)
def test_the_listener_is_asked_to_measure_only_what_a_turn_rule_reads(
    residual: float,
    unsure: float,
    pair: float,
    alone: float,
    mic_copy: float,
    reads_echo: bool,
    reads_mic: bool,
):
    turn = load_settings("offline").turn
    turn.echo_coherence, turn.echo_coherence_with_mic, turn.hear_mic_copy = residual, pair, mic_copy
    turn.mic_coherence_alone, turn.unsure_coherence = alone, unsure
    assert (turn.reads_echo_coherence, turn.reads_mic_coherence) == (reads_echo, reads_mic)
