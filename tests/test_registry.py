"""Adapters by name, including third-party ones found through entry points."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from voiceloop.build import build_adapter
from voiceloop.config import load_settings
from voiceloop.registry import AdapterNotFound, available


def test_built_in_adapters_are_found_by_name():
    assert {"pocketsphinx"} <= set(available("asr"))
    assert {"openai", "echo"} <= set(available("llm"))
    aec = build_adapter(load_settings("offline"), "aec", "none")
    assert aec.name == "none"


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(AdapterNotFound, match=r"no tts adapter named 'nope' \(known: .*espeak"):
        build_adapter(load_settings("offline"), "tts", "nope")


def _plugin(tmp_path: Path) -> Path:
    """An installed-looking package whose canceller declares its own options."""
    package = tmp_path / "loud_aec"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from pydantic import Field
            from voiceloop.adapter_options import AdapterOptions
            from voiceloop.registry import AdapterSpec

            class Options(AdapterOptions):
                gain: float = Field(2.0, gt=0)

            class Doubler:
                name = "doubler"
                def __init__(self, gain):
                    self.gain = gain
                def process(self, mic_frame, reference_frame):
                    return mic_frame * self.gain
                def reset(self):
                    pass

            def create(options, aec, **kwargs):
                return Doubler(options.gain)

            spec = AdapterSpec("aec", "doubler", create, Options)
            """
        )
    )
    dist = tmp_path / "loud_aec-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: loud-aec\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[voiceloop.adapters]\naec.doubler = loud_aec:spec\n")
    return tmp_path


def _run_with_plugin(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    code = f"import sys; sys.path.insert(0, {str(_plugin(tmp_path))!r})\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_a_third_party_adapter_registers_through_the_entry_point_group(tmp_path: Path):
    result = _run_with_plugin(
        tmp_path,
        """
        import numpy as np
        from voiceloop.config import load_settings
        from voiceloop.build import build_adapter
        aec = build_adapter(load_settings("offline"), "aec", "doubler")
        print(aec.name, float(aec.process(np.ones(160, np.float32), np.zeros(160, np.float32))[0]))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["doubler", "2.0"]


def test_a_third_party_adapter_declares_its_own_options_table(tmp_path: Path):
    (tmp_path / "loud.toml").write_text('[aec]\nname = "doubler"\n[aec.doubler]\ngain = 3.0\n')
    (tmp_path / "typo.toml").write_text("[aec.doubler]\ngian = 3.0\n")
    result = _run_with_plugin(
        tmp_path,
        f"""
        import numpy as np
        from voiceloop.config import ConfigError, load_settings
        from voiceloop.build import build_adapter
        settings = load_settings({str(tmp_path / "loud.toml")!r})
        aec = build_adapter(settings, "aec")
        print(float(aec.process(np.ones(160, np.float32), np.zeros(160, np.float32))[0]))
        try:
            load_settings({str(tmp_path / "typo.toml")!r})
        except ConfigError as exc:
            print(str(exc).split(": ", 1)[1])
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["3.0", "unknown config key 'aec.doubler.gian'"]


def test_every_built_in_table_is_validated_by_its_adapter_s_own_model():
    from voiceloop.config.settings import Settings, StageSection
    from voiceloop.registry import BUILTIN

    for kind, specs in BUILTIN.items():
        section = Settings.model_fields[kind].annotation
        if not (isinstance(section, type) and issubclass(section, StageSection)):
            continue
        for name, spec in specs.items():
            field = section.model_fields.get(name)
            assert field is None or field.annotation is spec.options, (kind, name)


def test_help_imports_nothing_heavy():
    code = "import sys, voiceloop.cli.app; print(sorted(m for m in ('torch','numpy','onnxruntime','openai','funasr') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
    shown = subprocess.run([sys.executable, "-m", "voiceloop", "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "demo" in shown.stdout
