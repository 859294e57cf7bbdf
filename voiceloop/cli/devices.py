"""`voiceloop devices`: the sound devices PortAudio sees, as `audio.input_device` /
`audio.output_device` name them (an index, or part of a name).

Only typer is imported at module level: `voiceloop --help` must stay fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from voiceloop.cli.messages import tr
from voiceloop.cli.options import ConfigOption

BACKENDS = ("sounddevice", "pyaudio")


def register(app: typer.Typer) -> None:
    app.command("devices")(devices)


def devices(
    backend: Annotated[
        str | None, typer.Option("--backend", help="sounddevice or pyaudio (default: audio.backend).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    config: ConfigOption = None,
) -> None:
    """List audio devices (index, name, host API, channels, default rate), marking the defaults."""
    import json

    from voiceloop.audio.base import AudioDeviceError
    from voiceloop.cli.app import fail, load

    settings = load(config)
    chosen = backend or (settings.audio.backend if settings.audio.backend in BACKENDS else "sounddevice")
    if chosen not in BACKENDS:
        fail(f"--backend {chosen}: choose one of {', '.join(BACKENDS)}")
    try:
        found = list_for(chosen)
    except AudioDeviceError as exc:
        fail(str(exc), 1)
    if not found:
        from voiceloop.audio.devices import no_devices_error

        fail(str(no_devices_error(chosen)), 1)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "index": d.index,
                        "name": d.name,
                        "host_api": d.host_api,
                        "input_channels": d.max_input_channels,
                        "output_channels": d.max_output_channels,
                        "default_samplerate": d.default_samplerate,
                        "default_input": d.default_input,
                        "default_output": d.default_output,
                    }
                    for d in found
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    _print_table(chosen, found)


def list_for(backend: str) -> list:  # list[DeviceInfo]
    if backend == "pyaudio":
        from voiceloop.audio.pyaudio_duplex import list_devices as pyaudio_devices

        return pyaudio_devices()
    from voiceloop.audio.sounddevice_duplex import list_devices as sounddevice_devices
    from voiceloop.audio.sounddevice_duplex import refresh

    refresh()
    return sounddevice_devices()


def _print_table(backend: str, found: list) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"audio devices ({backend})", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column(tr("name"), overflow="fold")
    table.add_column(tr("host API"))
    table.add_column(tr("in"), justify="right")
    table.add_column(tr("out"), justify="right")
    table.add_column(tr("rate"), justify="right")
    table.add_column(tr("default"))
    for d in found:
        marks = [m for m, on in (("input", d.default_input), ("output", d.default_output)) if on]
        table.add_row(
            str(d.index),
            d.name,
            d.host_api,
            str(d.max_input_channels),
            str(d.max_output_channels),
            f"{d.default_samplerate:.0f}",
            "[bold green]" + " + ".join(marks) + "[/]" if marks else "",
        )
    console = Console(highlight=False)
    console.print(table)
    console.print(
        "[dim]Pick one with audio.input_device / audio.output_device (an index, or part of a "
        "name), or `voiceloop run --input NAME --output NAME`.[/]"
    )
