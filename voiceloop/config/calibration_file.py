"""Where `voiceloop calibrate` keeps a real device's measured delay (and, with `--drift-s`, its
speaker/mic clock drift), and reading them back.

A layer of the config, below the profile and the environment: `load_settings` fills
`[aec] delay_ms` and `drift_ppm` from it for a real device where neither set them. The virtual
room ignores it: there `aec.delay_ms` describes the room, and a real device's delay would
misalign the demo's canceller. Standard library only, so loading settings never imports the audio code that
measures it (`voiceloop.audio.calibration`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("voiceloop.config")

CALIBRATION_ENV = "VOICELOOP_CALIBRATION"
VIRTUAL_BACKENDS = ("virtual",)


def calibration_path() -> Path:
    """$VOICELOOP_CALIBRATION, else $XDG_CONFIG_HOME/voiceloop/calibration.toml (~/.config)."""
    if explicit := os.environ.get(CALIBRATION_ENV):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "voiceloop" / "calibration.toml"


CALIBRATED_KEYS = ("delay_ms", "drift_ppm")  # of [aec]


def read_calibration(path: Path | None = None, key: str = "delay_ms") -> float | None:
    """A saved `[aec]` value (the delay in ms, or the drift in ppm), or None (no file, or one
    that does not say)."""
    return saved_aec(path).get(key)


def saved_aec(path: Path | None = None) -> dict[str, float]:
    """Every number the calibration file saves under `[aec]`, read once; empty where there is
    no file or it cannot be read."""
    import tomllib

    path = path or calibration_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log.warning("ignoring the calibration file %s (%s): run `voiceloop calibrate` again", path, exc)
        return {}
    section = data.get("aec", {})
    if not isinstance(section, dict):
        log.warning("ignoring the calibration file %s: no [aec] table; run `voiceloop calibrate` again", path)
        return {}
    numbers = {
        key: float(value)
        for key, value in section.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    if not_numbers := [key for key in CALIBRATED_KEYS if key in section and key not in numbers]:
        log.warning(
            "ignoring %s in the calibration file %s: not a number; run `voiceloop calibrate` again",
            ", ".join(not_numbers),
            path,
        )
    return numbers


def calibrated_aec(backend: str, configured: dict[str, float | None]) -> dict[str, float]:
    """The saved `[aec]` values a device should use where the configured ones are unset (None):
    real devices only; empty where there are none."""
    if backend in VIRTUAL_BACKENDS or all(configured.get(key) is not None for key in CALIBRATED_KEYS):
        return {}
    saved = saved_aec()
    return {key: saved[key] for key in CALIBRATED_KEYS if configured.get(key) is None and key in saved}
