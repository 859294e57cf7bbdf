"""`voiceloop models list|download|export`: the ASR models (FunASR's, Qwen3-ASR) in ModelScope's cache,
fetching them, and exporting FunASR's to ONNX for `asr.name = "paraformer-onnx"`.

Runs never download (offline they would hang, then fail with a misleading message) nor export
(minutes for a large model, and it needs funasr): these are the explicit places that do.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from voiceloop.cli.messages import error_line, tr
from voiceloop.cli.options import ConfigOption

models_app = typer.Typer(help="List and download ASR models (FunASR, via ModelScope).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


def configured_models(settings: Any) -> list[str]:
    """The models the configured recogniser uses: qwen3's model and aligner when asr.name is
    qwen3, else Paraformer's model, VAD and punctuation models."""
    if settings.asr.name == "qwen3":
        from voiceloop.asr.qwen3 import DEFAULT_MODEL

        qwen3 = settings.asr.qwen3
        return [n for n in (qwen3.model or DEFAULT_MODEL, qwen3.aligner) if n]
    paraformer = settings.asr.paraformer
    return [n for n in (paraformer.model, paraformer.vad_model, paraformer.punc_model) if n]


@models_app.command("list")
def list_models(
    config: ConfigOption = None,
) -> None:
    """Known model names, whether each is cached here, and what the config uses."""
    from rich.console import Console
    from rich.table import Table

    from voiceloop.asr import models
    from voiceloop.asr.base import AsrError
    from voiceloop.cli.app import load

    settings = load(config)
    used = set(configured_models(settings))
    table = Table(title=f"ASR models (cache: {models.cache_root()})")
    for column in ("name", "cached", "size", "used", "what"):
        table.add_column(tr(column))
    names = list(models.ALIASES) + sorted(n for n in used if n not in models.ALIASES)  # type: ignore[misc]
    for name in names:
        try:
            path = models.resolve(name)
            cached, size = "yes", f"{models.directory_size(path) / 1e6:.0f} MB"
        except models.ModelNotAvailable as exc:
            cached, size = ("incomplete" if "incomplete" in str(exc) else "no"), ""
        except AsrError:
            cached, size = "not found", ""
        table.add_row(name, cached, size, "yes" if name in used else "", models.DESCRIPTIONS.get(name, ""))
    Console().print(table)


@models_app.command("download")
def download(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Model names or ids (qwen3-asr, qwen3-aligner, paraformer-zh, ...), or smart-turn "
            "(default: the configured recogniser's models)."
        ),
    ] = None,
    revision: Annotated[str | None, typer.Option(help="A hub revision (default: master).")] = None,
    config: ConfigOption = None,
) -> None:
    """Fetch models into ModelScope's cache (where FunASR and voiceloop look), with progress."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from voiceloop.asr import models
    from voiceloop.asr.base import AsrError
    from voiceloop.cli.app import fail, load

    if not names:
        names = configured_models(load(config))
        if not names:
            fail("no model names given and none configured (asr.paraformer.model or asr.qwen3.model)")
    console = Console(stderr=True, highlight=False)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    )

    class Bar:
        def __init__(self, filename: str, size: int) -> None:
            self.task = progress.add_task(filename, total=size or None)

        def update(self, n: int) -> None:
            progress.update(self.task, advance=n)

        def end(self) -> None:
            progress.update(self.task, completed=progress.tasks[self.task].total or 0)

    failed = 0
    for name in names:
        if name == "smart-turn":  # the turn detector's file from PyPI, not a FunASR model
            failed += not _download_smart_turn(console)
            continue
        try:
            ref = models.parse(name)
            if ref.model_id is None:
                fail(f"{name} is a local directory; only model ids can be downloaded")
            try:
                cached = models.find_cached(ref.model_id)
            except models.ModelNotAvailable:
                cached = None  # an incomplete copy: fetch it again (ModelScope resumes)
            if cached is not None:
                console.print(f"{name}: already cached at {cached}")
                continue
            console.print(f"downloading {name}" + (f" ({ref.model_id})" if ref.model_id != name else ""))
            with progress:
                path = models.download(name, revision=revision, progress=Bar)
            console.print(f"[green]{name}[/]: {path} ({models.directory_size(path) / 1e6:.0f} MB)")
        except AsrError as exc:
            failed += 1
            console.print(error_line(str(exc)), soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@models_app.command("export")
def export(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Model names, ids or directories (default: the configured [asr.paraformer-onnx] "
            "model and punc_model)."
        ),
    ] = None,
    int8: Annotated[
        bool,
        typer.Option("--int8", help="Also write the int8 model (model_quant.onnx), ~2x faster on a CPU."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Export downloaded models to ONNX next to their weights (FunASR's exporter; needs funasr,
    onnx and onnxruntime). Once per model: paraformer-onnx runs then load the files."""
    from rich.console import Console

    from voiceloop.asr.base import AsrError
    from voiceloop.asr.onnx_export import export as export_model
    from voiceloop.asr.paraformer import DEFAULT_MODEL
    from voiceloop.cli.app import load

    if not names:
        options = load(config).asr.options_for("paraformer-onnx")
        names = [
            n
            for n in (getattr(options, "model", None) or DEFAULT_MODEL, getattr(options, "punc_model", None))
            if n
        ]
    console = Console(stderr=True, highlight=False)
    failed = 0
    for name in names:
        console.print(f"exporting {name} to ONNX" + (" (fp32 and int8)" if int8 else ""))
        try:
            written = export_model(name, quantize=int8)
        except AsrError as exc:
            failed += 1
            console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            continue
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.0f} MB" for p in written)
        console.print(f"[green]{name}[/]: {written[0].parent} ({sizes})", soft_wrap=True)
    if failed:
        raise typer.Exit(1)


def _download_smart_turn(console: Any) -> bool:
    """Fetches Smart Turn v3.2 out of the pipecat-ai wheel (voiceloop/turn/models.py); False on failure."""
    from voiceloop.turn import models as turn_models
    from voiceloop.turn.base import TurnError

    try:
        turn_models.download(console.print)
    except (TurnError, OSError) as exc:
        console.print(error_line(str(exc)), soft_wrap=True)
        return False
    return True
