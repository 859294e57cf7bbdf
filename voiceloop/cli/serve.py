"""`voiceloop serve`: the HTTP API and web page (see voiceloop/server/app.py).

Localhost by default. Binding anywhere else makes the API reachable from the network, so it
needs `serve.token` (or VOICELOOP_SERVE__TOKEN), which is then checked on every request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from voiceloop.cli.options import AsrOption, ConfigOption, LlmOption


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


# Shorter than this, a token can be guessed by a patient script on the local network.
MIN_TOKEN_CHARS = 16


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default serve.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default serve.port, 7860).")] = None,
    config: ConfigOption = None,
    llm: LlmOption = None,
    asr: AsrOption = None,
    allowed_dir: Annotated[
        Path | None, typer.Option(help='POST /asr {"filename"} may read files under this folder only.')
    ] = None,
    session: Annotated[
        str | None, typer.Option(help="Start a live session at once: demo (virtual room) or devices.")
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAI-compatible transcription and speech, /asr, /health, /info) and
    the web page (files, microphone, system info, live session view)."""
    import asyncio
    import logging

    from rich.console import Console

    from voiceloop.cli.app import fail, load
    from voiceloop.cli.hints import startup_error
    from voiceloop.server.origins import is_loopback

    flags = {"host": host, "port": port, "allowed_dir": allowed_dir}
    overrides: dict[str, Any] = {"serve": {k: v for k, v in flags.items() if v is not None}}
    if asr is not None:
        overrides["asr"] = {"name": asr}
    settings = load(config, llm=llm, overrides=overrides)

    bind = settings.serve.host
    if not is_loopback(bind) and settings.serve.token is None:
        fail(
            f"--host {bind} makes the API reachable from other machines: set a token first "
            "(serve.token in the config, or VOICELOOP_SERVE__TOKEN), then open the page as "
            f"http://{bind}:{settings.serve.port}/?token=<token>"
        )
    if session not in (None, "demo", "devices"):
        fail(f"--session {session}: use demo or devices")

    import uvicorn

    from voiceloop.server.app import create_app
    from voiceloop.server.listen import uvicorn_options

    console = Console(stderr=True)
    token = settings.serve.token
    if token is not None and len(token.get_secret_value()) < MIN_TOKEN_CHARS:
        console.print(
            f"warning: serve.token is {len(token.get_secret_value())} characters long; use "
            f"{MIN_TOKEN_CHARS} or more (e.g. python -c 'import secrets; print(secrets.token_urlsafe())')",
            highlight=False,
        )
    console.print(f"loading {settings.asr.name} ...", highlight=False)
    try:
        app = create_app(settings, start_session=session)
    except Exception as exc:  # a missing model or library: one line that says what to do
        fail(startup_error(exc), 1)
    shown = "localhost" if bind == "127.0.0.1" else bind
    console.print(
        f"voiceloop serve: http://{shown}:{settings.serve.port}/  (API docs: /docs)", highlight=False
    )
    logging.getLogger("voiceloop").setLevel(settings.log.level.upper())
    config_ = uvicorn.Config(app, host=bind, port=settings.serve.port, **uvicorn_options(settings.serve))
    try:
        asyncio.run(uvicorn.Server(config_).serve())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(f"cannot listen on {bind}:{settings.serve.port}: {exc.strerror or exc}", 1)
