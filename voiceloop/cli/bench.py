"""`voiceloop bench`: LLM backends side by side, by voice."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voiceloop.cli.messages import tr
from voiceloop.cli.options import OFFLINE_PROFILE, OfflineConfigOption


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        backends: Annotated[
            str, typer.Option("--backends", help="Comma-separated backend profiles, e.g. local,deepseek.")
        ],
        script: Annotated[
            Path | None, typer.Option(help="The spoken script (default voiceloop/configs/bench-script.toml).")
        ] = None,
        report: Annotated[Path, typer.Option(help="JSON report; the HTML page goes beside it.")] = Path(
            "bench-report.json"
        ),
        repeat: Annotated[int, typer.Option(min=1, help="Runs of the script per backend.")] = 1,
        config: OfflineConfigOption = None,
    ) -> None:
        """Ask several LLM backends the same spoken questions and compare latency and replies."""
        import asyncio

        from rich.console import Console
        from rich.table import Table

        from voiceloop.audio.script import load_script
        from voiceloop.cli.app import fail, load
        from voiceloop.config.settings import CONFIGS_DIR, ConfigError
        from voiceloop.llm.backends import resolve
        from voiceloop.llm.bench import run_bench, write_reports

        # A backend that is down is a result, not a stand-in: no echo fallback.
        settings = load(config, OFFLINE_PROFILE, overrides={"llm": {"fallback_to_echo": False}})
        names = [name.strip() for name in backends.split(",") if name.strip()]
        try:
            for name in names:
                resolve(settings, name)
            user_script = load_script(script or CONFIGS_DIR / "bench-script.toml")
        except ConfigError as exc:
            fail(str(exc))
        console = Console(highlight=False)
        result = asyncio.run(
            run_bench(
                settings, names, user_script, repeat, progress=lambda m: console.print(f"[dim]•[/] {m}")
            )
        )
        json_path, html_path = write_reports(result, report)

        table = Table(title="LLM backends by voice")
        for column in ("backend", "v2v median", "v2v p90", "TTFT median", "TTFT p90", "tokens/s", "errors"):
            table.add_column(tr(column), justify="left" if column == "backend" else "right")
        for name, figures in sorted(
            result["backends"].items(), key=lambda item: item[1]["ttft_ms"]["median"] or 1e9
        ):
            table.add_row(
                name,
                *(
                    str(figures[key][stat])
                    for key in ("voice_to_voice_ms", "ttft_ms")
                    for stat in ("median", "p90")
                ),
                str(figures["tokens_per_s"]),
                str(figures["errors"]),
            )
        console.print(table)
        console.print(f"report: {json_path} and {html_path}")
