"""`voiceloop run`: the conversation loop on a real microphone and speaker.

The same loop as `voiceloop demo`, with a device instead of the virtual room and no script.
Ctrl-C ends it cleanly: the session log is closed and the device released before exiting. A
device that goes away mid-session stops the loop with a message; the log so far is kept.

Only typer is imported at module level: `voiceloop --help` must stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voiceloop.cli.options import ConfigOption, LlmOption
from voiceloop.engine.timing import format_ms

if TYPE_CHECKING:
    from voiceloop.config import Settings
    from voiceloop.engine.events import PartialTranscript, TurnVerdictReady
    from voiceloop.engine.timing import TurnRecord

REAL_BACKENDS = ("sounddevice", "pyaudio")


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    config: ConfigOption = None,
    input_device: Annotated[
        str | None, typer.Option("--input", "-i", help="Mic: index or part of a name (`voiceloop devices`).")
    ] = None,
    output_device: Annotated[
        str | None, typer.Option("--output", "-o", help="Speaker: index or part of a name.")
    ] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="sounddevice or pyaudio.")] = None,
    llm: LlmOption = None,
    seconds: Annotated[
        float | None, typer.Option("--seconds", min=0.1, help="Stop after this long (default: until Ctrl-C).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Where session folders go (default: log.dir).")] = None,
    wake: Annotated[
        str | None,
        typer.Option(help="Kiosk mode: sleep until this wake word (okay_nabu, alexa, ...; comma-separated)."),
    ] = None,
) -> None:
    """Talk with the assistant on your microphone and speakers; Ctrl-C ends the session."""
    import asyncio

    from voiceloop.cli.app import fail, load

    if backend is not None and backend not in REAL_BACKENDS:
        fail(f"--backend {backend}: choose one of {', '.join(REAL_BACKENDS)}")
    console = RunConsole()
    profile_backend = backend or load(config, llm=llm).audio.backend
    chosen = profile_backend if profile_backend in REAL_BACKENDS else "sounddevice"
    if chosen != profile_backend:
        console.note(f"audio.backend is '{profile_backend}'; `voiceloop run` uses real devices: sounddevice")
    # Loaded with the real backend chosen, so a delay saved by `voiceloop calibrate` applies.
    overrides: dict[str, Any] = {"audio": {"backend": chosen}}
    if out is not None:
        overrides["log"] = {"dir": out}
    if wake is not None:
        overrides["loop"] = {"wake": wake}
    settings = load(config, llm=llm, overrides=overrides)
    _check_wake_words(settings)
    try:
        result = asyncio.run(run_session(settings, console, input_device, output_device, seconds))
    except KeyboardInterrupt:
        console.stopped("stopped (Ctrl-C)")
        return
    if result.error is not None:
        console.stopped(None)
        fail(result.error, 1)
    console.stopped("time is up" if result.timed_out else "the device stream ended")


def _check_wake_words(settings: Settings) -> None:
    """A wake word no model knows fails here, with the ones it does, before any device opens."""
    if not settings.loop.wake_words:
        return
    from voiceloop.build.pipeline import build_wake
    from voiceloop.cli.app import fail
    from voiceloop.wake.base import WakeWordError

    try:
        detector = build_wake(settings)
    except WakeWordError as exc:
        fail(str(exc))
    close = getattr(detector, "close", None)
    if close is not None:
        close()


@dataclass
class RunResult:
    turns: int = 0
    error: str | None = None
    timed_out: bool = False
    device: dict[str, Any] = field(default_factory=dict)


async def run_session(
    settings: Settings,
    console: RunConsole,
    input_device: str | None = None,
    output_device: str | None = None,
    seconds: float | None = None,
) -> RunResult:
    """One session on the configured devices. Device errors before the session starts raise
    AudioDeviceError; during it they end the session and come back in `error`."""
    import asyncio

    from voiceloop.audio.base import AudioDeviceError
    from voiceloop.build import build_adapter
    from voiceloop.build.llm import choose_llm
    from voiceloop.cli.push_to_talk import push_to_talk_key
    from voiceloop.session.runner import conversation

    try:
        device = build_adapter(settings, "audio", input_device=input_device, output_device=output_device)
    except AudioDeviceError as exc:
        return RunResult(error=str(exc))
    result = RunResult()
    try:
        # The echo stand-in is for the demo only: a real session reports a dead endpoint.
        chosen_llm = await choose_llm(settings, console.note, echo_fallback=False)
        async with conversation(settings, device, llm=chosen_llm, observer=console.observer()) as talk:
            console.session_dir = talk.session.dir
            console.listening(device, settings)
            try:
                async with asyncio.timeout(seconds):
                    with console.live(device), push_to_talk_key(talk.push_to_talk) as key:
                        if key and talk.pipeline.wake is not None:
                            console.note("press space to talk without the wake word")
                        await talk.run()
            except TimeoutError:
                result.timed_out = True
            except AudioDeviceError as exc:
                result.error = str(exc)
            finally:
                result.turns = len(talk.finished_turns)
    finally:
        await device.aclose()  # also when no conversation began (the LLM check failed)
        result.device = {**device.describe(), **device.stats.as_dict()}
    return result


class RunConsole:
    """A live status line (state, the last turn's latencies, xruns) above which each turn and
    error is printed; plain lines only when stdout is not a terminal."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(highlight=False)
        self.state = "starting"
        self.detector = ""  # the turn detector's last word on the utterance under way
        self.attention = ""  # kiosk mode: "asleep" / "awake" ("" = no wake word, always awake)
        self.partial = ""  # what the streaming model has heard of it so far (asr.streaming)
        self.last: TurnRecord | None = None
        self.session_dir: Path | None = None
        self._live: Any = None
        self._device: Any = None

    def note(self, message: str) -> None:
        self.console.print(f"[dim]•[/] {message}")

    def listening(self, device: Any, settings: Settings) -> None:
        delay = (
            f"aec delay {settings.aec.delay_ms:.0f} ms (calibrated/configured)"
            if settings.aec.delay_ms is not None
            else "aec delay: measured from the echo (run `voiceloop calibrate` to fix it)"
        )
        aec = settings.aec
        if aec.drift_ppm is not None and aec.name == "speex" and aec.speex.drift_compensation:
            delay += f"; clock drift {aec.drift_ppm:+.1f} ppm to start from (calibrated/configured)"
        self.note(f"audio: {device.name}; {delay}")
        self.console.print(f"listening (Ctrl-C to stop); session log: {self.session_dir}")
        self.console.file.flush()

    def observer(self) -> Any:
        from voiceloop.engine.runtime import Observer

        return Observer(
            on_turn=self._turn,
            on_error=self._error,
            on_state=self._state,
            on_verdict=self._verdict,
            on_attention=self._attention,
            on_partial=self._partial,
        )

    def _attention(self, attention: str, why: str) -> None:
        self.attention = attention
        self._refresh()

    def _turn(self, record: TurnRecord) -> None:
        self.last = record
        self.partial = ""
        t = record.timings_ms()
        self.console.print(
            f"[cyan]turn {record.turn_id}[/] [bold]heard[/] “{record.transcript or '∅'}” → "
            f"“{record.heard_text}” [dim]({record.outcome}, voice-to-voice {format_ms(t['voice_to_voice'])} ms)[/]"
        )
        self._refresh()

    def _error(self, message: str) -> None:
        self.console.print(f"[yellow]! {message}[/]")

    def _state(self, state: str) -> None:
        self.state = state
        if state not in ("user_speaking", "listening"):
            self.detector = ""
        self._refresh()

    def _verdict(self, verdict: TurnVerdictReady) -> None:
        word = "?" if verdict.error else "complete" if verdict.complete else "incomplete"
        self.detector = f"{word} {verdict.probability:.2f}"
        self._refresh()

    def _partial(self, partial: PartialTranscript) -> None:
        self.partial = partial.text
        self._refresh()

    def status_line(self) -> str:
        from rich.markup import escape

        state = self.state.replace("_", " ")
        if self.detector and self.state in ("user_speaking", "listening"):
            state = f"listening… ({self.detector})"
        if self.attention == "asleep":
            state = "asleep (wake word or space)"
        elif self.attention == "awake":
            state = f"{state} · awake"
        parts = [f"[bold]{state}[/]"]
        if self.partial and self.state in ("user_speaking", "listening", "transcribing"):
            parts.append(f"“{escape(self.partial)}…”")
        if self.last is not None:
            t = self.last.timings_ms()
            parts.append(
                f"last turn: v2v {format_ms(t['voice_to_voice'])} ms · endpoint {format_ms(t['endpoint'])} · "
                f"asr {format_ms(t['asr'])} · llm {format_ms(t['llm_ttft'])} · tts {format_ms(t['tts_first_audio'])}"
            )
        if self._device is not None:
            parts.append(f"xruns {self._device.stats.xruns}")
        return "  │  ".join(parts)

    def _refresh(self) -> None:
        if self._live is not None:
            from rich.text import Text

            self._live.update(Text.from_markup(self.status_line()))

    def live(self, device: Any) -> Any:
        import contextlib

        from rich.live import Live
        from rich.text import Text

        self._device = device
        if not self.console.is_terminal:
            return contextlib.nullcontext()
        self._live = Live(
            Text.from_markup(self.status_line()), console=self.console, refresh_per_second=4, transient=True
        )
        return self._live

    def stopped(self, why: str | None) -> None:
        """The last line: why it ended (None: an error follows on stderr) and where the log is."""
        self._live = None
        if why is not None:
            where = f"; session log: {self.session_dir}" if self.session_dir is not None else ""
            self.console.print(f"{why}{where}")
        elif self.session_dir is not None:
            self.console.print(f"the session log so far is kept in {self.session_dir}")
