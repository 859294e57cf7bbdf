"""The conversation state machine: events in, actions out, nothing else.

No audio, no clock, no I/O: the runtime feeds it events stamped with loop time and carries
out the actions it returns, and tests drive it directly. The rules come from the peers' bug
trackers (see DESIGN.md): user speech during THINKING counts as much as during SPEAKING; a
barge-in needs a minimum of voiced time so a cough does not cancel the reply; every path out
of a turn ends in LISTENING (or USER_SPEAKING when the user is already talking), never in a
silent dead end.
"""

from __future__ import annotations

from voiceloop.engine.ending import HeldUtterance
from voiceloop.engine.events import (
    Action,
    AskTurnDetector,
    CancelReply,
    CancelTranscription,
    EchoCancellerConverged,
    EndpointReached,
    Event,
    FinishTurn,
    PlaybackFinished,
    PlaybackProgress,
    PlaybackStarted,
    ReplyFinished,
    ReplyStarted,
    ReportError,
    SpeechEnded,
    SpeechPaused,
    SpeechProgress,
    SpeechStarted,
    Stage,
    StageFailed,
    StartReply,
    StartTranscription,
    StopPlayback,
    Tick,
    Transcript,
    TurnVerdictReady,
)
from voiceloop.engine.messages import error_notice
from voiceloop.engine.over_reply import OverReply
from voiceloop.engine.states import REPLYING, MachineConfig, State
from voiceloop.engine.wake_restart import WakeRestart

__all__ = ["REPLYING", "ConversationMachine", "MachineConfig", "State"]


