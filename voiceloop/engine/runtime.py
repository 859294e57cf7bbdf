"""The asyncio runtime: audio frames in, stage tasks out, the state machine in between.

A conversation is four parts on one event loop, each in its own module, read in this order:

- `listener.py`: each 10 ms frame → echo cancellation, VAD chunks, the endpointer → typed
  events (speech, playback, canceller convergence, a Tick);
- `dispatcher.py`: events → `machine.py` → actions, carried out by the turn they name;
- `turn.py`: one turn's recognition and reply (LLM → chunker → TTS → playback queue) and the
  TurnRecord only it writes;
- `audio/playback.py`: the queue the device pulls each speaker frame from.

This module builds them and runs the frame loop. Time comes from one `Clock` (`clock.py`):
the device's in real use, a stepped one in tests of the timing rules.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from voiceloop.aec.base import EchoCanceller
from voiceloop.asr.base import SpeechRecognizer, StreamingRecognizer
from voiceloop.audio.base import DuplexAudio
from voiceloop.audio.headroom import SpeakerHeadroom
from voiceloop.audio.playback import PlaybackQueue
from voiceloop.config import Settings
from voiceloop.config.settings import VadSettings
from voiceloop.engine.clock import Clock, DeviceClock
from voiceloop.engine.dispatcher import Dispatcher
from voiceloop.engine.events import Event, PartialTranscript, PushToTalk, TurnVerdictReady
from voiceloop.engine.judge import TurnJudge
from voiceloop.engine.listener import Listener
from voiceloop.engine.machine import REPLYING, ConversationMachine, MachineConfig
from voiceloop.engine.partials import PartialTranscriber
from voiceloop.engine.timing import TurnRecord
from voiceloop.engine.turn import TurnServices
from voiceloop.engine.wake_control import WakeControl, WakeHooks
from voiceloop.engine.wake_gate import WakeGate
from voiceloop.llm.base import ChatModel
from voiceloop.llm.history import ConversationHistory
from voiceloop.session.log import SessionLog
from voiceloop.tts.base import SpeechSynthesizer
from voiceloop.turn.base import TurnDetector
from voiceloop.vad.base import VoiceActivityDetector
from voiceloop.vad.endpointer import EndpointConfig, Endpointer
from voiceloop.wake.base import WakeWordDetector

# The session log has every turn; `finished_turns` keeps the recent ones for reports, bounded
# so a kiosk running for days does not grow.
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
    turn: TurnDetector | None = None  # None: turns end on the silence window alone
    wake: WakeWordDetector | None = None  # None: always awake (no `[loop] wake` words)
    partials: StreamingRecognizer | None = None  # asr.streaming: live text while the user speaks


def _no_turn(record: TurnRecord) -> None:
    pass


def _no_text(text: str) -> None:
    pass


def _no_transcript(turn_id: int, text: str) -> None:
    pass


def _no_verdict(verdict: TurnVerdictReady) -> None:
    pass


def _no_attention(attention: str, why: str) -> None:
    pass


def _no_partial(partial: PartialTranscript) -> None:
    pass


@dataclass
class Observer:
    """Hooks for whoever shows the conversation (the CLI's console, a test)."""

    on_turn: Callable[[TurnRecord], None] = _no_turn
    on_error: Callable[[str], None] = _no_text
    on_state: Callable[[str], None] = _no_text
    # As soon as a turn's words are known, before the reply: a live view shows them at once.
    on_transcript: Callable[[int, str], None] = _no_transcript
    # Each VAD stop the turn detector judged: a live view shows "listening… (incomplete 0.12)".
    on_verdict: Callable[[TurnVerdictReady], None] = _no_verdict
    # Kiosk mode: ("asleep" | "awake", why: the word, push_to_talk, attention_expired, start).
    on_attention: Callable[[str, str], None] = _no_attention
    # While the user speaks (asr.streaming): what the streaming model has heard so far.
    on_partial: Callable[[PartialTranscript], None] = _no_partial


def endpoint_config(vad: VadSettings) -> EndpointConfig:
    return EndpointConfig(
        threshold=vad.threshold,
        neg_threshold=vad.neg_threshold,
        start_ms=vad.start_ms,
        stop_ms=vad.stop_ms,
        preroll_ms=vad.preroll_ms,
        max_utterance_s=vad.max_utterance_s,
        speculate_ms=vad.speculate_ms if vad.speculate_ms < vad.stop_ms else 0,
    )


class Conversation:
    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        session: SessionLog,
        observer: Observer | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.session = session
        self.observer = observer or Observer()
        self.clock = clock or DeviceClock(pipeline.device)
        self.playback = PlaybackQueue()
        self.history = ConversationHistory(
            settings.llm.system_prompt, settings.llm.history_turns, settings.llm.history_tokens
        )
        self.finished_turns: deque[TurnRecord] = deque(maxlen=MAX_KEPT_TURNS)
        endpointing = endpoint_config(settings.vad)
        self.endpointer = Endpointer(endpointing)
        self.listener = Listener(
            pipeline.aec,
            pipeline.vad,
            self.endpointer,
            self.playback,
            session,
            emit=self.dispatch,
            muted=self._muted,
            wake=pipeline.wake,
            headroom=SpeakerHeadroom(settings.audio.headroom_step_db, settings.audio.min_volume_db),
            measure_echo_coherence=settings.turn.reads_echo_coherence,
            measure_mic_coherence=settings.turn.reads_mic_coherence,
            hand_on_reply_words=settings.turn.echo_words,
            keep_cut_copy=settings.turn.hear_cut_copy,
            keep_mic_copy=settings.turn.hear_mic_copy > 0,
            keep_refit_copy=settings.turn.hear_refit_copy,
        )
        loop_cfg, turn_cfg = settings.loop, settings.turn
        self.machine = ConversationMachine(
            MachineConfig(
                barge_in_min_s=loop_cfg.barge_in_min_ms / 1000,
                barge_in_warmup_min_s=loop_cfg.barge_in_warmup_min_ms / 1000,
                half_duplex=loop_cfg.half_duplex,
                watchdog_s=loop_cfg.watchdog_s,
                speak_errors=loop_cfg.speak_errors,
                echo_canceller_warmup=self.listener.needs_warmup,
                turn_detector=pipeline.turn is not None,
                turn_words=turn_cfg.name == "words" and turn_cfg.use_transcript,
                turn_ceiling_s=turn_cfg.ceiling_ms / 1000,
                turn_wait_s=turn_cfg.detector_wait_ms / 1000,
                turn_doubt_s=turn_cfg.doubt_ms / 1000,
                turn_pad_s=(endpointing.stop_ms - endpointing.speculate_ms) / 1000
                if endpointing.speculate_ms
                else 0.0,
                turn_reask_s=turn_cfg.reask_ms / 1000,
                incomplete_endings=frozenset(
                    word.lower() for word in turn_cfg.incomplete_endings if turn_cfg.use_transcript
                ),
                merge_window_s=turn_cfg.merge_window_ms / 1000,
                pause_on_speech=turn_cfg.pause_on_speech,
                hold_confidence=turn_cfg.hold_confidence,
                hold_min_s=turn_cfg.hold_min_ms / 1000,
                pause_words_min_s=turn_cfg.pause_words_min_ms / 1000,
                words_confidence=turn_cfg.words_confidence,
                unsure_coherence=turn_cfg.unsure_coherence,
                unsure_confidence=turn_cfg.unsure_confidence,
                echo_coherence=turn_cfg.echo_coherence,
                echo_coherence_with_mic=turn_cfg.echo_coherence_with_mic,
                mic_coherence=turn_cfg.mic_coherence,
                mic_coherence_alone=turn_cfg.mic_coherence_alone,
                echo_words=turn_cfg.echo_words,
                hear_cut_copy=turn_cfg.hear_cut_copy,
                hear_refit_copy=turn_cfg.hear_refit_copy,
                hear_mic_copy=turn_cfg.hear_mic_copy,
                backchannels=frozenset(word.lower() for word in turn_cfg.backchannels),
                backchannel_max_s=turn_cfg.backchannel_max_ms / 1000,
            )
        )
        services = TurnServices(
            settings=settings,
            clock=self.clock,
            asr=pipeline.asr,
            llm=pipeline.llm,
            tts=pipeline.tts,
            playback=self.playback,
            history=self.history,
            session=session,
            post=self.dispatch,
            true_speech_end=lambda before: pipeline.device.true_speech_end(before=before),
            on_transcript=lambda turn_id, text: self.observer.on_transcript(turn_id, text),
            on_error=lambda message: self.observer.on_error(message),
        )
        self.dispatcher = Dispatcher(
            self.machine,
            services,
            on_state=lambda state: self.observer.on_state(state),
            on_turn=self._turn_finished,
            judge=None if pipeline.turn is None else TurnJudge(pipeline.turn, self.clock, self.dispatch),
            on_verdict=lambda verdict: self.observer.on_verdict(verdict),
        )
        if pipeline.wake is not None:
            self.dispatcher.wake = WakeControl(
                WakeGate(loop_cfg.attention_s),
                self.machine,
                self.dispatcher.act,
                WakeHooks(
                    playback=self.playback,
                    session=session,
                    restart_utterance=self.listener.restart_utterance,
                    chime=loop_cfg.wake_confirm == "chime",
                    on_attention=lambda attention, why: self.observer.on_attention(attention, why),
                ),
            )
        self.partials = (
            None
            if pipeline.partials is None
            else PartialTranscriber(
                pipeline.partials,
                self.endpointer,
                self.clock,
                session,
                publish=lambda partial: self.observer.on_partial(partial),
                on_error=lambda message: self.observer.on_error(message),
                primer=pipeline.asr if hasattr(pipeline.asr, "reserve") else None,
            )
        )

    async def run(self) -> None:
        pipeline = self.pipeline
        device = pipeline.device
        self.session.start(
            self.clock.now(),
            device=device.name,
            aec=pipeline.aec.name,
            vad=pipeline.vad.name,
            asr=pipeline.asr.name,
            llm=getattr(pipeline.llm, "description", pipeline.llm.name),
            tts=pipeline.tts.name,
            turn=pipeline.turn.name if pipeline.turn is not None else "none",
            **({"wake": ",".join(pipeline.wake.words)} if pipeline.wake is not None else {}),
        )
        if self.dispatcher.wake is not None:
            self.dispatcher.wake.start(self.clock.now())
        for action in self.machine.greet(self.settings.loop.greeting):
            self.dispatcher.act(action)
        try:
            async for frame in device.frames(self.playback):
                self.listener.hear(frame)
        finally:
            if self.partials is not None:
                self.partials.close()
            await self.dispatcher.cancel_all()

    def dispatch(self, event: Event) -> None:
        if self.partials is not None:
            self.partials.observe(event)
        self.dispatcher.dispatch(event)

    def push_to_talk(self, source: str = "key") -> None:
        """A key or a button: opens a turn as the wake word would (asleep or not)."""
        self.dispatch(PushToTalk(self.clock.now(), source))

    def _muted(self) -> bool:
        """Half-duplex: the mic is ignored while the assistant replies."""
        return self.settings.loop.half_duplex and self.machine.state in REPLYING

    def _turn_finished(self, record: TurnRecord) -> None:
        self.finished_turns.append(record)
        self.observer.on_turn(record)
