"""Typed events into the state machine and actions out of it.

Small frozen dataclasses, in the manner of Wyoming's events: each names one thing that
happened (or must happen) and carries the times the measurements need. Times are seconds on
the loop clock (`asyncio` loop time), the same clock the audio device stamps frames with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

import numpy as np

from voiceloop.aec.refit import RefitCopy


class Stage(str, Enum):
    AUDIO = "audio"
    VAD = "vad"
    ASR = "asr"
    LLM = "llm"
    TTS = "tts"


# ---- events: from the endpointer ------------------------------------------------------------


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # onset of the voiced audio (not when it was detected)
    peak_probability: float = 1.0  # VAD's most confident chunk since the onset


@dataclass(frozen=True)
class SpeechProgress:
    voiced_s: float  # voiced time since the onset, pauses excluded
    at: float
    peak_probability: float = 1.0


@dataclass(frozen=True)
class SpeechPaused:
    """Part of the stop window has passed: likely the end, so transcription may start early."""

    at: float  # end of the last voiced audio
    started_at: float
    paused_at: float
    audio: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class SpeechEnded:
    at: float  # the end of the last voiced chunk: VAD's estimate of the end of speech
    started_at: float
    detected_at: float  # when the stop window closed (the endpoint)
    audio: np.ndarray = field(repr=False)  # pre-roll + utterance + trailing silence
    truncated: bool = False  # cut at the maximum utterance length
    peak_probability: float = 1.0  # VAD's most confident chunk of the utterance
    # Over a reply: how much of the linear filter's residual the reference explained (aec/
    # coherence.py), 0-1; None where nothing played or the canceller keeps no residual.
    echo_coherence: float | None = None
    # ...and how much of the mic itself (the reply's echo, or the user's voice once it paused).
    mic_coherence: float | None = None
    # Over a reply: the words the speaker sounded from shortly before its onset to its end
    # (engine/own_words.py); "" where nothing played.
    reply_words: str = ""
    # Over a reply: the same samples as the canceller cut them per band for VAD (`audio` is
    # the recogniser's uncut copy). Held speech the recogniser hears as nothing is heard again
    # in it (`turn.hear_cut_copy`); None elsewhere.
    cut_audio: np.ndarray | None = field(default=None, repr=False)
    # Over a reply: the same span of the mic with the seconds before it, to be cancelled again by
    # a filter fitted to those (aec/refit.py); heard where both the canceller's copies were heard
    # as nothing (`turn.hear_refit_copy`); None elsewhere.
    refit_copy: RefitCopy | None = field(default=None, repr=False)
    # Over a reply: the same span as the mic took it, echo and all; heard last, where both the
    # canceller's copies were heard as nothing and there is no refit copy (`turn.hear_mic_copy`);
    # None elsewhere.
    mic_audio: np.ndarray | None = field(default=None, repr=False)


# ---- events: from stage tasks and playback --------------------------------------------------


@dataclass(frozen=True)
class Transcript:
    turn_id: int
    text: str
    at: float


@dataclass(frozen=True)
class ReplyStarted:
    """The first piece of a reply has audio queued (THINKING may now become SPEAKING)."""

    turn_id: int
    at: float


@dataclass(frozen=True)
class PlaybackStarted:
    turn_id: int
    at: float


@dataclass(frozen=True)
class ReplyFinished:
    """The LLM/TTS work for a turn is over (whole, or cut short by an error)."""

    turn_id: int
    at: float
    error: str | None = None
    queued_audio: bool = True  # False when nothing at all was queued for playback


@dataclass(frozen=True)
class PlaybackFinished:
    turn_id: int
    at: float


@dataclass(frozen=True)
class PartialTranscript:
    """What the streaming model has heard so far of the utterance under way (`asr.streaming`):
    for showing only. The turn's text is still the offline recogniser's `Transcript`."""

    utterance: int  # counts the utterances of the session; one per SpeechStarted
    text: str
    at: float  # when the text was ready (loop clock)
    audio_s: float  # seconds of the utterance it covers
    elapsed_ms: float  # the streaming model's time on the latest chunk


@dataclass(frozen=True)
class PlaybackProgress:
    """Reply audio sounded during this frame: progress, so the watchdog does not take a long
    reply for a hang. Not tied to a turn: whatever the speaker plays is the reply under way."""

    at: float


# ---- events: from the echo canceller ---------------------------------------------------------


@dataclass(frozen=True)
class EchoCancellerConverged:
    """The canceller has heard enough playback to cancel it: from now on a barge-in needs only
    the usual minimum of speech, not the longer warm-up minimum."""

    at: float
    after_s: float  # seconds of playback it took


@dataclass(frozen=True)
class StageFailed:
    stage: Stage
    turn_id: int
    message: str
    at: float


@dataclass(frozen=True)
class TurnVerdictReady:
    """The turn detector has judged the stop it was asked about (`ask`): has the user finished?
    `error` set = it could not tell (the silence window decides, as with no detector)."""

    turn_id: int
    ask: int
    probability: float
    complete: bool
    elapsed_ms: float
    at: float
    error: str | None = None


@dataclass(frozen=True)
class Tick:
    at: float


# ---- events: the wake gate (engine/wake_gate.py), never seen by the machine itself ---------


@dataclass(frozen=True)
class WakeWordHeard:
    """The wake-word stage fired on the echo-cancelled mic: wakes the loop, or interrupts it."""

    word: str
    probability: float
    at: float  # end of the frame it fired on


@dataclass(frozen=True)
class PushToTalk:
    """A key or a button: the same as the wake word, without saying it."""

    at: float
    source: str = "key"


@dataclass(frozen=True)
class AttentionExpired:
    """The attention window ran out with nobody talking: the loop is asleep again."""

    at: float


Event = (
    SpeechStarted
    | SpeechProgress
    | SpeechPaused
    | SpeechEnded
    | Transcript
    | ReplyStarted
    | PlaybackStarted
    | ReplyFinished
    | PlaybackFinished
    | PlaybackProgress
    | EchoCancellerConverged
    | StageFailed
    | TurnVerdictReady
    | Tick
    | WakeWordHeard
    | PushToTalk
    | AttentionExpired
)


# ---- actions: what the runtime must do -----------------------------------------------------


# Which copy of held speech over a reply a recognition hears again (StartTranscription).
HeardAgain = Literal["", "cut", "refit", "mic"]


@dataclass(frozen=True)
class StartTranscription:
    turn_id: int
    # A refit copy is cancelled where it is heard, in the recogniser's worker (aec/refit.py).
    audio: np.ndarray | RefitCopy = field(repr=False)
    speech_started_at: float
    speech_end_at: float
    endpoint_at: float
    speculative: bool = False  # started in the pause, before the stop window closed
    # The same held speech once more, its earlier copies heard as no words: "cut", as the
    # canceller cut it (`turn.hear_cut_copy`), "refit", cancelled again by a filter fitted to the
    # seconds before it (`turn.hear_refit_copy`), or "mic", as the mic took it
    # (`turn.hear_mic_copy`). The session log's "speech" and "transcript" lines say so.
    heard_again: HeardAgain = ""


@dataclass(frozen=True)
class EndpointReached:
    """The stop window closed on an utterance whose transcription started early."""

    turn_id: int
    speech_end_at: float
    endpoint_at: float
    decided_by: str = "silence"  # silence | detector | ceiling | transcript (see TurnRecord)


@dataclass(frozen=True)
class AskTurnDetector:
    """A VAD stop: has the user finished? Judged in a worker thread; TurnVerdictReady answers."""

    turn_id: int
    ask: int  # numbers the stops, so a verdict on one the user talked through is ignored
    audio: np.ndarray = field(repr=False)  # the turn so far, its trailing silence included
    at: float
    silence_s: float = 0.0  # silence to add after `audio`: what the stop window or the wait adds


@dataclass(frozen=True)
class PausePlayback:
    """Speech over the reply: hold it at once, until the speech proves to be words or not."""

    turn_id: int
    at: float


@dataclass(frozen=True)
class ResumePlayback:
    """The speech over the reply was a backchannel or a noise: play on from where it held."""

    turn_id: int
    at: float
    # The session log says it: a user who was not heard, or a test that failed on a loaded
    # machine, is told which rule took their speech for something else.
    why: str = ""


@dataclass(frozen=True)
class CancelTranscription:
    """The user went on talking: an early transcription is moot."""

    turn_id: int


@dataclass(frozen=True)
class StartReply:
    turn_id: int
    user_text: str
    notice: str | None = None  # speak only this (an error, a greeting): no LLM, no history
    merged_from: tuple[int, ...] = ()  # earlier turns whose words open `user_text` (continuations)


@dataclass(frozen=True)
class StopPlayback:
    turn_id: int


@dataclass(frozen=True)
class CancelReply:
    turn_id: int


@dataclass(frozen=True)
class BargeIn:
    """The user talked over the reply: the runtime stops it and keeps only what was heard."""

    turn_id: int
    at: float


@dataclass(frozen=True)
class ReportError:
    stage: Stage
    turn_id: int
    message: str
    speak: bool


@dataclass(frozen=True)
class FinishTurn:
    """A turn is over; `outcome` says how (answered, interrupted, no_speech, error, ...)."""

    turn_id: int
    outcome: str
    at: float


Action = (
    StartTranscription
    | EndpointReached
    | AskTurnDetector
    | PausePlayback
    | ResumePlayback
    | CancelTranscription
    | StartReply
    | StopPlayback
    | CancelReply
    | BargeIn
    | ReportError
    | FinishTurn
)
