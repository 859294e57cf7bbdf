"""The machine's states and its rules' settings, apart so that the machine's parts (machine.py,
over_reply.py) and whoever shows the state (the server's feed) share them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum


class State(str, Enum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    TRANSCRIBING = "transcribing"
    THINKING = "thinking"
    SPEAKING = "speaking"


REPLYING = (State.THINKING, State.SPEAKING)


@dataclass(frozen=True)
class EchoBand:
    """Held speech over a paused reply of which the reference explains at least `residual` of
    the canceller's residual and `mic` of the mic itself is the reply's own echo. A floor of 0
    reads nothing of its measure (not measured passes too): each coherence rule of
    `MachineConfig` is one band, and speech in any band is resumed unheard."""

    residual: float = 0.0
    mic: float = 0.0

    def takes(self, residual: float | None, mic: float | None) -> bool:
        return _reaches(residual, self.residual) and _reaches(mic, self.mic)


def _reaches(measured: float | None, floor: float) -> bool:
    return floor <= 0 or (measured is not None and measured >= floor)


@dataclass(frozen=True)
class MachineConfig:
    barge_in_min_s: float = 0.25
    barge_in_warmup_min_s: float = 1.5  # until the echo canceller has converged
    half_duplex: bool = False  # ignore the mic while replying (machines with no usable AEC)
    watchdog_s: float = 30.0
    speak_errors: bool = True
    # The canceller needs playback to converge (speex): until EchoCancellerConverged arrives,
    # speech over a reply may be its residual echo.
    echo_canceller_warmup: bool = False
    # End of turn ([turn]): with a detector, each VAD stop is only a question (AskTurnDetector);
    # "complete" ends the turn, "incomplete" keeps listening, `turn_ceiling_s` of silence ends
    # it regardless. Without one, the VAD stop is the end, as it always was.
    turn_detector: bool = False
    # Without a detector: the transcript alone holds a stop whose words trail off ("words").
    turn_words: bool = False
    turn_ceiling_s: float = 2.0
    # Words that sound complete wait this long for the detector's verdict, then end the turn;
    # a verdict of "incomplete" on them ends it after `turn_doubt_s` of silence.
    turn_wait_s: float = math.inf
    turn_doubt_s: float = math.inf
    turn_pad_s: float = 0.0  # asked at the pause: the silence still to come before the VAD stop
    turn_reask_s: float = 0.0  # asked again after this much more silence; 0 = only at stops
    incomplete_endings: frozenset[str] = frozenset()  # words that overrule "complete"; empty = off
    merge_window_s: float = 0.0  # speech this soon after an endpoint continues that turn
    pause_on_speech: bool = False  # hold a reply at once while the user may be interrupting
    # While it plays, only an onset VAD is this sure of holds it at once; a less certain one
    # once this much of it is voiced (still before a barge-in's minimum: its words decide).
    hold_confidence: float = 0.0
    hold_min_s: float = 0.0
    # While held, speech shorter than `pause_words_min_s` (or a barge-in, if that is shorter)
    # resumes the reply; longer speech is transcribed and resumes it if its words are only
    # these (or none); past `backchannel_max_s` it stops it.
    pause_words_min_s: float = 0.08
    # Over a playing reply, held speech VAD was never this sure of is taken for the reply's own
    # echo: it resumes the reply without asking the recogniser for its words (0 = off).
    words_confidence: float = 0.0
    unsure_coherence: float = 0.0  # ...where the reference explains this much of the residual
    unsure_confidence: float = 0.0  # ...or VAD was not even this sure of it
    # ...and held speech of which the reference explained this much (SpeechEnded.echo_coherence)
    # is the reply's echo too, however sure VAD was (0 = off).
    echo_coherence: float = 0.0
    # ...or at least `echo_coherence_with_mic` of it, where the reference explained
    # `mic_coherence` of the mic itself (SpeechEnded.mic_coherence) too (0 = off).
    echo_coherence_with_mic: float = 0.0
    mic_coherence: float = 0.0
    # ...or, over a paused reply, where the reference explained this much of the mic itself,
    # whatever it explained of the residual (0 = off).
    mic_coherence_alone: float = 0.0
    # ...and held speech whose words are the ones the speaker sounded meanwhile, in a row
    # (SpeechEnded.reply_words): the recogniser heard the reply's echo (engine/own_words.py).
    echo_words: bool = False
    # Held speech over a reply that the recogniser heard as nothing is heard again as the
    # canceller cut it (SpeechEnded.cut_audio): after a walk the uncut copy holds the echo.
    hear_cut_copy: bool = False
    # ...and where that too is nothing, the mic's copy cancelled again by a filter fitted to the
    # seconds before it (SpeechEnded.refit_copy), where VAD was words_confidence sure of it...
    hear_refit_copy: bool = False
    # ...or, where there is no such copy, as the mic took it (SpeechEnded.mic_audio), where the
    # reference explains less than this of the mic (SpeechEnded.mic_coherence; 0 = off). Speech
    # VAD was never words_confidence sure of is not heard so, and heard cut only under it.
    hear_mic_copy: float = 0.0
    backchannels: frozenset[str] = frozenset()
    backchannel_max_s: float = 1.0

    @property
    def echo_bands(self) -> tuple[EchoBand, ...]:
        """The three coherence rules above as one table, those that are on: the residual
        rule, the pair rule and the mic rule."""
        bands = (
            (self.echo_coherence, EchoBand(residual=self.echo_coherence)),
            (self.echo_coherence_with_mic, EchoBand(self.echo_coherence_with_mic, self.mic_coherence)),
            (self.mic_coherence_alone, EchoBand(mic=self.mic_coherence_alone)),
        )
        return tuple(band for on, band in bands if on > 0)
