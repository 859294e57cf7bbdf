"""Adapters by name, including third-party ones found through entry points."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from voiceloop.config import load_settings
from voiceloop.registry import AdapterNotFound, available, create


def test_built_in_adapters_are_found_by_name():
    assert {"pocketsphinx"} <= set(available("asr"))
    assert {"openai", "echo"} <= set(available("llm"))
    aec = create("aec", "none", load_settings("offline"))
    assert aec.name == "none"


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(AdapterNotFound, match=r"no tts adapter named 'nope' \(known: .*espeak"):
        create("tts", "nope", load_settings("offline"))


def test_a_third_party_adapter_registers_through_the_entry_point_group(tmp_path: Path):
    package = tmp_path / "loud_aec"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            class Doubler:
                name = "doubler"
                def process(self, mic_frame, reference_frame):
                    return mic_frame * 2
                def reset(self):
                    pass

            def create(settings, **kwargs):
                return Doubler()
            """
        )
    )
    dist = tmp_path / "loud_aec-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: loud-aec\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[voiceloop.adapters]\naec.doubler = loud_aec:create\n")
    code = textwrap.dedent(
        f"""
        import sys; sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np
        from voiceloop.config import load_settings
        from voiceloop.registry import create
        aec = create("aec", "doubler", load_settings("offline"))
        print(aec.name, float(aec.process(np.ones(160, np.float32), np.zeros(160, np.float32))[0]))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["doubler", "2.0"]


def test_help_imports_nothing_heavy():
    code = "import sys, voiceloop.cli.app; print(sorted(m for m in ('torch','numpy','onnxruntime','openai','funasr') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
    shown = subprocess.run([sys.executable, "-m", "voiceloop", "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "demo" in shown.stdout
