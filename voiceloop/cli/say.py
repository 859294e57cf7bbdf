"""`voiceloop say TEXT`: the configured voice says one text, to the speakers or to a file.

Chunks play as they are made, so with Edge the first words start while the rest streams.
Only typer is imported here at module level: `voiceloop --help` must stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from voiceloop.audio.format import SAMPLE_RATE
from voiceloop.cli.options import ConfigOption


def register(app: typer.Typer) -> None:
    app.command("say")(say)


def say(
    text: Annotated[str, typer.Argument(help="What to say.")],
    tts: Annotated[str | None, typer.Option("--tts", help="Voice adapter: espeak, edge, fallback.")] = None,
    voice: Annotated[str | None, typer.Option("--voice", help="Overrides tts.voice.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write a WAV file instead of playing it.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Say TEXT with the configured voice (tts.name), on the default output device or into a WAV."""
    import asyncio

    from rich.console import Console

    from voiceloop.cli.app import fail, load

    chosen = {key: value for key, value in (("name", tts), ("voice", voice)) if value is not None}
    settings = load(config, overrides={"tts": chosen} if chosen else None)
    device = None
    if output is None:
        device, problem = _output_device(settings.audio.output_device)
        if problem is not None:
            fail(f"no audio output device: {problem}. Write the speech to a file instead: -o speech.wav")
    console = Console(stderr=True, highlight=False)
    try:
        audio = asyncio.run(_speak(settings, text, device, console.print))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:  # noqa: BLE001  # an adapter that cannot load or speak: one line
        fail(f"{type(exc).__name__}: {' '.join(str(exc).split())}", 1)
    if audio.size == 0:
        fail("the voice produced no audio", 1)
    seconds = audio.size / SAMPLE_RATE
    if output is not None:
        import soundfile

        output.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(output), audio, SAMPLE_RATE, subtype="PCM_16")
        console.print(f"wrote {output} ({seconds:.2f} s)", soft_wrap=True)


async def _speak(settings: Any, text: str, device: Any, note: Any) -> Any:
    """Synthesizes `text`, playing each chunk as it arrives when `device` is given; returns it all."""
    import asyncio

    import numpy as np

    from voiceloop.build import build_voice
    from voiceloop.tts.fallback import FallbackVoice

    voice = build_voice(settings)
    if isinstance(voice, FallbackVoice):
        voice.notify = lambda message: note(f"[yellow]note:[/] {message}", soft_wrap=True)
    stream = None
    chunks: list[np.ndarray] = []
    # No overall time limit: playing takes as long as the speech, and each voice bounds its
    # own waits (Edge: connect, first-audio and mid-stream timeouts, then the fallback).
    try:
        async for chunk in voice.synthesize(text):
            chunks.append(chunk)
            if device is not None and stream is None:
                stream = _open_stream(device)
            if stream is not None:
                await asyncio.to_thread(stream.write, np.ascontiguousarray(chunk, dtype=np.float32))
    finally:
        await voice.aclose()
        if stream is not None:
            await asyncio.to_thread(_drain, stream)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def _output_device(configured: str | int | None) -> tuple[Any, str | None]:
    """(the device to open, None) or (None, why there is none)."""
    try:
        import sounddevice
    except (ImportError, OSError) as exc:  # not installed, or no PortAudio library
        return None, f"sounddevice cannot be used ({' '.join(str(exc).split())})"
    try:
        if configured is None and not any(d["max_output_channels"] for d in sounddevice.query_devices()):
            return None, "PortAudio finds no device with outputs here"
        info = sounddevice.query_devices(configured, kind="output")
    except Exception as exc:  # noqa: BLE001  # PortAudioError, ValueError: none matching
        return None, " ".join(str(exc).split()) or "none found"
    return (configured if configured is not None else info["index"]), None


def _open_stream(device: Any) -> Any:
    import sounddevice

    stream = sounddevice.OutputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32", device=device)
    stream.start()
    return stream


def _drain(stream: Any) -> None:
    """Lets what was written play out (PortAudio's stop waits for the buffers), then closes."""
    try:
        stream.stop()
    finally:
        stream.close()
