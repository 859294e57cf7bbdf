"""A plain, non-editable install works: the wheel carries the profiles, the scripts and the web
page, and `voiceloop` finds them from outside the source tree (issue 20: `configs/` lived beside
the package, so `voiceloop demo` after `pip install .` could not find `offline`).

Offline: the wheel is built with the setuptools already installed (--no-build-isolation) and
installed with --no-deps into a fresh venv that sees this environment's packages through a .pth
line, so nothing is downloaded and the source tree's voiceloop cannot shadow the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(
    *command: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources, so no build/ or egg-info lands in the checkout."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "voiceloop", source / "voiceloop", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheels")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", out, source, cwd=source)
    (built,) = out.glob("voiceloop-*.whl")
    return built


def test_the_wheel_carries_the_profiles_scripts_and_web_page(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"voiceloop/configs/{path.name}" for path in (ROOT / "voiceloop" / "configs").glob("*.toml")}
    assert {"voiceloop/configs/offline.toml", "voiceloop/configs/default.toml"} <= shipped <= names
    assert "voiceloop/server/static/index.html" in names


def test_an_installed_wheel_runs_from_outside_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--python", python]
    run(*pip, "install", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    # The dependencies come from this environment, after the venv's own site-packages.
    (site,) = (venv / "lib").glob("python*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200"}
    where = run(python, "-c", "import voiceloop; print(voiceloop.__file__)", cwd=elsewhere, env=env)
    assert Path(where.stdout.strip()).is_relative_to(site)

    helped = run(venv / "bin" / "voiceloop", "demo", "--help", cwd=elsewhere, env=env)
    assert "virtual room" in helped.stdout
    shown = run(venv / "bin" / "voiceloop", "config", "show", "-c", "offline", cwd=elsewhere, env=env)
    assert tomllib.loads(shown.stdout)["asr"]["name"] == "pocketsphinx"
    script = run(
        python,
        "-c",
        "from voiceloop.config.settings import CONFIGS_DIR as d; "
        "from voiceloop.audio.script import load_script; print(len(load_script(d / 'demo-script.toml').turns))",
        cwd=elsewhere,
        env=env,
    )
    assert int(script.stdout) > 0
