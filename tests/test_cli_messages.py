"""The command line's table headers and error lines follow the locale: Chinese when
VOICELOOP_LANG / LC_ALL / LC_MESSAGES / LANG say zh, English otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from voiceloop.cli.messages import error_line, language, tr


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8", "LC_ALL": "zh_TW.UTF-8"}, "zh"),
        ({"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),  # LC_ALL, when set, decides
        ({"VOICELOOP_LANG": "en", "LC_ALL": "zh_CN.UTF-8"}, "en"),  # ours first
        ({"VOICELOOP_LANG": "zh-Hans"}, "zh"),
        ({"LANG": ""}, "en"),
    ],
)
def test_the_language_is_the_first_locale_variable_set(environ: dict[str, str], expected: str) -> None:
    assert language(environ) == expected


def test_headers_and_known_error_lines_are_translated_and_the_rest_stays_english() -> None:
    zh = {"VOICELOOP_LANG": "zh"}
    assert tr("size", zh) == "大小" and tr("size", {"LANG": "en_GB"}) == "size"
    assert tr("/tmp/a.wav: no such file", zh) == "/tmp/a.wav：文件不存在"
    assert tr("--backend x: choose one of a, b", zh) == "--backend x：请从 a, b 中选择"
    assert tr("something no table knows", zh) == "something no table knows"
    assert error_line("interrupted", zh) == "[bold red]错误：[/]已中断"
    assert error_line("interrupted", {}) == "[bold red]error:[/] interrupted"


def run_cli(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("VOICELOOP_LANG", "LC_ALL", "LC_MESSAGES", "LANG")
    }
    return subprocess.run(
        [sys.executable, "-m", "voiceloop", *args],
        env={**clean, "COLUMNS": "160", **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_chinese_terminal_gets_chinese_headers_and_error_lines() -> None:
    listing = run_cli("models", "list", LANG="zh_CN.UTF-8")
    assert listing.returncode == 0, listing.stderr
    assert all(word in listing.stdout for word in ("名称", "已缓存", "大小", "说明"))

    missing = run_cli("config", "show", "-c", "no-such-profile", LC_ALL="zh_CN.UTF-8")
    assert missing.returncode == 2
    assert "错误：找不到配置文件：no-such-profile" in missing.stderr

    english = run_cli("config", "show", "-c", "no-such-profile", LANG="en_US.UTF-8")
    assert "error: config file not found: no-such-profile" in english.stderr
