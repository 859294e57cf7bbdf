"""`voiceloop voices [--lang zh]`: the voices a TTS adapter can speak with.

Edge's list comes from the service (so it needs the network, and says so plainly when there
is none); espeak's is built in. Only typer is imported at module level.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from voiceloop.cli.messages import tr
from voiceloop.cli.options import ConfigOption


def register(app: typer.Typer) -> None:
    app.command("voices")(voices)


def voices(
    lang: Annotated[
        str | None, typer.Option("--lang", help="Only this language or locale: zh, zh-CN, en-GB...")
    ] = None,
    tts: Annotated[
        str, typer.Option("--tts", help="edge (the service's list) or espeak (offline).")
    ] = "edge",
    config: ConfigOption = None,
) -> None:
    """List voices for tts.voice: Edge-TTS's from the service, or espeak's (--tts espeak)."""
    import asyncio

    from rich.console import Console
    from rich.table import Table

    from voiceloop.cli.app import fail, load

    if tts == "espeak":
        _espeak_voices(lang)
        return
    if tts != "edge":
        fail(f"--tts {tts}: voices can be listed for edge and espeak")
    from voiceloop.tts.base import TtsError
    from voiceloop.tts.edge import list_voices

    settings = load(config)
    edge = settings.tts.edge
    timeout_s = max(10.0, edge.connect_timeout_s + edge.first_audio_timeout_s)
    try:
        found = asyncio.run(list_voices(timeout_s))
    except TtsError as exc:
        fail(f"{exc}. Offline, espeak speaks: voiceloop voices --tts espeak", 1)
    chosen = [v for v in found if _matches(str(v.get("Locale", "")), lang)]
    if not chosen:
        fail(f"no Edge voice for '{lang}' among {len(found)}", 1)
    table = Table(title=f"Edge-TTS voices ({len(chosen)})", title_justify="left")
    for column in ("voice", "gender", "locale", "personality"):
        table.add_column(tr(column))
    for v in sorted(chosen, key=lambda v: (v.get("Locale", ""), v.get("ShortName", ""))):
        tags: dict[str, Any] = v.get("VoiceTag") or {}
        table.add_row(
            v.get("ShortName", "?"),
            v.get("Gender", ""),
            v.get("Locale", ""),
            ", ".join(tags.get("VoicePersonalities") or []),
        )
    Console().print(table)


def _matches(locale: str, lang: str | None) -> bool:
    """'zh' matches zh-CN, zh-TW and zh-HK; 'zh-CN' only zh-CN (and zh-CN-liaoning, ...)."""
    if not lang:
        return True
    locale, lang = locale.lower(), lang.lower()
    return locale == lang or locale.startswith(f"{lang}-")


def _espeak_voices(lang: str | None) -> None:
    from voiceloop.cli.app import fail
    from voiceloop.tts.edge import ESPEAK_VOICE_FOR_LOCALE
    from voiceloop.tts.espeak import list_voices

    names = list_voices()
    if lang:
        wanted = {lang.lower(), ESPEAK_VOICE_FOR_LOCALE.get(lang, lang).lower()}
        names = [n for n in names if any(n == w or n.startswith(f"{w}-") for w in wanted)]
    if not names:
        fail(f"no espeak voice for '{lang}'", 1)
    for name in names:
        typer.echo(name)
