"""The command line as a user meets it: the demo's table and report, and the doctor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voiceloop.testing.llm_server import unused_port

VOICELOOP = [sys.executable, "-m", "voiceloop"]


@pytest.mark.slow
def test_the_demo_runs_the_scripted_conversation_and_writes_its_report(tmp_path: Path):
    report_path = tmp_path / "report.json"
    env_endpoint = f"http://127.0.0.1:{unused_port()}/v1"  # nothing listens: the demo must say so
    result = subprocess.run(
        [*VOICELOOP, "demo", "--report", str(report_path), "--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env={"VOICELOOP_LLM__BASE_URL": env_endpoint, "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "echo backend" in result.stdout and "not answering" in result.stdout
    assert "voiceloop demo" in result.stdout  # the table's title

    report = json.loads(report_path.read_text())
    assert set(report) >= {"turns", "self_transcriptions", "barge_ins", "errors"}
    assert len(report["turns"]) >= 3
    for entry in report["turns"]:
        assert set(entry) >= {"expected", "transcript", "reply", "interrupted", "timings_ms"}
        assert set(entry["timings_ms"]) == {
            "voice_to_voice",
            "endpoint",
            "asr",
            "llm_ttft",
            "tts_first_audio",
        }
    assert report["word_error_rate"] <= 0.2
    assert report["self_transcriptions"] == 0
    assert report["barge_ins"] >= 1 and any(entry["interrupted"] for entry in report["turns"])
    answered = [e for e in report["turns"] if not e["interrupted"]]
    assert all(e["reply"] == f"You said: {e['transcript']}." for e in answered)

    session = next((tmp_path / "runs").iterdir())
    assert {p.name for p in session.iterdir()} >= {"session.jsonl", "conversation.wav", "report.json"}


def test_doctor_reports_each_part_and_fails_on_an_unreachable_endpoint():
    result = subprocess.run(
        [*VOICELOOP, "doctor"],
        capture_output=True,
        text=True,
        env={
            "VOICELOOP_LLM__BASE_URL": f"http://127.0.0.1:{unused_port()}/v1",
            "PATH": "/usr/bin:/bin",
            "COLUMNS": "200",
        },
        timeout=120,
    )
    assert result.returncode == 1
    for line in (
        "package pocketsphinx",
        "asr adapter 'pocketsphinx'",
        "tts adapter 'espeak'",
        "turn ending",
        "CUDA",
    ):
        assert line in result.stdout
    assert "cannot reach the language model" in result.stdout
    assert "1 check(s) failed" in result.stdout
