"""What the demo prints: a line per turn as it happens, then a table and the figures."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from voiceloop.cli.messages import tr
from voiceloop.config import Settings
from voiceloop.demo import DemoResult
from voiceloop.engine.runtime import Observer
from voiceloop.engine.timing import SUMMARY_TIMINGS, TurnRecord, format_ms


class DemoConsole:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.console = Console(highlight=False)

    def note(self, message: str) -> None:
        self.console.print(f"[dim]•[/] {message}")

    def observer(self) -> Observer:
        return Observer(on_turn=self._turn, on_error=self._error)

    def _turn(self, record: TurnRecord) -> None:
        t = record.timings_ms()
        heard = record.transcript or "∅"
        self.console.print(
            f"[cyan]turn {record.turn_id}[/] [bold]heard[/] “{heard}” → “{record.heard_text}” "
            f"[dim]({record.outcome}, voice-to-voice {format_ms(t['voice_to_voice'])} ms)[/]"
        )

    def _error(self, message: str) -> None:
        self.console.print(f"[yellow]! {message}[/]")

    def summary(self, result: DemoResult) -> None:
        report = result.report
        table = Table(title="voiceloop demo", show_lines=False)
        for column in (
            "said",
            "heard",
            "reply (as played)",
            "v2v ms",
            "endpoint",
            "asr",
            "llm ttft",
            "tts 1st",
        ):
            table.add_column(tr(column), overflow="fold")
        for entry in report["turns"]:
            t = entry["timings_ms"]
            reply = entry["reply"] + (" [yellow](interrupted)[/]" if entry["interrupted"] else "")
            table.add_row(
                entry["expected"],
                entry["transcript"] or "[red]∅[/]",
                reply,
                *(format_ms(t[key]) for key in SUMMARY_TIMINGS),
            )
        self.console.print(table)
        overhead = report["overhead_ms"]["median"]
        self.console.print(
            f"word error rate {report['word_error_rate']:.2f} · self-transcriptions "
            f"{report['self_transcriptions']} · barge-ins {report['barge_ins']} · errors "
            f"{len(report['errors'])} · loop overhead (median) {format_ms(overhead)} ms"
        )
        self.console.print(f"session log: {result.session_dir}")
