"""One turn: the recogniser on the user's utterance, then the reply (LLM → chunker → TTS →
playback queue), and the turn's TurnRecord, which nothing else writes.

Recognition runs in a worker thread; the reply runs as one task in which the LLM writes into a
queue of speakable pieces while the voice renders them, so the first piece plays while the LLM
is still writing. Every stage call is bounded by a timeout on the runtime's clock; a failure
becomes a StageFailed event, and the machine decides what happens next. The turn only learns
of the machine's decisions through the methods the dispatcher calls (`stopped`, `barged_in`,
`failed`, `finish`, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import numpy as np

from voiceloop.aec.refit import RefitCopy
from voiceloop.asr.base import SpeechRecognizer, Transcription
from voiceloop.audio.playback import PlaybackQueue
from voiceloop.config import Settings
from voiceloop.engine.clock import Clock
from voiceloop.engine.commands import answer_command, command_in
from voiceloop.engine.events import (
    EndpointReached,
    Event,
    ReplyFinished,
    ReplyStarted,
    Stage,
    StageFailed,
    StartReply,
    StartTranscription,
    Transcript,
)
from voiceloop.engine.messages import error_notice
from voiceloop.engine.timing import TurnRecord
from voiceloop.errors import one_line
from voiceloop.llm.base import ChatMessage, ChatModel
from voiceloop.llm.history import ConversationHistory
from voiceloop.session.log import SessionLog
from voiceloop.text.chunker import SentenceChunker
from voiceloop.tts.base import SpeechSynthesizer

log = logging.getLogger("voiceloop")


@dataclass
class TurnServices:
    """What every turn works with: the stages, the shared queue and memory, and the way back
    to the machine (`post`)."""

    settings: Settings
    clock: Clock
    asr: SpeechRecognizer
    llm: ChatModel
    tts: SpeechSynthesizer
    playback: PlaybackQueue
    history: ConversationHistory
    session: SessionLog
    post: Callable[[Event], None]
    true_speech_end: Callable[[float], float | None]  # the device's exact end, where known
    on_transcript: Callable[[int, str], None]
    on_error: Callable[[str], None]


@dataclass
class _ReplyState:
    """What a reply knows about itself while it runs."""

    queued_audio: bool = False
    failed: Stage | None = None  # the stage that failed last, if any
    error: str | None = None  # ...and what it said


class Turn:
    def __init__(self, record: TurnRecord, services: TurnServices) -> None:
        self.record = record
        self._s = services
        self._task: asyncio.Task[None] | None = None

    # -- how a turn begins ------------------------------------------------------------------------

    @classmethod
    def heard(cls, action: StartTranscription, services: TurnServices) -> Turn:
        """A turn for an utterance: its record opened and its transcription started."""
        speech_end, is_true = _speech_end(
            services, action.endpoint_at, action.speech_started_at, action.speech_end_at
        )
        record = TurnRecord(
            turn_id=action.turn_id,
            speech_started_at=action.speech_started_at,
            speech_end_at=speech_end,
            vad_speech_end_at=action.speech_end_at,
            endpoint_at=services.clock.now(),  # when the loop knew, echo canceller's latency included
            speech_end_is_true=is_true,
            audio_s=len(action.audio) / 16_000,
        )
        t0 = services.session.t0 or 0
        services.session.write(
            "speech",
            at=action.endpoint_at,
            turn=action.turn_id,
            started=round(action.speech_started_at - t0, 4),
            vad_end=round(action.speech_end_at - t0, 4),
            audio_s=round(record.audio_s, 3),
            **({"heard_again": action.heard_again} if action.heard_again else {}),
        )
        turn = cls(record, services)
        turn._spawn(turn._transcribe(action))
        return turn

    @classmethod
    def unheard(cls, turn_id: int, services: TurnServices) -> Turn:
        """A turn with no user speech before it: the greeting."""
        now = services.clock.now()
        return cls(TurnRecord(turn_id, now, now, now, now), services)

    def endpoint_reached(
        self, action: EndpointReached, verdicts: list[dict[str, float | bool | str | None]]
    ) -> None:
        """The early transcription's utterance really ended: time the turn from here. `verdicts`:
        the detector's on each of its stops, the last the one that ended it (or not: the ceiling)."""
        record = self.record
        record.endpoint_by = action.decided_by
        record.verdicts = verdicts
        if verdicts and isinstance(p := verdicts[-1]["p"], float):
            record.turn_probability = p
            record.turn_decision_ms = verdicts[-1]["ms"]  # type: ignore[assignment]
        record.speech_end_at, record.speech_end_is_true = _speech_end(
            self._s, action.endpoint_at, record.speech_started_at, action.speech_end_at
        )
        record.vad_speech_end_at = action.speech_end_at
        record.endpoint_at = self._s.clock.now()
        record.speculative = True
        self._s.session.write(
            "endpoint",
            at=record.endpoint_at,
            turn=record.turn_id,
            asr_ready=record.asr_done_at is not None,
            by=action.decided_by,
        )

    # -- recognition ------------------------------------------------------------------------------

    async def _transcribe(self, action: StartTranscription) -> None:
        s, record = self._s, self.record
        asr_cfg = s.settings.asr
        try:
            async with s.clock.timeout(asr_cfg.timeout_s):
                result = await s.clock.run_blocking(
                    _transcribe, s.asr, action.audio, asr_cfg.hotwords or None
                )
        except TimeoutError:
            message = f"no transcript within {asr_cfg.timeout_s:.0f} s"
            s.post(StageFailed(Stage.ASR, action.turn_id, message, s.clock.now()))
            return
        except Exception as exc:  # any adapter failure is one failed turn, never a dead loop
            s.post(StageFailed(Stage.ASR, action.turn_id, one_line(exc), s.clock.now()))
            return
        record.asr_done_at = s.clock.now()
        record.asr_elapsed_s = result.elapsed_s
        record.transcript = result.text.strip()
        s.session.write(
            "transcript",
            at=record.asr_done_at,
            turn=action.turn_id,
            text=record.transcript,
            rtf=round(result.rtf, 3),
            **({"heard_again": action.heard_again} if action.heard_again else {}),
        )
        if record.transcript:
            s.on_transcript(action.turn_id, record.transcript)
        s.post(Transcript(action.turn_id, result.text, record.asr_done_at))

    # -- the reply --------------------------------------------------------------------------------

    def start_reply(self, action: StartReply) -> None:
        record = self.record
        record.user_text = action.user_text
        record.merged_from = list(action.merged_from)
        if action.merged_from:
            self._s.session.write(
                "turns_merged", at=self._s.clock.now(), turn=action.turn_id, merged=list(action.merged_from)
            )
        record.reply_started_at = self._s.clock.now()
        record.backend = self._s.llm.name
        self._s.playback.open_turn(action.turn_id)
        self._spawn(self._reply(action))

    async def _reply(self, action: StartReply) -> None:
        s, state = self._s, _ReplyState()
        try:
            if action.notice is not None:
                await self._speak(action.notice, state, spoken=False)
            elif (command := command_in(action.user_text, s.settings, s.llm)) is not None:
                answer = answer_command(command, s.llm)
                if answer.switched_to is not None:
                    s.session.write(
                        "backend_switch", at=s.clock.now(), turn=action.turn_id, backend=answer.switched_to
                    )
                self.record.reply_text = answer.text
                await self._speak(answer.text, state, spoken=False)
            else:
                await self._converse(action, state)
        finally:
            s.playback.close_turn(action.turn_id)
            finished = ReplyFinished(
                action.turn_id, s.clock.now(), error=state.error, queued_audio=state.queued_audio
            )
            s.post(finished)

    async def _converse(self, action: StartReply, state: _ReplyState) -> None:
        """LLM tokens → pieces → voice, with the voice working while the LLM still writes."""
        pieces: asyncio.Queue[str | None] = asyncio.Queue(maxsize=64)
        messages = self._s.history.messages_for(action.user_text)
        producer = asyncio.create_task(self._write_reply(messages, pieces, state))
        try:
            while (piece := await pieces.get()) is not None:
                if not await self._speak(piece, state):
                    producer.cancel()
                    break
            if state.failed is not None:
                began = bool(self.record.heard_text) or state.queued_audio
                if (notice := error_notice(state.failed, reply_began=began)) is not None:
                    await self._speak(notice, state, spoken=False)
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer

    async def _write_reply(
        self, messages: list[ChatMessage], pieces: asyncio.Queue[str | None], state: _ReplyState
    ) -> None:
        s, record = self._s, self.record
        loop_cfg = s.settings.loop
        chunker = SentenceChunker(loop_cfg.first_piece_min_chars, loop_cfg.first_piece_max_words)
        try:
            async with s.clock.timeout(s.settings.llm.timeout_s):
                async for delta in s.llm.stream(messages):
                    if record.llm_first_token_at is None:
                        record.llm_first_token_at = s.clock.now()
                    record.llm_deltas += 1
                    record.reply_text += delta
                    for piece in chunker.feed(delta):
                        await self._hand_over(piece, pieces)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = "the reply took too long" if isinstance(exc, TimeoutError) else one_line(exc)
            state.failed, state.error = Stage.LLM, message
            s.post(StageFailed(Stage.LLM, record.turn_id, message, s.clock.now()))
        record.llm_done_at = s.clock.now()
        for piece in chunker.flush():  # after a cut, what did arrive is still spoken
            await self._hand_over(piece, pieces)
        s.session.write(
            "reply",
            at=record.llm_done_at,
            turn=record.turn_id,
            text=record.reply_text,
            deltas=record.llm_deltas,
        )
        await pieces.put(None)

    async def _hand_over(self, piece: str, pieces: asyncio.Queue[str | None]) -> None:
        if self.record.first_sentence_at is None:
            self.record.first_sentence_at = self._s.clock.now()
        await pieces.put(piece)

    async def _speak(self, text: str, state: _ReplyState, spoken: bool = True) -> bool:
        """Voices one piece into the playback queue; False if the voice failed."""
        s, record, turn = self._s, self.record, self.record.turn_id
        index = s.playback.begin_piece(turn, text, spoken=spoken)
        if index is None:
            return False
        timeout_s = s.settings.tts.timeout_s
        try:
            async with s.clock.timeout(timeout_s):
                async for chunk in s.tts.synthesize(text):
                    if record.tts_first_audio_at is None:
                        record.tts_first_audio_at = s.clock.now()
                    if not state.queued_audio:
                        state.queued_audio = True
                        s.post(ReplyStarted(turn, s.clock.now()))
                    s.playback.append(turn, index, chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = (
                f"the voice did not answer within {timeout_s:.0f} s"
                if isinstance(exc, TimeoutError)
                else one_line(exc)
            )
            state.failed, state.error = Stage.TTS, message
            s.post(StageFailed(Stage.TTS, turn, message, s.clock.now()))
            return False
        finally:
            s.playback.end_piece(turn, index)
        return True

    # -- what the machine decided, as it reaches the turn ---------------------------------------

    def playback_started(self, at: float) -> None:
        self.record.playback_start_at = at

    def playback_finished(self, at: float) -> None:
        self.record.playback_end_at = at

    def stopped(self, heard_text: str) -> None:
        """Playback was cut: only `heard_text` was played."""
        record = self.record
        record.heard_text = heard_text
        if record.playback_start_at is not None and record.playback_end_at is None:
            record.playback_end_at = self._s.clock.now()

    def held(self, pausing: bool, at: float) -> None:
        """The reply was paused for speech over it (or resumed after it) at `at`."""
        if pausing:
            self.record.playback_pauses += 1
            self.record.paused_at = at
            self.record.hold_starts.append(at)
        else:
            self.record.playback_resumes += 1

    def barged_in(self, at: float) -> None:
        self.record.barge_in_at = at

    def failed(self, message: str) -> None:
        self.record.errors.append(message)

    def finish(self, outcome: str, at: float) -> TurnRecord | None:
        """Closes the record, commits what was heard to the history and logs the turn; returns
        the record, or None for the greeting (which is not a user's turn)."""
        s, record = self._s, self.record
        record.outcome = outcome
        if outcome in ("answered", "error"):
            record.heard_text = s.playback.heard_text(record.turn_id)
        if outcome != "merged":
            s.history.commit(record.user_text, record.heard_text)
        if outcome == "greeted":
            s.session.write("greeting", at=at, played_from=record.playback_start_at)
            return None
        s.session.write("turn", at=at, **record.as_log(s.session.t0 or 0.0))
        return record

    # -- the turn's task --------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._task = task
        task.add_done_callback(self._task_done)

    def release_task(self) -> asyncio.Task[None] | None:
        """Hands over the running task (to cancel it); the turn no longer tracks it."""
        task, self._task = self._task, None
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A bug, not a stage failure: say so, and let the watchdog bring the loop back.
            log.error("internal error in a turn task", exc_info=exc)
            self._s.on_error(f"internal error: {one_line(exc)}")
            self._s.session.write("internal_error", message=one_line(exc))


def _speech_end(
    services: TurnServices, endpoint_at: float, started_at: float, vad_end: float
) -> tuple[float, bool]:
    """The end of the user's speech, and whether it is the true one: the device's exact end
    where it knows one for this utterance (the virtual room), else VAD's estimate."""
    true_end = services.true_speech_end(endpoint_at)
    if true_end is not None and true_end >= started_at:
        return true_end, True
    return vad_end, False


def _transcribe(
    asr: SpeechRecognizer, audio: np.ndarray | RefitCopy, hotwords: list[str] | None
) -> Transcription:
    """A refit copy is cancelled here, in the recogniser's worker: its fit takes ~20 ms, off
    the event loop."""
    return asr.transcribe(audio.heard() if isinstance(audio, RefitCopy) else audio, hotwords)
