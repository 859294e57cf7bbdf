"""No import cycles among voiceloop's modules (scripts/check_import_cycles.py), and the check
itself finds one when there is one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location(
        "check_import_cycles", ROOT / "scripts" / "check_import_cycles.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_voiceloop_has_no_import_cycles():
    checker = _checker()
    assert checker.cycles(checker.import_graph(ROOT)) == []


def test_a_lazy_import_that_closes_a_loop_is_found(tmp_path: Path):
    package = tmp_path / "voiceloop"
    (package / "tts").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "tts" / "__init__.py").write_text("")
    (package / "tts" / "edge.py").write_text("from voiceloop.tts.fallback import PartialSpeech\n")
    (package / "tts" / "fallback.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import voiceloop.tts.base\n"
        "def wrap():\n    from voiceloop.tts.edge import espeak_voice_for\n"
    )
    checker = _checker()
    assert checker.cycles(checker.import_graph(tmp_path)) == [
        ["voiceloop.tts.edge", "voiceloop.tts.fallback"]
    ]
