"""`voiceloop transcribe FILES...`: batch transcription with any configured recogniser.

Exit status: 0 every file transcribed; 3 some files failed (partial); 1 none transcribed or the
recogniser could not start; 2 usage or config error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from voiceloop.cli.messages import error_line
from voiceloop.cli.options import AsrOption, ConfigOption

if TYPE_CHECKING:
    from voiceloop.asr.batch import FileResult
    from voiceloop.config import Settings

EXIT_PARTIAL = 3


def register(app: typer.Typer) -> None:
    @app.command()
    def transcribe(
        files: Annotated[
            list[Path], typer.Argument(help="Audio files or folders (any common format and rate).")
        ],
        asr: AsrOption = None,
        asr_model: Annotated[
            str | None, typer.Option("--asr-model", help="Model id (paraformer-zh, iic/...) or local dir.")
        ] = None,
        hotwords: Annotated[
            str | None, typer.Option(help='Words to favour: "a b" (or "a phrase, another" with commas).')
        ] = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="txt, json or srt.")] = "txt",
        out: Annotated[
            Path | None, typer.Option(help="Write <name>.<format> per file here (default: stdout).")
        ] = None,
        language: Annotated[str | None, typer.Option(help="zh, en, ... (openai, pocketsphinx).")] = None,
        device: Annotated[
            str | None, typer.Option(help="auto, cpu, cuda, cuda:N (paraformer, qwen3).")
        ] = None,
        batch: Annotated[int, typer.Option(min=1, help="Files per recognition batch.")] = 8,
        config: ConfigOption = None,
    ) -> None:
        """Transcribe audio files: batched, with a progress bar and a speed summary.

        A corrupt or empty file is reported and skipped; the rest go on.
        """
        from voiceloop.cli.app import fail, load

        if fmt not in ("txt", "json", "srt"):
            fail(f"--format must be txt, json or srt (got {fmt!r})")
        # Flags are overrides to the load, each into the table of the recogniser it belongs to
        # (a profile's paraformer model stays with paraformer when --asr picks another).
        overrides: dict[str, Any] = {}
        if asr is not None:
            overrides["name"] = asr
        if language is not None:
            overrides["language"] = language
        if asr_model is not None:
            chosen = asr or load(config).asr.name
            overrides[chosen] = {"model": asr_model}
        if device is not None:
            on = asr or load(config).asr.name
            overrides.setdefault(on if on == "qwen3" else "paraformer", {})["device"] = device
        settings = load(config, overrides={"asr": overrides} if overrides else None)
        from voiceloop.asr.base import split_hotwords

        words = split_hotwords(hotwords) if hotwords is not None else None
        sys.exit(_run(settings, files, words, fmt, out, batch))


def _run(
    settings: Settings, files: list[Path], hotwords: list[str] | None, fmt: str, out: Path | None, batch: int
) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from voiceloop.asr import batch as batching
    from voiceloop.build import build_adapter
    from voiceloop.cli.app import fail
    from voiceloop.cli.hints import startup_error
    from voiceloop.registry import AdapterNotFound

    err = Console(stderr=True, highlight=False)
    inputs = batching.expand_inputs(files)
    if not inputs:
        fail("no audio files found in " + ", ".join(str(f) for f in files))
    if out is None and fmt == "srt" and len(inputs) > 1:
        fail("several SRT files cannot share stdout: give --out DIR")

    with err.status(f"loading the {settings.asr.name} recogniser…"):
        try:
            recognizer = build_adapter(settings, "asr")
            if hotwords and hasattr(recognizer, "check_hotwords"):
                recognizer.check_hotwords(hotwords)  # once, not as an error per file
            recognizer.warm_up()
        except AdapterNotFound as exc:
            fail(str(exc))
        except Exception as exc:  # a model that is not there, a package that is not installed
            # soft_wrap: the message holds a command to copy; no line breaks inside it
            err.print(error_line(startup_error(exc)), soft_wrap=True, markup=True, highlight=False)
            raise typer.Exit(1) from None
    err.print(f"[dim]{getattr(recognizer, 'description', recognizer.name)}[/]")

    # On a terminal, results and the bar share it (through rich, so lines do not collide);
    # piped, results go to stdout as plain text and the bar to stderr.
    shared = out is None and sys.stdout.isatty()
    progress = Progress(
        TextColumn("[bold]transcribing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[audio]:.0f} s audio"),
        TimeElapsedColumn(),
        console=Console(highlight=False) if shared else err,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    audio_total = 0.0

    def on_result(result: batching.FileResult) -> None:
        nonlocal audio_total
        audio_total += result.duration_s
        progress.update(task, advance=1, audio=audio_total)
        if result.error:
            (progress.console if shared else err).print(error_line(result.error), soft_wrap=True)
        elif out is None:
            body = _render(result, fmt, len(inputs))
            if shared:
                progress.console.print(body, markup=False, soft_wrap=True)
            else:
                print(body, flush=True)

    try:
        with progress:
            task = progress.add_task("files", total=len(inputs), audio=0.0)
            results, wall = batching.timed(
                lambda: batching.transcribe_files(
                    recognizer, inputs, hotwords=hotwords, batch_files=batch, on_result=on_result
                )
            )
    finally:
        recognizer.close()
    if out is not None:
        for path in batching.write_outputs(results, out, cast(batching.Format, fmt)):  # checked above
            err.print(f"[dim]wrote {path}[/]")
    summary = batching.summarise(results, wall)
    speed = f", {1 / summary.rtf:.1f}x real time" if summary.rtf > 0 else ""
    err.print(
        f"{summary.files - summary.failed}/{summary.files} files, {summary.audio_s:.1f} s of audio "
        f"in {summary.wall_s:.2f} s (RTF {summary.rtf:.3f}{speed})"
        + (f", [bold red]{summary.failed} failed[/]" if summary.failed else "")
    )
    if summary.failed == 0:
        return 0
    return EXIT_PARTIAL if summary.failed < summary.files else 1


def _render(result: FileResult, fmt: str, count: int) -> str:
    from voiceloop.asr.batch import render

    body = render(result, fmt)  # type: ignore[arg-type]
    return f"{result.file}: {body}" if fmt == "txt" and count > 1 else body
