"""User speech over a reply: held at once, then resumed, stopped, or merged into the last turn.

The machine's rules for the moments when the user talks while the assistant replies (THINKING
or SPEAKING), as a part of `ConversationMachine` kept in its own module. Speech over a reply
pauses it at once (`pause_on_speech`, once the canceller can tell it from our echo); speech
shorter than a barge-in resumes it; longer speech is transcribed and resumes it if its words
are only backchannels ("mhm", "yeah okay"), none, or the reply's own, sounding at that moment
(its echo, engine/own_words.py); real words stop it and are the next turn at once; speech past
`backchannel_max_s` stops it without waiting for its words. A barge-in in THINKING, or within
the merge window after the endpoint, is the same turn going on: the reply is dropped and the
words join the next user message.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from voiceloop.aec.refit import RefitCopy
from voiceloop.engine.ending import is_backchannel, join
from voiceloop.engine.events import (
    Action,
    BargeIn,
    CancelReply,
    CancelTranscription,
    FinishTurn,
    HeardAgain,
    PausePlayback,
    ResumePlayback,
    SpeechEnded,
    StageFailed,
    StartTranscription,
    StopPlayback,
    Transcript,
)
from voiceloop.engine.own_words import said_by_us
from voiceloop.engine.states import REPLYING, MachineConfig, State


class OverReply:
    """A part of ConversationMachine: these attributes and methods are the machine's own."""

    config: MachineConfig
    state: State
    turn_id: int
    _candidate_at: float | None
    _canceller_converged: bool
    _reply_is_notice: bool
    _pending_user_text: str
    _current_user_text: str
    _merged_turns: list[int]
    _endpoint_at: float | None
    _reserved_turn: int | None
    _paused: bool
    _probe: tuple[int, SpeechEnded] | None

    def _next_turn_id(self) -> int:
        raise NotImplementedError

    def _on_transcript(self, event: Transcript) -> list[Action]:
        raise NotImplementedError

    def _pause_reply(self, at: float, voiced_s: float = 0.0, confidence: float = 1.0) -> list[Action]:
        """Holds the reply the moment the user may be interrupting; a barge-in then stops it, a
        backchannel resumes it. Not while the canceller may still be hearing our own echo.

        While the reply plays, residual echo that VAD hears as speech holds it too, and the
        reply stops mid-word until that "speech" ends (bench_bargein's echo holds: ~1 per reply
        in person-walks and clipping-10db). Silero was rarely sure of that echo (its chunks
        0.5-0.8, where the user's onset reached 0.95 within two chunks), so with
        `hold_confidence` set an onset it is not sure of waits until it has lasted `hold_min_s`:
        most echo has ended by then. Off by default: a user's short word under the loudest echo
        is never sure either, and goes unheld and unheard (README, echo section)."""
        if not self.config.pause_on_speech or self._paused or self.config.half_duplex:
            return []
        if self.state is not State.SPEAKING and self.state is not State.THINKING:
            return []
        if self.state is State.SPEAKING and not self._canceller_converged:
            return []
        config = self.config
        # Never later than a barge-in's minimum: speech that long unheld would stop the reply
        # unheard, where held its words decide.
        hold_min_s = min(config.hold_min_s, config.barge_in_min_s)
        if self.state is State.SPEAKING and confidence < config.hold_confidence and voiced_s < hold_min_s:
            return []
        self._paused = True
        return [PausePlayback(self.turn_id, at)]

    def _speech_over_reply_ended(self, ended: SpeechEnded) -> list[Action]:
        """In THINKING/SPEAKING a short blip (a cough, "mhm") ends here: the reply never
        stopped, so it simply goes on (from where it was held, if it was).

        Over a held reply the words decide from `pause_words_min_s` on, shorter than a
        barge-in: a "stop" said over a loud echo is heard by VAD for only ~0.15-0.25 s (the
        suppressors cut its onset with the echo, and the reply pauses ~0.1 s into it), and
        resumed unheard it was most of bench_bargein's misses (README, echo section)."""
        if not self._paused or self.state not in REPLYING:
            return []
        words_min_s = min(self.config.pause_words_min_s, self.config.barge_in_min_s)
        if ended.at - ended.started_at < words_min_s:
            why = f"too short for words ({ended.at - ended.started_at:.2f} s)"
        else:
            why = self._sounds_like_our_echo(ended)
            if not why:
                return self._transcribe_over_reply(ended)
        self._paused = False
        return [ResumePlayback(self.turn_id, ended.detected_at, why)]

    def _sounds_like_our_echo(self, ended: SpeechEnded) -> str:
        """Held speech over a playing reply that VAD was never sure was a voice, or that the
        reference explains (`MachineConfig.echo_bands`).

        The canceller's residual echo is the reply's own voice, so the recogniser may hear it
        as a phrase (bench_bargein's false barge-ins: "thank you" from 0.22-0.32 s of the
        reply's echo), but silero is rarely sure of it, and almost always of a user talking
        over the reply (`words_confidence`); a user's short "stop" may peak just under that bar,
        but the reference explains little of it (`unsure_coherence`), and VAD was nearly sure of
        it (`unsure_confidence`: the echo blips heard as words under the bar peaked at
        0.52-0.63, the users at 0.67-0.93). Except where the path
        changed: the residual is then the reply's voice, clear, and silero sure of it; but the
        reference explains it (`echo_coherence`, aec/coherence.py), where it explains little of
        a user; or explains it partly, the mic being mostly the reply's too
        (`echo_coherence_with_mic`), where a user the reply paused for is most of the mic; or
        the mic alone is plainly the reply's (`mic_coherence_alone`), the filter having left its
        echo unexplained. Earlier words still waiting for their transcript ("wait, … stop") are
        the user's: those are not second-guessed. Why it sounds like our echo, or "" where it
        does not."""
        if self.state is not State.SPEAKING or self._probe is not None:
            return ""
        residual = ended.echo_coherence
        # A user's short word may peak just under the bar too: theirs is what the reference
        # leaves unexplained. Not measured, it is taken for the echo as it always was; and so
        # is speech VAD was far from sure of, whatever the reference explains.
        unexplained = (
            residual is not None
            and residual < self.config.unsure_coherence
            and ended.peak_probability >= self.config.unsure_confidence
        )
        if ended.peak_probability < self.config.words_confidence and not unexplained:
            return f"VAD never sure (peak {ended.peak_probability:.2f})"
        mic = ended.mic_coherence
        if any(band.takes(residual, mic) for band in self.config.echo_bands):
            return f"the reference explains it (residual {_shown(residual)}, mic {_shown(mic)})"
        return ""

    def _transcribe_over_reply(self, ended: SpeechEnded) -> list[Action]:
        """Speech long enough to be words, over a held reply: what it says decides."""
        actions: list[Action] = []
        if self._probe is not None:  # "wait, … stop": the earlier words go with these
            earlier, before = self._probe
            self._reserved_turn = earlier
            actions.append(CancelTranscription(earlier))
            ended = join(before, ended)
        probe = self._next_turn_id()
        self._probe = (probe, ended)
        speech = StartTranscription(probe, ended.audio, ended.started_at, ended.at, ended.detected_at)
        return [*actions, speech]

    def _copy_to_hear_again(
        self, result: Transcript | StageFailed, ended: SpeechEnded
    ) -> tuple[HeardAgain, np.ndarray | RefitCopy, SpeechEnded] | None:
        """No words in the recogniser's copy of held speech over the reply: the next copy there
        is, with what is left to hear after it. First as the canceller cut it per band
        (`hear_cut_copy`): after a walk the filter leaves the echo louder than the path watch
        acts on, and the uncut copy of a "stop" holds it; the cut keeps the bands the user
        dominates. Then the mic's copy, cancelled again by a filter fitted to the seconds of
        echo before it (`hear_refit_copy`, aec/refit.py): in the seconds after a walk the
        adaptive filter has not yet learnt the new room, and both of its copies may hold the
        echo over the user, while a fit to those seconds has it. Heard in place of the mic's
        own copy: over bench_bargein's kept sessions it gave words to every user the mic's copy
        did and to neither echo blip that copy heard as a phrase (README). Else (the canceller
        keeps no such seconds) as the mic took it (`hear_mic_copy`): the
        reply paused ~0.1 s into the user's word and the mic holds the rest of it alone. Only
        where the reference explains little of the mic: an echo blip's mic is the reply's voice,
        clear, and a recogniser held to phrases forces it into one (bench_bargein: users heard
        there read 0.01-0.45, echo blips 0.48-0.62, README). Nor for speech VAD was never sure
        of (`unsure_coherence` let it be heard): a walk's echo blip, its mic 0.451, was heard
        there as "how are you" (bench_bargein person-walks, seed 917); and such speech is heard
        as cut only where the reference explains little of the mic, as for the mic's copy: an
        echo blip, its mic 0.578, was heard cut as "goodbye" (mandarin-10db-walks, seed 946),
        where the unsure users heard cut read 0.14-0.18."""
        if not isinstance(result, Transcript) or result.text.strip() or self.state not in REPLYING:
            return None
        mic, below = ended.mic_coherence, self.config.hear_mic_copy
        sure = ended.peak_probability >= self.config.words_confidence
        not_the_reply = mic is not None and mic < below
        if self.config.hear_cut_copy and ended.cut_audio is not None and (sure or not_the_reply):
            return "cut", ended.cut_audio, replace(ended, cut_audio=None)
        if self.config.hear_refit_copy and ended.refit_copy is not None and sure:
            return "refit", ended.refit_copy, replace(ended, cut_audio=None, refit_copy=None, mic_audio=None)
        if ended.mic_audio is not None and not_the_reply and sure:
            return "mic", ended.mic_audio, replace(ended, cut_audio=None, mic_audio=None)
        return None

    def _on_probe(self, result: Transcript | StageFailed) -> list[Action]:
        assert self._probe is not None
        (probe, ended), self._probe = self._probe, None
        text = result.text if isinstance(result, Transcript) else ""
        copy = self._copy_to_hear_again(result, ended)
        if copy is not None:
            name, audio, left = copy
            self._probe = (probe, left)  # each copy is heard once at most
            again = StartTranscription(
                probe, audio, ended.started_at, ended.at, ended.detected_at, heard_again=name
            )
            return [CancelTranscription(probe), again]
        our_words = self.config.echo_words and said_by_us(text, ended.reply_words)
        if (
            is_backchannel(text, self.config.backchannels)
            or our_words
            or self.state not in (*REPLYING, State.LISTENING)
        ):
            # "mhm", "yeah okay", a cough, the reply's own words heard back: the reply plays on
            # (or the user is talking again).
            self._reserved_turn = probe
            resume = self._paused and self.state in REPLYING
            self._paused = False
            return [
                CancelTranscription(probe),
                *(
                    [ResumePlayback(self.turn_id, result.at, _why_played_on(result, our_words))]
                    if resume
                    else []
                ),
            ]
        actions: list[Action] = []
        if self.state in REPLYING:  # real words: the reply stops, and they are the next turn
            self._candidate_at = ended.started_at
            actions = self._barge_in(result.at)
        self.turn_id, self.state = probe, State.TRANSCRIBING
        self._endpoint_at = ended.detected_at
        self._candidate_at = None
        return [*actions, *self._on_transcript(result)] if isinstance(result, Transcript) else actions

    def _is_barge_in(self, voiced_s: float) -> bool:
        # The warm-up rule guards against our own echo: it only matters once audio is playing.
        if self._canceller_converged or self.state is State.THINKING:
            needed = self.config.barge_in_min_s
        else:
            needed = max(self.config.barge_in_min_s, self.config.barge_in_warmup_min_s)
        return self._candidate_at is not None and voiced_s >= needed

    def _barge_in(self, at: float) -> list[Action]:
        turn = self.turn_id
        if not self._reply_is_notice and (self.state is State.THINKING or self._continues_turn()):
            # Nothing (or hardly anything) was heard yet: the user paused mid-thought and went
            # on. Their words so far join the next utterance instead of being answered stale.
            self._pending_user_text = self._current_user_text
            self._merged_turns.append(turn)
            outcome = "merged"
        else:
            outcome = "interrupted"
        self._candidate_at = None
        self._paused = False
        self.state = State.USER_SPEAKING
        return [
            BargeIn(turn, at),
            StopPlayback(turn),
            CancelReply(turn),
            FinishTurn(turn, outcome, at),
        ]

    def _continues_turn(self) -> bool:
        """Speech that began within the merge window after the endpoint goes on with that turn."""
        window = self.config.merge_window_s
        if not window or self._endpoint_at is None or self._candidate_at is None:
            return False
        return self._candidate_at - self._endpoint_at <= window


def _why_played_on(result: Transcript | StageFailed, our_words: bool) -> str:
    if isinstance(result, StageFailed):
        return f"the recogniser failed ({result.message})"
    if our_words:
        return f"the reply's own words ({result.text.strip()!r})"
    return f"a backchannel ({result.text.strip()!r})" if result.text.strip() else "no words"


def _shown(measured: float | None) -> str:
    return "not measured" if measured is None else f"{measured:.2f}"