class ConversationMachine(OverReply, WakeRestart):
    def __init__(self, config: MachineConfig | None = None) -> None:
        self.config = config or MachineConfig()
        self.state = State.LISTENING
        self.turn_id = 0  # the turn being transcribed or replied to; 0 before the first
        self._progress_at: float | None = None
        self._candidate_at: float | None = None  # onset of user speech heard while busy
        self._queued_utterance: SpeechEnded | None = None  # finished while transcribing
        self._pending_user_text = ""  # said before a pause the user then talked through
        self._reply_error: str | None = None
        self._reply_is_notice = False
        self._current_user_text = ""
        self._notice_outcome = "error"
        self._canceller_converged = not self.config.echo_canceller_warmup
        self._greeted = False
        self._drop_utterance = False  # the one under way began as echo we could not rule out
        self._speculative_turn: int | None = None  # transcribing a pause that may be the end
        self._early_result: Transcript | StageFailed | None = None
        self._speculated_samples = 0  # how much of the utterance the speculation heard
        self._reserved_turn: int | None = None  # id of a speculation the user talked through
        self._ending = HeldUtterance(
            self.config.turn_ceiling_s,
            self.config.incomplete_endings,
            self.config.turn_reask_s,
            wait_s=self.config.turn_wait_s,
            doubt_s=self.config.turn_doubt_s,
            detector=self.config.turn_detector,
        )
        self._endpoint_at: float | None = None  # of the turn now transcribed or replied to
        self._paused = False  # the reply is held while the user talks over it
        self._merged_turns: list[int] = []  # turns whose words open the next user message
        self._probe: tuple[int, SpeechEnded] | None = None  # speech over a held reply, transcribing

    # -- entry point ---------------------------------------------------------------------------

    @property
    def echo_canceller_converged(self) -> bool:
        return self._canceller_converged

    def handle(self, event: Event) -> list[Action]:
        if isinstance(event, Tick):
            return self._on_tick(event)
        if isinstance(event, PlaybackProgress):
            # Playback moving counts as progress, so a long reply is not mistaken for a hang.
            if self._progress_at is not None:
                self._progress_at = max(self._progress_at, event.at)
            return []
        if isinstance(event, EchoCancellerConverged):
            self._canceller_converged = True
            return []
        if isinstance(event, SpeechStarted | SpeechProgress | SpeechPaused | SpeechEnded):
            return self._on_user_audio(event)
        if isinstance(event, TurnVerdictReady):
            decided = self._ending.verdict(event.ask, event.complete, event.error, event.at)
            return self._end_held(event.at, decided) if decided else []
        if isinstance(event, Transcript | StageFailed) and self._probe and event.turn_id == self._probe[0]:
            return self._on_probe(event)
        if isinstance(event, Transcript | StageFailed) and event.turn_id == self._speculative_turn:
            if self._ending.held is not None and self._heard_too_little(event, self._ending.held):
                return self._transcribe_again(self._ending.held)
            self._early_result = event  # held until the stop window confirms the end
            decided = self._ending.words(event, event.at) if self._ending.held is not None else None
            return self._end_held(event.at, decided) if decided else []
        if getattr(event, "turn_id", None) != self.turn_id:
            return []  # a late event from a turn already finished or cancelled
        self._progress_at = event.at
        if isinstance(event, Transcript):
            return self._on_transcript(event)
        if isinstance(event, ReplyStarted):
            return []
        if isinstance(event, PlaybackStarted):
            if self.state is State.THINKING:
                self.state = State.SPEAKING
            return []
        if isinstance(event, StageFailed):
            return self._on_stage_failed(event)
        if isinstance(event, ReplyFinished):
            return self._on_reply_finished(event)
        if isinstance(event, PlaybackFinished):
            if self.state in REPLYING:
                return self._finish_reply(event.at)
            return []
        raise TypeError(f"unknown event {event!r}")

    # -- user speech ---------------------------------------------------------------------------

    def _on_user_audio(
        self, event: SpeechStarted | SpeechProgress | SpeechPaused | SpeechEnded
    ) -> list[Action]:
        busy = self.state in (State.TRANSCRIBING, *REPLYING)
        if busy and self.config.half_duplex and self.state in REPLYING:
            return []
        if isinstance(event, SpeechStarted):
            self._drop_utterance = False
            if self.state is State.LISTENING:
                self.state = State.USER_SPEAKING
            elif self._ending.held is not None:
                self._ending.go_on()  # a pause, not the end: the parts become one utterance
                return self._drop_speculation() if self._speculative_turn is not None else []
            elif busy:
                self._candidate_at = event.at
                return self._pause_reply(event.at, confidence=event.peak_probability)
            return []
        if isinstance(event, SpeechProgress):
            held: list[Action] = []
            if self.state in REPLYING and self._candidate_at is not None and not self._paused:
                # The canceller converged since the onset, or VAD is surer, or it lasted longer.
                held = self._pause_reply(event.at, event.voiced_s, event.peak_probability)
            if self.state in REPLYING and self._is_barge_in(event.voiced_s):
                if self._paused and event.voiced_s < self.config.backchannel_max_s:
                    return held  # the reply is held: its words decide, once it ends
                return [*held, *self._barge_in(event.at)]
            if held:
                return held
            if self.state is State.USER_SPEAKING and self._speculative_turn is not None:
                self._ending.talked_on()
                return self._drop_speculation()  # it was only a pause: the user went on
            return []
        if isinstance(event, SpeechPaused):
            if self.state is State.USER_SPEAKING and self._speculative_turn is None:
                return self._speculate(event)
            return []
        # SpeechEnded
        if self._drop_utterance and self.state is State.LISTENING:
            self._drop_utterance = False
            return []
        if self.state in (State.USER_SPEAKING, State.LISTENING):
            if (self.config.turn_detector or self.config.turn_words) and not event.truncated:
                return self._hold(event)
            ended = self._ending.take(event)
            if self._speculative_turn is not None and self._heard_too_little(self._early_result, ended):
                return [*self._drop_speculation(), *self._start_transcription(ended)]
            if self._speculative_turn is not None:
                return self._confirm_speculation(ended, ended.detected_at)
            return self._start_transcription(ended)
        was_candidate = self._candidate_at is not None
        self._candidate_at = None
        if self.state is State.TRANSCRIBING and was_candidate:
            if event.at - event.started_at >= self.config.barge_in_min_s:
                self._queued_utterance = event  # more words, said while we transcribed
        return self._speech_over_reply_ended(event)

    # -- the end of a turn, with a turn detector -------------------------------------------------

    def _hold(self, event: SpeechEnded) -> list[Action]:
        """A VAD stop: transcribe what was said (if the pause did not already start it) and ask
        the detector whether that was all, both at once."""
        ended, ask_now = self._ending.hold(event)
        actions: list[Action] = []
        if self._speculative_turn is not None and self._heard_too_little(self._early_result, ended):
            actions += self._drop_speculation()
        if self._speculative_turn is None:
            self.turn_id = self._next_turn_id()
            self._speculative_turn = self.turn_id
            self._early_result = None
            actions.append(self._transcription(ended, endpoint_at=ended.detected_at, speculative=True))
        if ask_now:
            actions.append(AskTurnDetector(self.turn_id, self._ending.ask, ended.audio, ended.detected_at))
        if self._early_result is not None:  # the words came inside the stop window
            decided = self._ending.words(self._early_result, ended.detected_at)
        else:
            decided = self._ending.decide(ended.detected_at)
        if decided:
            actions += self._end_held(ended.detected_at, decided)
        return actions

    def _end_held(self, at: float, decided_by: str) -> list[Action]:
        return self._confirm_speculation(self._ending.release(), at, decided_by)

    def greet(self, text: str) -> list[Action]:
        """Speaks a greeting as turn 0: it also lets the echo canceller converge before the
        user's first words."""
        if self.state is not State.LISTENING or self.turn_id != 0 or self._greeted or not text.strip():
            return []
        self._greeted = True
        return self._start_notice(text, outcome="greeted")

    def _next_turn_id(self) -> int:
        turn, self._reserved_turn = self._reserved_turn, None
        return turn if turn is not None else self.turn_id + 1

    def _speculate(self, paused: SpeechPaused) -> list[Action]:
        self.turn_id = self._next_turn_id()
        self._speculative_turn = self.turn_id
        self._early_result = None
        joined = self._ending.paused(paused)
        actions: list[Action] = [self._transcription(joined, endpoint_at=paused.paused_at, speculative=True)]
        if self.config.turn_detector and self.config.turn_pad_s > 0:
            # Judged as the stop will hear it: the stop window's silence still to come added.
            ask = self._ending.ask_at_pause()
            actions.append(
                AskTurnDetector(self.turn_id, ask, joined.audio, paused.paused_at, self.config.turn_pad_s)
            )
        return actions

    def _heard_too_little(self, early: Transcript | StageFailed | None, ended: SpeechEnded) -> bool:
        """No words from audio cut at the pause, when the stop holds more of it: the recogniser
        heard the utterance without its last sound and the silence after (pocketsphinx heard
        "thanks" cut 100 ms after its "s" as nothing, and the whole of it, 200 ms, as "thanks")."""
        no_words = isinstance(early, Transcript) and not early.text.strip()
        return no_words and len(ended.audio) > self._speculated_samples

    def _transcribe_again(self, held: SpeechEnded) -> list[Action]:
        """The held stop, transcribed whole: it replaces a speculation that heard no words."""
        actions = self._drop_speculation()
        self.turn_id = self._next_turn_id()
        self._speculative_turn = self.turn_id
        return [*actions, self._transcription(held, endpoint_at=held.detected_at, speculative=True)]

    def _transcription(
        self, speech: SpeechPaused | SpeechEnded, endpoint_at: float, speculative: bool
    ) -> StartTranscription:
        self._speculated_samples = len(speech.audio)
        return StartTranscription(
            turn_id=self.turn_id,
            audio=speech.audio,
            speech_started_at=speech.started_at,
            speech_end_at=speech.at,
            endpoint_at=endpoint_at,
            speculative=speculative,
        )

    def _drop_speculation(self) -> list[Action]:
        turn = self._speculative_turn
        assert turn is not None
        self._speculative_turn = None
        self._early_result = None
        self._reserved_turn = turn  # reused, so turn numbers have no gaps
        return [CancelTranscription(turn)]

    def _confirm_speculation(
        self, ended: SpeechEnded, at: float, decided_by: str = "silence"
    ) -> list[Action]:
        turn = self._speculative_turn
        assert turn is not None
        early, self._early_result = self._early_result, None
        self._speculative_turn = None
        self.state = State.TRANSCRIBING
        self._progress_at = at
        self._endpoint_at = at
        self._candidate_at = None
        actions: list[Action] = [EndpointReached(turn, ended.at, ended.detected_at, decided_by)]
        if isinstance(early, Transcript):
            actions += self._on_transcript(early)
        elif isinstance(early, StageFailed):
            actions += self._on_stage_failed(early)
        return actions

    def _start_transcription(self, ended: SpeechEnded) -> list[Action]:
        self.turn_id = self._next_turn_id()
        self.state = State.TRANSCRIBING
        self._progress_at = ended.detected_at
        self._endpoint_at = ended.detected_at
        self._candidate_at = None
        return [self._transcription(ended, endpoint_at=ended.detected_at, speculative=False)]

    # -- stage results -------------------------------------------------------------------------

    def _on_transcript(self, event: Transcript) -> list[Action]:
        if self.state is not State.TRANSCRIBING:
            return []
        text = " ".join(part for part in (self._pending_user_text, event.text.strip()) if part)
        if self._candidate_at is not None:
            # The user is talking again: hold this text and let the utterance go on.
            self._pending_user_text = text
            self._merged_turns.append(self.turn_id)
            self.state = State.USER_SPEAKING
            return [FinishTurn(self.turn_id, "merged", event.at)]
        queued, self._queued_utterance = self._queued_utterance, None
        if queued is not None:
            self._pending_user_text = text
            self._merged_turns.append(self.turn_id)
            return [FinishTurn(self.turn_id, "merged", event.at), *self._start_transcription(queued)]
        self._pending_user_text = ""
        if not text:
            self._merged_turns = []
            return self._end_turn("no_speech", event.at)
        return self._start_reply(user_text=text)

    def _start_reply(self, user_text: str, notice: bool = False) -> list[Action]:
        self.state = State.THINKING
        self._current_user_text = user_text
        self._reply_error = None
        self._reply_is_notice = notice
        merged, self._merged_turns = tuple(self._merged_turns), []
        return [StartReply(self.turn_id, user_text, merged_from=merged)]

    def _on_stage_failed(self, event: StageFailed) -> list[Action]:
        if self.state is State.TRANSCRIBING:
            notice = error_notice(event.stage, reply_began=False) if self.config.speak_errors else None
            report = ReportError(event.stage, event.turn_id, event.message, speak=notice is not None)
            if notice is not None:
                # The error is spoken as a notice reply, so it flows through the same
                # playback, barge-in and watchdog paths as any reply.
                self._pending_user_text = ""
                self._merged_turns = []
                return [report, *self._start_notice(notice)]
            return [report, *self._end_turn("error", event.at)]
        if self.state in REPLYING:
            # The reply task speaks its own short error, by the same rule (`error_notice`),
            # once it knows whether any of the reply was queued before the failure.
            self._reply_error = event.message
            return [ReportError(event.stage, event.turn_id, event.message, speak=False)]
        return []

    def _start_notice(self, text: str, outcome: str = "error") -> list[Action]:
        self.state = State.THINKING
        self._current_user_text = ""
        self._reply_error = None
        self._reply_is_notice = True
        self._notice_outcome = outcome
        return [StartReply(self.turn_id, user_text="", notice=text)]

    def _on_reply_finished(self, event: ReplyFinished) -> list[Action]:
        if event.error:
            self._reply_error = event.error
        if self.state in REPLYING and not event.queued_audio:
            return self._finish_reply(event.at)
        return []

    def _finish_reply(self, at: float) -> list[Action]:
        if self._reply_is_notice:
            outcome = self._notice_outcome
        else:
            outcome = "error" if self._reply_error else "answered"
        return self._end_turn(outcome, at)

    def _end_turn(self, outcome: str, at: float) -> list[Action]:
        # If the user started talking during the reply and has not stopped, their utterance
        # is already under way: keep listening to it rather than dropping its onset. Unless
        # the echo canceller has not converged yet: then it is most likely the reply's own
        # echo tail, and transcribing it would answer ourselves.
        talking = self._candidate_at is not None
        self._drop_utterance = talking and not self._canceller_converged
        self.state = State.USER_SPEAKING if talking and not self._drop_utterance else State.LISTENING
        self._candidate_at = None
        self._progress_at = None
        self._paused = False
        return [FinishTurn(self.turn_id, outcome, at)]

    # -- time ------------------------------------------------------------------------------------

    def _on_tick(self, tick: Tick) -> list[Action]:
        if self._ending.due(tick.at):
            return self._end_held(tick.at, "ceiling")  # silence long enough, whatever was judged
        if (decided := self._ending.decide(tick.at)) is not None:
            return self._end_held(tick.at, decided)  # the detector's budget or the doubt ran out
        if self._ending.reask(tick.at) and (held := self._ending.held) is not None:
            silence = tick.at - held.detected_at
            return [AskTurnDetector(self.turn_id, self._ending.ask, held.audio, tick.at, silence)]
        if self.state not in (State.TRANSCRIBING, *REPLYING) or self._progress_at is None:
            return []
        if tick.at - self._progress_at < self.config.watchdog_s:
            return []
        turn = self.turn_id
        message = f"no progress for {self.config.watchdog_s:.0f} s in {self.state.value}; listening again"
        return [
            ReportError(Stage.AUDIO, turn, message, speak=False),
            StopPlayback(turn),
            CancelReply(turn),
            *self._end_turn("timeout", tick.at),
        ]
