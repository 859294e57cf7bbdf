"""`voiceloop calibrate`: play a chirp, find it in the mic, save the delay the echo canceller
needs (see voiceloop/audio/calibration.py).

Only typer is imported at module level: `voiceloop --help` must stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voiceloop.cli.options import ConfigOption

REAL_BACKENDS = ("sounddevice", "pyaudio")


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)


def calibrate(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    input_device: Annotated[
        str | None,
        typer.Option("--input", "-i", help="Mic: index or part of a name (default: audio.input_device)."),
    ] = None,
    output_device: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="Speaker: index or part of a name (default: audio.output_device)."
        ),
    ] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="sounddevice or pyaudio.")] = None,
    save: Annotated[
        bool, typer.Option("--save/--no-save", help="Save the delay for `voiceloop run`.")
    ] = True,
    save_to: Annotated[Path | None, typer.Option("--save-to", help="Another calibration file.")] = None,
    drift_s: Annotated[
        float | None,
        typer.Option(
            "--drift-s",
            min=5.0,
            help="Also measure the speaker/mic clock drift (ppm) over chirps this many seconds long (30: ±2 ppm).",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Play a chirp, record it, report the round-trip delay and echo level, and save the delay."""
    import asyncio
    import json

    from rich.console import Console

    from voiceloop.audio.base import AudioDeviceError
    from voiceloop.audio.calibration import CalibrationError, calibration_path, save_calibration
    from voiceloop.audio.calibration import calibrate as measure
    from voiceloop.build import build_adapter
    from voiceloop.cli.app import fail, load

    settings = load(config)
    chosen = backend or (settings.audio.backend if settings.audio.backend in REAL_BACKENDS else "sounddevice")
    if chosen not in REAL_BACKENDS:
        fail(f"--backend {chosen}: choose one of {', '.join(REAL_BACKENDS)}")
    console = Console(stderr=True, highlight=False)
    try:
        device = build_adapter(
            settings, "audio", chosen, input_device=input_device, output_device=output_device
        )
        if not as_json:
            what = "three chirps" if drift_s is None else f"chirps for {drift_s:g} s"
            console.print(f"[dim]•[/] playing {what} through {device.name} …")
        result = asyncio.run(measure(device, drift_s=drift_s))
    except (AudioDeviceError, CalibrationError) as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    path = save_calibration(result, settings, save_to or calibration_path()) if save else None
    if as_json:
        typer.echo(json.dumps(result.summary()))
        if path is not None:
            console.print(f"saved to {path}")
        return
    out = Console(highlight=False)
    out.print(
        f"delay [bold]{result.delay_ms:.1f} ms[/] (output to input, {result.input} ← {result.output}, "
        f"{result.sample_rate} Hz; per chirp {', '.join(f'{d:.1f}' for d in result.per_chirp_ms)})"
    )
    out.print(
        f"echo level [bold]{result.echo_level_db:+.1f} dB[/] of what was played; mic noise {result.noise_dbfs:.0f} dBFS"
    )
    if drift_s is not None:
        drift = (
            "not measured: too few clear chirps"
            if result.drift_ppm is None
            else f"{result.drift_ppm:+.1f} ppm"
        )
        out.print(f"clock drift (speaker against mic) [bold]{drift}[/]")
    if result.portaudio_delay_ms is not None:
        out.print(f"[dim]PortAudio's timestamps said {result.portaudio_delay_ms:.1f} ms[/]")
    if path is not None:
        drift = "" if result.drift_ppm is None else " and starts its drift compensation from the drift"
        out.print(f"saved to {path}: `voiceloop run` aligns the echo canceller with it{drift}")
