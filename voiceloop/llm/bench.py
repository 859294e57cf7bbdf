"""`voiceloop bench`: the same spoken script against several LLM backends, side by side.

Each backend runs the script in the virtual room (real time, so the latencies are what a user
would hear), `repeat` times. The report has, per backend, medians and p90s of voice-to-voice
latency and time to first token, tokens per second, errors, and the replies as heard.
"""

from __future__ import annotations

import base64
import html
import io
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voiceloop.audio.script import UserScript
from voiceloop.config import Settings
from voiceloop.engine.timing import TurnRecord


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None}
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
    return {"median": round(statistics.median(values), 1), "p90": round(p90, 1)}


def summarise(turns: list[TurnRecord]) -> dict[str, Any]:
    timings = [t.timings_ms() for t in turns]
    rates = [r for t in turns if (r := t.tokens_per_s) is not None]
    return {
        "voice_to_voice_ms": _stats([v for t in timings if (v := t["voice_to_voice"]) is not None]),
        "ttft_ms": _stats([v for t in timings if (v := t["llm_ttft"]) is not None]),
        "first_piece_ms": _stats([v for t in timings if (v := t["llm_first_piece"]) is not None]),
        "tokens_per_s": round(statistics.median(rates), 1) if rates else None,
        "errors": sum(1 for t in turns if t.errors),
        "turns": len(turns),
        "replies": [t.heard_text or t.reply_text for t in turns],
        "error_messages": [e for t in turns for e in t.errors],
    }


async def run_bench(
    settings: Settings,
    backends: list[str],
    script: UserScript,
    repeat: int = 1,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    from voiceloop.demo import run_demo
    from voiceloop.llm.backends import BackendSet

    report: dict[str, Any] = {"backends": {}, "script_turns": len(script.turns), "repeat": repeat}
    for name in backends:
        turns: list[TurnRecord] = []
        for run in range(repeat):
            progress(f"{name}: run {run + 1} of {repeat}")
            result = await run_demo(
                settings, script, say=lambda _: None, llm=BackendSet(settings, first=name)
            )
            turns += result.turns
        report["backends"][name] = summarise(turns)
    return report


def chart_png(report: dict[str, Any]) -> bytes:
    """Median (bar) and p90 (whisker) of voice-to-voice latency and TTFT per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["backends"])
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=110)
    for axis, key, title in zip(
        axes, ("voice_to_voice_ms", "ttft_ms"), ("voice to voice", "time to first token"), strict=True
    ):
        medians = [report["backends"][n][key]["median"] or 0 for n in names]
        p90s = [report["backends"][n][key]["p90"] or 0 for n in names]
        axis.bar(names, medians, color="#4c78a8")
        axis.errorbar(
            names,
            medians,
            yerr=[[0] * len(names), [max(p - m, 0) for p, m in zip(p90s, medians, strict=True)]],
            fmt="none",
            ecolor="#333",
            capsize=4,
        )
        axis.set_title(f"{title} (ms, median and p90)")
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def html_report(report: dict[str, Any]) -> str:
    """One self-contained page: the chart embedded, a table, the replies side by side."""
    png = base64.b64encode(chart_png(report)).decode()
    names = list(report["backends"])
    rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            html.escape(n),
            b["voice_to_voice_ms"]["median"],
            b["voice_to_voice_ms"]["p90"],
            b["ttft_ms"]["median"],
            b["ttft_ms"]["p90"],
            b["tokens_per_s"],
            b["errors"],
        )
        for n, b in report["backends"].items()
    )
    turns = max((len(b["replies"]) for b in report["backends"].values()), default=0)
    replies = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(report['backends'][n]['replies'][i]) if i < len(report['backends'][n]['replies']) else ''}</td>"
            for n in names
        )
        + "</tr>"
        for i in range(turns)
    )
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>voiceloop bench</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}}th{{background:#f3f3f3}}</style></head><body>
<h1>voiceloop bench</h1><p>{report["script_turns"]} spoken turns × {report["repeat"]} run(s) per backend, in the virtual room.</p>
<img alt="latency chart" src="data:image/png;base64,{png}">
<table><tr><th>backend</th><th>voice-to-voice median ms</th><th>p90</th><th>TTFT median ms</th><th>p90</th><th>tokens/s</th><th>errors</th></tr>{rows}</table>
<h2>Replies, as heard</h2><table><tr>{head}</tr>{replies}</table></body></html>"""


def write_reports(report: dict[str, Any], path: Path) -> tuple[Path, Path]:
    """`path` names the JSON; the HTML page goes beside it."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    json_path = path if path.suffix == ".json" else path.with_suffix(".json")
    html_path = json_path.with_suffix(".html")
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    html_path.write_text(html_report(report), encoding="utf-8")
    return json_path, html_path
