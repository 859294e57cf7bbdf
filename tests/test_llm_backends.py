"""LLM backends by voice: profiles, switching by a spoken command, per-backend metrics, the
side-by-side bench, and keys that never leak. Real `openai` client, real local servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import reply_for, script
from voiceloop.config import ConfigError, load_settings
from voiceloop.demo import run_demo
from voiceloop.llm.backends import BackendSet, aliases, resolve
from voiceloop.llm.bench import run_bench, write_reports
from voiceloop.llm.commands import SwitchBackend, WhichModel, parse_command
from voiceloop.session.log import read_session
from voiceloop.testing.llm_server import Fault, LlmServer

SECRET = "sk-do-not-leak-4242"


def with_backends(settings, fast: LlmServer, slow: LlmServer):
    settings.llm.backends = {
        "fast": {"base_url": fast.base_url, "model": "fast-model", "aliases": ["quick"]},
        "slow": {
            "base_url": slow.base_url,
            "model": "slow-model",
            "api_key_env": "SLOW_KEY",
            "temperature": 0.1,
        },
    }
    settings.llm.default = "fast"
    return settings


@pytest.fixture
def servers():
    with (
        LlmServer(reply=reply_for, first_token_delay_s=0.01, token_interval_s=0.003) as fast,
        LlmServer(reply=reply_for, first_token_delay_s=0.35, token_interval_s=0.02) as slow,
    ):
        yield fast, slow


@pytest.fixture
def settings(tmp_path: Path, servers, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLOW_KEY", SECRET)
    base = load_settings("offline")
    base.log.dir = tmp_path / "runs"
    base.llm.fallback_to_echo = False
    base.asr.pocketsphinx.phrases = [
        *base.asr.pocketsphinx.phrases,
        "switch to slow",
        "switch to quick",
        "which model are you",
    ]
    return with_backends(base, *servers)


def test_a_profile_inherits_from_llm_and_overrides_what_it_sets(settings):
    slow = resolve(settings, "slow").llm
    assert (slow.model, slow.temperature, slow.max_tokens) == ("slow-model", 0.1, settings.llm.max_tokens)
    assert slow.api_key.get_secret_value() == SECRET  # from the environment variable it names
    assert aliases(settings)["quick"] == "fast"


def test_unknown_profiles_and_missing_key_variables_are_one_line_errors(settings, monkeypatch):
    with pytest.raises(ConfigError, match=r"no LLM backend named 'medium' \(known: fast, slow\)"):
        resolve(settings, "medium")
    monkeypatch.delenv("SLOW_KEY")
    with pytest.raises(ConfigError, match="environment variable SLOW_KEY is not set"):
        resolve(settings, "slow")


@pytest.mark.parametrize(
    ("said", "command"),
    [
        ("switch to slow", SwitchBackend("slow", "slow")),
        ("Switch to the slow one.", SwitchBackend("slow", "the slow one")),
        ("switch to quick", SwitchBackend("fast", "quick")),
        ("切换到 slow", SwitchBackend("slow", "slow")),
        ("switch to banana", SwitchBackend(None, "banana")),
        ("which model are you?", WhichModel()),
        ("你是什么模型", WhichModel()),
        ("what time is it", None),
        ("use the timer", None),
    ],
)
def test_spoken_commands_are_recognised_forgivingly(settings, said, command):
    llm = settings.llm
    assert parse_command(said, aliases(settings), llm.switch_phrases, llm.which_phrases) == command


def test_the_llm_option_picks_a_profile_or_an_adapter(tmp_path: Path, servers):
    fast, slow = servers
    config = tmp_path / "two.toml"
    config.write_text(
        (Path("voiceloop/configs/offline.toml").read_text())
        + f'\n[llm.backends.fast]\nbase_url = "{fast.base_url}"\nmodel = "m1"\n'
        + f'\n[llm.backends.slow]\nbase_url = "{slow.base_url}"\nmodel = "m2"\n'
    )
    shown = subprocess.run(
        [sys.executable, "-m", "voiceloop", "config", "show", "-c", str(config)],
        capture_output=True,
        text=True,
    )
    assert "[llm.backends.slow]" in shown.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "voiceloop", "demo", "-c", str(config), "--llm", "medium"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no such backend profile or adapter (known: fast, slow" in bad.stderr


@pytest.mark.slow
async def test_a_spoken_switch_moves_the_next_turn_to_the_other_backend(settings, servers):
    fast, slow = servers
    user = script(
        {"say": "what time is it", "pause_ms": 400},
        {"say": "switch to slow"},
        {"say": "tell me a joke"},
        {"say": "which model are you"},
    )
    result = await run_demo(settings, user, say=lambda _: None)
    turns = {t.transcript: t for t in result.turns}
    assert [t.transcript for t in result.turns] == [
        "what time is it",
        "switch to slow",
        "tell me a joke",
        "which model are you",
    ]
    assert (
        turns["switch to slow"].heard_text == "" and "Switched to slow" in turns["switch to slow"].reply_text
    )
    assert [r.messages[-1]["content"] for r in fast.requests] == ["what time is it"]
    assert [r.messages[-1]["content"] for r in slow.requests] == ["tell me a joke"]
    assert turns["which model are you"].reply_text == "This is slow, running slow-model."
    assert turns["tell me a joke"].backend == "slow" and turns["what time is it"].backend == "fast"

    log = read_session(result.session_dir / "session.jsonl")
    assert any(line["event"] == "backend_switch" and line["backend"] == "slow" for line in log)
    answered = [line for line in log if line["event"] == "turn" and line["transcript"] == "tell me a joke"][0]
    assert answered["timings_ms"]["llm_ttft"] > 300 and answered["tokens_per_s"] > 0
    assert SECRET not in (result.session_dir / "session.jsonl").read_text()


@pytest.mark.slow
async def test_the_bench_ranks_backends_by_time_to_first_token_and_keeps_keys_out(settings, tmp_path: Path):
    user = script({"say": "what time is it", "pause_ms": 400}, {"say": "tell me a joke"})
    # Medians of three rounds, as the bench is meant to be read: one round each lost its order
    # once in CI at load 6-7 (fast 482 ms, slow 385 ms: one stall of the machine, not the bench).
    report = await run_bench(settings, ["slow", "fast"], user, repeat=3)
    fast, slow = report["backends"]["fast"], report["backends"]["slow"]
    assert fast["ttft_ms"]["median"] < slow["ttft_ms"]["median"]
    assert fast["voice_to_voice_ms"]["median"] < slow["voice_to_voice_ms"]["median"]
    assert fast["errors"] == 0 and len(fast["replies"]) == 2 * 3  # two turns, three rounds
    assert fast["replies"][1].startswith("Sure thing, you asked me: tell me a joke")
    json_path, html_path = write_reports(report, tmp_path / "bench.json")
    data = json.loads(json_path.read_text())
    assert set(data["backends"]["fast"]) >= {
        "voice_to_voice_ms",
        "ttft_ms",
        "tokens_per_s",
        "errors",
        "replies",
    }
    page = html_path.read_text()
    assert "data:image/png;base64," in page and "<td>fast</td>" in page
    for text in (json_path.read_text(), page):
        assert SECRET not in text


@pytest.mark.slow
async def test_backend_faults_are_said_and_the_session_goes_on(settings, servers):
    fast, _ = servers
    fast.fail_next(Fault(status=401), Fault(status=404))
    user = script(
        {"say": "what time is it", "pause_ms": 400},
        {"say": "tell me a joke"},
        {"say": "thank you"},
    )
    result = await run_demo(settings, user, say=lambda _: None)
    errors = [t.errors for t in result.turns]
    assert "rejected the API key" in errors[0][0]
    assert "model 'fast-model' not found" in errors[1][0]
    assert result.turns[2].outcome == "answered"
    everything = (
        json.dumps([t.errors for t in result.turns]) + (result.session_dir / "session.jsonl").read_text()
    )
    assert SECRET not in everything and "sk-" not in everything


def test_config_show_masks_profile_keys(tmp_path: Path):
    config = tmp_path / "keys.toml"
    config.write_text(
        f'[llm.backends.cloud]\nbase_url = "https://api.example.com/v1"\napi_key = "{SECRET}"\n'
    )
    shown = subprocess.run(
        [sys.executable, "-m", "voiceloop", "config", "show", "-c", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert shown.returncode == 0 and SECRET not in shown.stdout and "**********" in shown.stdout


def test_a_backend_set_builds_each_profile_once_and_switches(settings):
    backends = BackendSet(settings)
    assert backends.active == "fast" and backends.model_name == "fast-model"
    backends.switch("slow")
    assert backends.active == "slow" and backends.description.startswith("slow: openai slow-model")
    with pytest.raises(ConfigError):
        backends.switch("nope")
    assert backends.active == "slow"
