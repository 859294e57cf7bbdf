"""The asyncio runtime: audio frames in, stage tasks out, the state machine in between.

Everything here runs on one event loop. The frame loop does only cheap work per 10 ms frame
(echo cancellation, one VAD chunk every 32 ms, the endpointer, dispatch); recognition runs in
a worker thread; the reply (LLM → chunker → TTS → playback queue) runs as a task per turn, so
the first piece plays while the LLM is still writing. Every stage call is bounded by a
timeout, every failure becomes an event, and the machine decides what happens next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from voiceloop.aec.base import EchoCanceller
from voiceloop.asr.base import SpeechRecognizer
from voiceloop.audio.base import DuplexAudio, DuplexFrame
from voiceloop.audio.playback import PlaybackQueue
from voiceloop.config import Settings
from voiceloop.engine.events import (
    Action,
    BargeIn,
    CancelReply,
    CancelTranscription,
    EndpointReached,
    Event,
    FinishTurn,
    PlaybackFinished,
    PlaybackStarted,
    ReplyFinished,
    ReplyStarted,
    ReportError,
    Stage,
    StageFailed,
    StartReply,
    StartTranscription,
    StopPlayback,
    Tick,
    Transcript,
)
from voiceloop.engine.machine import REPLYING, ConversationMachine, MachineConfig
from voiceloop.engine.messages import CUT_OFF_NOTICE, SPOKEN_ERRORS
from voiceloop.engine.timing import TurnRecord
from voiceloop.llm.backends import BackendSet, aliases, describe_for_speech
from voiceloop.llm.base import ChatModel
from voiceloop.llm.commands import Command, WhichModel, parse_command
from voiceloop.llm.history import ConversationHistory
from voiceloop.session.log import SessionLog
from voiceloop.text.chunker import SentenceChunker
from voiceloop.tts.base import SpeechSynthesizer
from voiceloop.vad.base import VoiceActivityDetector
from voiceloop.vad.endpointer import EndpointConfig, Endpointer

log = logging.getLogger("voiceloop")

# After the speaker falls silent its echo lingers for the room's reverberation time (RT60 up
# to ~0.6 s in living rooms); past that the mic holds no echo.
ECHO_TAIL_S = 0.8
MAX_KEPT_TURNS = 5000


@dataclass
class Pipeline:
    """The adapters one conversation runs on."""

    device: DuplexAudio
    aec: EchoCanceller
    vad: VoiceActivityDetector
    asr: SpeechRecognizer
    llm: ChatModel
    tts: SpeechSynthesizer


@dataclass
class Observer:
    """Hooks for whoever shows the conversation (the CLI's console, a test)."""

    on_turn: Callable[[TurnRecord], None] = lambda record: None
    on_error: Callable[[str], None] = lambda message: None
    on_state: Callable[[str], None] = lambda state: None
    # As soon as a turn's words are known, before the reply: a live view shows them at once.
    on_transcript: Callable[[int, str], None] = lambda turn_id, text: None


@dataclass
class _Reply:
    """What a reply task reports back about itself."""

    queued_audio: bool = False
    error: str | None = None
    errors: list[str] = field(default_factory=list)


class Conversation:
    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        session: SessionLog,
        observer: Observer | None = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.session = session
        self.observer = observer or Observer()
        loop_cfg, vad_cfg = settings.loop, settings.vad
        self.machine = ConversationMachine(
            MachineConfig(
                barge_in_min_s=loop_cfg.barge_in_min_ms / 1000,
                barge_in_warmup_min_s=loop_cfg.barge_in_warmup_min_ms / 1000,
                half_duplex=loop_cfg.half_duplex,
                watchdog_s=loop_cfg.watchdog_s,
                speak_errors=loop_cfg.speak_errors,
            )
        )
        self.endpointer = Endpointer(
            EndpointConfig(
                threshold=vad_cfg.threshold,
                neg_threshold=vad_cfg.neg_threshold,
                start_ms=vad_cfg.start_ms,
                stop_ms=vad_cfg.stop_ms,
                preroll_ms=vad_cfg.preroll_ms,
                max_utterance_s=vad_cfg.max_utterance_s,
                speculate_ms=vad_cfg.speculate_ms if vad_cfg.speculate_ms < vad_cfg.stop_ms else 0,
            )
        )
        self.playback = PlaybackQueue()
        self.history = ConversationHistory(
            settings.llm.system_prompt, settings.llm.history_turns, settings.llm.history_tokens
        )
        self.turns: dict[int, TurnRecord] = {}
        # The session log has every turn; this keeps the recent ones for reports, bounded so a
        # kiosk running for days does not grow.
        self.finished_turns: deque[TurnRecord] = deque(maxlen=MAX_KEPT_TURNS)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._vad_chunk: list[np.ndarray] = []
        self._vad_chunk_at = 0.0
        self._queued: deque[Event] = deque()
        self._dispatching = False
        self._last_state = self.machine.state
        aec = pipeline.aec
        self._aec_delay_s = getattr(aec, "output_delay_samples", 0) / 16_000
        self._aec_warmup_s = float(getattr(aec, "warmup_s", 0.0))
        self._far_end_s = 0.0  # playback the canceller has heard so far
        self._reference_heard_at = -1e9  # last time the speaker played anything
        self.machine.echo_canceller_converged = self._aec_warmup_s <= 0

    # -- the frame loop -------------------------------------------------------------------------

    async def run(self) -> None:
        device = self.pipeline.device
        self.session.start(
            device.now(),
            device=device.name,
            aec=self.pipeline.aec.name,
            vad=self.pipeline.vad.name,
            asr=self.pipeline.asr.name,
            llm=getattr(self.pipeline.llm, "description", self.pipeline.llm.name),
            tts=self.pipeline.tts.name,
        )
        for action in self.machine.greet(self.settings.loop.greeting):
            self._act(action)
        try:
            async for frame in device.frames(self.playback):
                self._on_frame(frame)
        finally:
            await self._cancel_all()

    def _on_frame(self, frame: DuplexFrame) -> None:
        self.session.write_audio(frame.mic_frame, frame.speaker_frame)
        cleaned = self.pipeline.aec.process(frame.mic_frame, frame.reference_frame)
        cleaned_at = frame.captured_at - self._aec_delay_s
        if np.any(frame.reference_frame):
            self._reference_heard_at = frame.captured_at
        if self._aec_delay_s and frame.captured_at - self._reference_heard_at > ECHO_TAIL_S:
            # Nothing played for longer than any room's echo tail: there is no echo to
            # cancel, so VAD takes the mic as it is, without the canceller's frame of delay.
            cleaned, cleaned_at = frame.mic_frame, frame.captured_at
        self._track_convergence(frame)
        for playback_event in self.playback.drain_events():
            self._post(playback_event)
        if self.settings.loop.half_duplex and self.machine.state in REPLYING:
            self._vad_chunk.clear()  # mic ignored while replying: nothing carries over
            self.endpointer.reset()
        else:
            self._feed_vad(cleaned, cleaned_at)
        if self.playback.playing:
            self.machine.note_progress(frame.captured_at)
        self.dispatch(Tick(at=frame.captured_at + len(frame.mic_frame) / 16_000))

    def _track_convergence(self, frame: DuplexFrame) -> None:
        if self.machine.echo_canceller_converged or not np.any(frame.reference_frame):
            return
        self._far_end_s += len(frame.reference_frame) / 16_000
        if self._far_end_s >= self._aec_warmup_s:
            self.machine.echo_canceller_converged = True
            self.session.write(
                "echo_canceller_converged", at=frame.captured_at, after_s=round(self._far_end_s, 2)
            )

    def _feed_vad(self, cleaned: np.ndarray, at: float) -> None:
        vad = self.pipeline.vad
        if not self._vad_chunk:
            self._vad_chunk_at = at
        self._vad_chunk.append(cleaned)
        buffered = sum(len(part) for part in self._vad_chunk)
        if buffered < vad.chunk_samples:
            for event in self.endpointer.poll(cleaned, at):
                self.dispatch(event)
            return
        audio = np.concatenate(self._vad_chunk)
        chunk, rest = audio[: vad.chunk_samples], audio[vad.chunk_samples :]
        chunk_at = self._vad_chunk_at
        self._vad_chunk = [rest] if rest.size else []
        self._vad_chunk_at = chunk_at + vad.chunk_samples / 16_000
        probability = vad.speech_probability(chunk)
        for event in self.endpointer.feed(chunk, probability, chunk_at):
            self.dispatch(event)

    # -- events and actions -------------------------------------------------------------------

    def dispatch(self, event: Event) -> None:
        """Feeds the machine; events raised while acting on another are queued, in order."""
        self._queued.append(event)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._queued:
                for action in self.machine.handle(self._queued.popleft()):
                    self._act(action)
                if self.machine.state is not self._last_state:
                    self._last_state = self.machine.state
                    self.observer.on_state(self._last_state.value)
        finally:
            self._dispatching = False

    def _act(self, action: Action) -> None:
        now = self.pipeline.device.now()
        if isinstance(action, StartTranscription):
            self._start_transcription(action)
        elif isinstance(action, EndpointReached):
            self._endpoint_reached(action)
        elif isinstance(action, CancelTranscription):
            task = self._tasks.pop(action.turn_id, None)
            if task is not None:
                task.cancel()
            self.turns.pop(action.turn_id, None)
            self.session.write("speculation_dropped", at=now, turn=action.turn_id)
        elif isinstance(action, StartReply):
            self._start_reply(action)
        elif isinstance(action, StopPlayback):
            record = self.turns.get(action.turn_id)
            heard = self.playback.stop(action.turn_id)
            if record is not None:
                record.heard_text = heard
                if record.playback_start_at is not None and record.playback_end_at is None:
                    record.playback_end_at = now
        elif isinstance(action, CancelReply):
            task = self._tasks.pop(action.turn_id, None)
            if task is not None:
                task.cancel()
        elif isinstance(action, BargeIn):
            if (record := self.turns.get(action.turn_id)) is not None:
                record.barge_in_at = action.at
            self.session.write("barge_in", at=action.at, turn=action.turn_id)
        elif isinstance(action, ReportError):
            message = f"{action.stage.value}: {action.message}"
            if (record := self.turns.get(action.turn_id)) is not None:
                record.errors.append(message)
            self.session.write(
                "error", at=now, turn=action.turn_id, stage=action.stage.value, message=action.message
            )
            self.observer.on_error(message)
        elif isinstance(action, FinishTurn):
            self._finish_turn(action)

    def _record_playback(self, event: Event) -> None:
        record = self.turns.get(getattr(event, "turn_id", -1))
        if record is None:
            return
        if isinstance(event, PlaybackStarted):
            record.playback_start_at = event.at
        elif isinstance(event, PlaybackFinished):
            record.playback_end_at = event.at

    # -- transcription --------------------------------------------------------------------------

    def _start_transcription(self, action: StartTranscription) -> None:
        device = self.pipeline.device
        true_end = device.true_speech_end(before=action.endpoint_at)
        is_true = true_end is not None and true_end >= action.speech_started_at
        record = TurnRecord(
            turn_id=action.turn_id,
            speech_started_at=action.speech_started_at,
            speech_end_at=true_end if is_true else action.speech_end_at,  # type: ignore[arg-type]
            vad_speech_end_at=action.speech_end_at,
            endpoint_at=self._now(),  # when the loop knew, echo canceller's latency included
            speech_end_is_true=is_true,
            audio_s=len(action.audio) / 16_000,
        )
        self.turns[action.turn_id] = record
        self.session.write(
            "speech",
            at=action.endpoint_at,
            turn=action.turn_id,
            started=round(action.speech_started_at - (self.session.t0 or 0), 4),
            vad_end=round(action.speech_end_at - (self.session.t0 or 0), 4),
            audio_s=round(record.audio_s, 3),
        )
        self._spawn(action.turn_id, self._transcribe(action, record))

    def _endpoint_reached(self, action: EndpointReached) -> None:
        """The early transcription's utterance really ended: time the turn from here."""
        record = self.turns.get(action.turn_id)
        if record is None:
            return
        true_end = self.pipeline.device.true_speech_end(before=action.endpoint_at)
        record.speech_end_is_true = true_end is not None and true_end >= record.speech_started_at
        record.speech_end_at = true_end if record.speech_end_is_true else action.speech_end_at  # type: ignore[assignment]
        record.vad_speech_end_at = action.speech_end_at
        record.endpoint_at = self._now()
        record.speculative = True
        self.session.write(
            "endpoint", at=record.endpoint_at, turn=action.turn_id, asr_ready=record.asr_done_at is not None
        )

    async def _transcribe(self, action: StartTranscription, record: TurnRecord) -> None:
        asr = self.pipeline.asr
        try:
            async with asyncio.timeout(self.settings.asr.timeout_s):
                result = await asyncio.to_thread(
                    asr.transcribe, action.audio, self.settings.asr.hotwords or None
                )
        except TimeoutError:
            self._post(
                StageFailed(
                    Stage.ASR,
                    action.turn_id,
                    f"no transcript within {self.settings.asr.timeout_s:.0f} s",
                    self._now(),
                )
            )
            return
        except Exception as exc:  # any adapter failure is one failed turn, never a dead loop
            self._post(StageFailed(Stage.ASR, action.turn_id, _one_line(exc), self._now()))
            return
        record.asr_done_at = self._now()
        record.asr_elapsed_s = result.elapsed_s
        record.transcript = result.text.strip()
        self.session.write(
            "transcript",
            at=record.asr_done_at,
            turn=action.turn_id,
            text=record.transcript,
            rtf=round(result.rtf, 3),
        )
        if record.transcript:
            self.observer.on_transcript(action.turn_id, record.transcript)
        self._post(Transcript(action.turn_id, result.text, record.asr_done_at))

    # -- the reply ------------------------------------------------------------------------------

    def _start_reply(self, action: StartReply) -> None:
        record = self.turns.get(action.turn_id)
        if record is None:  # the greeting: a reply with no user speech before it
            now = self._now()
            record = TurnRecord(action.turn_id, now, now, now, now)
            self.turns[action.turn_id] = record
        record.user_text = action.user_text
        record.reply_started_at = self._now()
        record.backend = self.pipeline.llm.name
        self.playback.open_turn(action.turn_id)
        self._spawn(action.turn_id, self._reply(action, record))

    async def _reply(self, action: StartReply, record: TurnRecord) -> None:
        turn = action.turn_id
        state = _Reply()
        try:
            if action.notice is not None:
                await self._speak(turn, record, action.notice, state, spoken=False)
            elif (command := self._command_in(action.user_text)) is not None:
                await self._answer_command(turn, record, command, state)
            else:
                await self._converse(action, record, state)
        finally:
            self.playback.close_turn(turn)
            self._post(ReplyFinished(turn, self._now(), error=state.error, queued_audio=state.queued_audio))

    async def _answer_command(self, turn: int, record: TurnRecord, command: Command, state: _Reply) -> None:
        """Spoken commands are answered by the loop itself, from config: no LLM call."""
        llm = self.pipeline.llm
        if isinstance(command, WhichModel):
            answer = describe_for_speech(llm)
        elif command.name is None:
            known = ", ".join(llm.names) if isinstance(llm, BackendSet) else llm.name
            answer = f"I don't know a backend called {command.heard}. I know {known}."
        elif not isinstance(llm, BackendSet):
            answer = f"Only {llm.name} is configured here."
        else:
            try:
                llm.switch(command.name)
            except Exception as exc:  # a profile that cannot be built: say so, keep the old one
                answer = f"I could not switch to {command.name}: {_one_line(exc)}"
            else:
                answer = f"Switched to {command.name}. {llm.model_name} is answering now."
                self.session.write("backend_switch", at=self._now(), turn=turn, backend=command.name)
        record.reply_text = answer
        await self._speak(turn, record, answer, state, spoken=False)

    def _command_in(self, text: str) -> Command | None:
        llm_cfg = self.settings.llm
        names = aliases(self.settings) if isinstance(self.pipeline.llm, BackendSet) else {}
        return parse_command(text, names, llm_cfg.switch_phrases, llm_cfg.which_phrases)

    async def _converse(self, action: StartReply, record: TurnRecord, state: _Reply) -> None:
        """LLM tokens → pieces → voice, with the voice working while the LLM still writes."""
        turn = action.turn_id
        pieces: asyncio.Queue[str | None] = asyncio.Queue(maxsize=64)
        messages = self.history.messages_for(action.user_text)
        producer = asyncio.create_task(self._write_reply(turn, record, messages, pieces, state))
        try:
            while (piece := await pieces.get()) is not None:
                if not await self._speak(turn, record, piece, state):
                    producer.cancel()
                    break
            if state.error is not None and state.error != "tts":
                notice = (
                    CUT_OFF_NOTICE if record.heard_text or state.queued_audio else SPOKEN_ERRORS[Stage.LLM]
                )
                await self._speak(turn, record, notice, state, spoken=False)
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer

    async def _write_reply(
        self,
        turn: int,
        record: TurnRecord,
        messages: list,
        pieces: asyncio.Queue[str | None],
        state: _Reply,
    ) -> None:
        chunker = SentenceChunker(
            self.settings.loop.first_piece_min_chars, self.settings.loop.first_piece_max_words
        )
        llm = self.pipeline.llm
        try:
            async with asyncio.timeout(self.settings.llm.timeout_s):
                async for delta in llm.stream(messages):
                    if record.llm_first_token_at is None:
                        record.llm_first_token_at = self._now()
                    record.llm_deltas += 1
                    record.reply_text += delta
                    for piece in chunker.feed(delta):
                        await self._hand_over(record, piece, pieces)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = "the reply took too long" if isinstance(exc, TimeoutError) else _one_line(exc)
            state.error = message
            self._post(StageFailed(Stage.LLM, turn, message, self._now()))
        record.llm_done_at = self._now()
        for piece in chunker.flush():  # after a cut, what did arrive is still spoken
            await self._hand_over(record, piece, pieces)
        self.session.write(
            "reply", at=record.llm_done_at, turn=turn, text=record.reply_text, deltas=record.llm_deltas
        )
        await pieces.put(None)

    async def _hand_over(self, record: TurnRecord, piece: str, pieces: asyncio.Queue[str | None]) -> None:
        if record.first_sentence_at is None:
            record.first_sentence_at = self._now()
        await pieces.put(piece)

    async def _speak(
        self, turn: int, record: TurnRecord, text: str, state: _Reply, spoken: bool = True
    ) -> bool:
        """Voices one piece into the playback queue; False if the voice failed."""
        index = self.playback.begin_piece(turn, text, spoken=spoken)
        if index is None:
            return False
        try:
            async with asyncio.timeout(self.settings.tts.timeout_s):
                async for chunk in self.pipeline.tts.synthesize(text):
                    if record.tts_first_audio_at is None:
                        record.tts_first_audio_at = self._now()
                    if not state.queued_audio:
                        state.queued_audio = True
                        self._post(ReplyStarted(turn, self._now()))
                    self.playback.append(turn, index, chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = (
                f"the voice did not answer within {self.settings.tts.timeout_s:.0f} s"
                if isinstance(exc, TimeoutError)
                else _one_line(exc)
            )
            state.error = "tts"
            self._post(StageFailed(Stage.TTS, turn, message, self._now()))
            return False
        finally:
            self.playback.end_piece(turn, index)
        return True

    # -- turn bookkeeping -----------------------------------------------------------------------

    def _finish_turn(self, action: FinishTurn) -> None:
        record = self.turns.pop(action.turn_id, None)
        self._tasks.pop(action.turn_id, None)
        if record is None:
            return
        record.outcome = action.outcome
        if action.outcome in ("answered", "error"):
            record.heard_text = self.playback.heard_text(action.turn_id)
        if action.outcome != "merged":
            self.history.commit(record.user_text, record.heard_text)
        if action.outcome == "greeted":
            self.session.write("greeting", at=action.at, played_from=record.playback_start_at)
            return
        self.session.write("turn", at=action.at, **record.as_log(self.session.t0 or 0.0))
        self.finished_turns.append(record)
        self.observer.on_turn(record)

    # -- plumbing -------------------------------------------------------------------------------

    def _post(self, event: Event) -> None:
        if isinstance(event, PlaybackStarted | PlaybackFinished):
            self._record_playback(event)
        self.dispatch(event)

    def _now(self) -> float:
        return self.pipeline.device.now()

    def _spawn(self, turn_id: int, work: object) -> None:
        task = asyncio.create_task(work)  # type: ignore[arg-type]
        self._tasks[turn_id] = task
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A bug, not a stage failure: say so, and let the watchdog bring the loop back.
            log.error("internal error in a turn task", exc_info=exc)
            self.observer.on_error(f"internal error: {_one_line(exc)}")
            self.session.write("internal_error", message=_one_line(exc))

    async def _cancel_all(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
