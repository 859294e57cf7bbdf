"""Where `voiceloop calibrate` keeps a real device's measured delay, and reading it back.

A layer of the config, below the profile and the environment: `load_settings` fills
`[aec] delay_ms` from it for a real device when neither set it. The virtual room ignores it:
there `aec.delay_ms` describes the room, and a real device's delay would misalign the demo's
canceller. Standard library only, so loading settings never imports the audio code that
measures it (`voiceloop.audio.calibration`).
"""

from __future__ import annotations

import os
from pathlib import Path

CALIBRATION_ENV = "VOICELOOP_CALIBRATION"
VIRTUAL_BACKENDS = ("virtual",)


def calibration_path() -> Path:
    """$VOICELOOP_CALIBRATION, else $XDG_CONFIG_HOME/voiceloop/calibration.toml (~/.config)."""
    if explicit := os.environ.get(CALIBRATION_ENV):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "voiceloop" / "calibration.toml"


def read_calibration(path: Path | None = None) -> float | None:
    """The saved delay in ms, or None (no file, or one that does not say)."""
    import tomllib

    path = path or calibration_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    value = data.get("aec", {}).get("delay_ms")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def calibrated_delay_ms(backend: str, configured_ms: float | None) -> float | None:
    """The delay a device should use: the configured one, else (real devices only) the saved one."""
    if configured_ms is not None or backend in VIRTUAL_BACKENDS:
        return configured_ms
    return read_calibration()
