"""The listener: one duplex frame in, the typed events it amounts to out, in order.

Per 10 ms frame it records the audio, cancels the echo (or skips the canceller when nothing
has played for longer than any echo tail), notices when the canceller has converged, passes
on what the speaker did (playback started, finished, still playing), cuts the cleaned audio
into VAD chunks for the endpointer, and ends with a Tick. It never looks at the machine: it
only asks `muted()` (half-duplex while replying) and hands each event to `emit` as it arises,
so the machine has seen the speaker's events before the mic's are judged.

VAD judges the canceller's output; the utterance the endpointer keeps for the recogniser is the
canceller's `recognition_frame` copy of the same samples: speex's output before its per-band
residual cut, which keeps residual echo from VAD but took a word said over a reply 2-7 dB down
where pocketsphinx then heard nothing (tests/test_soak.py's "stop").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from voiceloop.aec.base import EchoCanceller, recognition_frame, speaker_gain
from voiceloop.aec.refit import RefitCopy
from voiceloop.audio.base import DuplexFrame
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.headroom import SpeakerHeadroom
from voiceloop.audio.playback import PlaybackQueue
from voiceloop.engine.events import (
    EchoCancellerConverged,
    Event,
    PlaybackFinished,
    PlaybackProgress,
    PlaybackStarted,
    SpeechEnded,
    Tick,
    WakeWordHeard,
)
from voiceloop.session.log import SessionLog
from voiceloop.vad.base import VoiceActivityDetector
from voiceloop.vad.endpointer import Endpointer
from voiceloop.wake.base import WakeWordDetector

log = logging.getLogger(__name__)

# After the speaker falls silent its echo lingers for the room's reverberation time (RT60 up
# to ~0.6 s in living rooms); past that the mic holds no echo.
ECHO_TAIL_S = 0.8
# Speech over a reply is asked how much of it the reference explains from this long before its
# onset to this long after its end (VAD places both within a chunk), over COHERENCE_MIN_S at
# least: over fewer Welch segments unrelated sound reads coherent by chance (users' short
# "stop"s to 0.29 over their own 0.24 s; 0.24 at most over 0.35 s).
COHERENCE_MARGIN_S = 0.05
COHERENCE_MIN_S = 0.35
# The words the speaker sounded around speech over a reply (engine/own_words.py): its echo
# arrives up to the room's delay (0.15 s) and its reverberation after them, and the queue's
# letter-share estimate of when each word sounded runs late: against pocketsphinx's forced
# alignment of espeak's rendering (10 sentences, 116 words) by 0.09-0.11 s in the median,
# -0.14 to +0.33 s for 90 % of the words' starts and ends, 0.37 s at most.
OWN_WORDS_BEFORE_S = 0.5
OWN_WORDS_AFTER_S = 0.4
# The cut and mic copies of speech over a reply (SpeechEnded.cut_audio, .mic_audio) are kept
# for utterances up to this long, pre-roll and trailing silence included; longer held speech is
# words anyway.
COPIES_KEPT_S = 4.0


class Listener:
    def __init__(
        self,
        aec: EchoCanceller,
        vad: VoiceActivityDetector,
        endpointer: Endpointer,
        playback: PlaybackQueue,
        session: SessionLog,
        *,
        emit: Callable[[Event], None],
        muted: Callable[[], bool],
        wake: WakeWordDetector | None = None,
        headroom: SpeakerHeadroom | None = None,
        measure_echo_coherence: bool = True,
        measure_mic_coherence: bool = True,
        hand_on_reply_words: bool = True,
        keep_cut_copy: bool = True,
        keep_mic_copy: bool = True,
        keep_refit_copy: bool = True,
    ) -> None:
        self._aec = aec
        self._vad = vad
        self._endpointer = endpointer
        self._playback = playback
        self._session = session
        self._emit = emit
        self._muted = muted
        self._wake = wake  # hears every cleaned frame, asleep or not: the word also interrupts
        self._headroom = headroom
        # Off where no turn rule reads it (`TurnSettings.reads_echo_coherence`): 1-7 ms per
        # speech spared.
        self._measure_echo_coherence = measure_echo_coherence
        # and the mic's too only where a rule reads it (`TurnSettings.reads_mic_coherence`): one
        # Welch pass spared.
        self._measure_mic_coherence = measure_mic_coherence
        # Off where the machine never asks (`turn.echo_words = false`): nor are they logged.
        self._hand_on_reply_words = hand_on_reply_words
        self._aec_warmup_s = float(getattr(aec, "warmup_s", 0.0))
        self._converged = self._aec_warmup_s <= 0
        self._far_end_s = 0.0  # playback the canceller has heard so far
        self._reference_heard_at = -1e9  # last time the speaker played anything
        self._vad_chunk: list[np.ndarray] = []
        self._heard_chunk: list[np.ndarray] = []  # the same audio as the recogniser hears it
        self._vad_chunk_at = 0.0
        # The samples VAD judged, as the canceller cut them, newest last: the endpointer's
        # audio is the recogniser's copy of the same chunks, so its last len(audio) line up.
        # Kept only where the machine hears it (`turn.hear_cut_copy`).
        self._cut = np.zeros(int(COPIES_KEPT_S * SAMPLE_RATE) if keep_cut_copy else 0, np.float32)
        self._cut_written = 0
        # The mic as it was taken, newest last, ending at `_mic_end_at`: the canceller's output
        # for a moment is the mic's of that moment, so a span of either is read at the same time
        # (`turn.hear_mic_copy`).
        self._mic = np.zeros(int(COPIES_KEPT_S * SAMPLE_RATE) if keep_mic_copy else 0, np.float32)
        self._mic_written = 0
        self._mic_end_at = 0.0
        # The canceller's own frames, the seconds before included (`turn.hear_refit_copy`).
        self._keep_refit_copy = keep_refit_copy
        self._newest_at = 0.0  # the cleaned time of the newest frame the canceller took

    @property
    def needs_warmup(self) -> bool:
        """The canceller must hear playback before it cancels it (see EchoCancellerConverged)."""
        return self._aec_warmup_s > 0

    def hear(self, frame: DuplexFrame) -> None:
        self._session.write_audio(frame.mic_frame, frame.speaker_frame)
        self._keep_mic(frame)
        cleaned, heard, cleaned_at = self._cancel_echo(frame)
        self._play_as_the_canceller_asks(frame.captured_at)
        self._track_convergence(frame)
        if self._headroom is not None:
            # Not while the canceller has the speaker quieter: those frames do not show how
            # close to clipping the reply plays (counted, fewer of bench_bargein's +10 dB walk
            # sessions stepped down to -12 dB after the walk: 15 of 41 against 19).
            playing = self._reference_heard_at == frame.captured_at and self._playback.canceller_gain == 1.0
            lowered = self._headroom.hear(frame.mic_frame, playing=playing)
            if lowered is not None:
                self._set_volume(lowered, frame.captured_at)
        for playback_event in self._playback.drain_events():
            if isinstance(playback_event, (PlaybackStarted, PlaybackFinished)):
                # Started too: a reply stopped by a barge-in never finishes, and the next one
                # must still be judged from its own first half second.
                self._judge_headroom(playback_event.at)
            self._emit(playback_event)
        if self._muted():
            self._vad_chunk.clear()  # mic ignored while replying: nothing carries over
            self._heard_chunk.clear()
            self._endpointer.reset()
        else:
            if self._wake is not None:
                echo = frame.captured_at - self._reference_heard_at <= ECHO_TAIL_S
                self._hear_wake_word(cleaned, cleaned_at, echo)
            self._feed_vad(cleaned, heard, cleaned_at)
        if self._playback.playing:
            self._emit(PlaybackProgress(frame.captured_at))
        self._emit(Tick(at=frame.captured_at + len(frame.mic_frame) / SAMPLE_RATE))

    def restart_utterance(self) -> None:
        """The wake word (or push-to-talk) ends whatever the endpointer was hearing: the words
        after it start a fresh utterance, with no pre-roll from before it."""
        self._vad_chunk.clear()
        self._heard_chunk.clear()
        self._endpointer.reset()

    def _play_as_the_canceller_asks(self, at: float) -> None:
        """Quieter while the canceller re-learns a changed room (aec/base.py's `speaker_gain`),
        back as loud once it has; the session log says when it went down, by how much, and when
        it was back."""
        gain = speaker_gain(self._aec)
        before, self._playback.canceller_gain = self._playback.canceller_gain, gain
        if gain < 1.0 <= before:
            self._session.write("speaker_ducked", at=at, volume_db=round(20 * math.log10(gain), 1))
        elif before < 1.0 <= gain:
            self._session.write("speaker_unducked", at=at)

    def _judge_headroom(self, at: float) -> None:
        """A reply has played (or a new one starts): quieter if our voice clipped the mic,
        louder if it has room. Judging twice in a row is harmless: nothing is left to judge."""
        volume_db = self._headroom.reply_played() if self._headroom is not None else None
        if volume_db is not None:
            self._set_volume(volume_db, at)

    def _set_volume(self, volume_db: float, at: float) -> None:
        assert self._headroom is not None
        volume = float(10 ** (volume_db / 20))
        lowered, self._playback.volume = volume < self._playback.volume, volume
        if not lowered:
            self._session.write("speaker_volume_raised", at=at, volume_db=volume_db)
            log.info("the speaker has room again: playing at %.0f dB", volume_db)
            return
        share = round(self._headroom.clipped_share, 3)
        self._session.write("speaker_volume_lowered", at=at, volume_db=volume_db, clipped_share=share)
        log.warning(
            "the speaker drives the mic to full scale (%.0f %% of the frames it played): playing %.0f "
            "dB quieter, as echo that clips cannot be cancelled. Turn the speaker down or move the "
            "mic away from it.",
            100 * share,
            -volume_db,
        )

    def _hear_wake_word(self, cleaned: np.ndarray, at: float, over_playback: bool) -> None:
        for heard in self._wake.process(cleaned, over_playback) if self._wake is not None else ():
            self._emit(WakeWordHeard(heard.word, heard.probability, at=at + len(cleaned) / SAMPLE_RATE))

    def _cancel_echo(self, frame: DuplexFrame) -> tuple[np.ndarray, np.ndarray, float]:
        """The cleaned frame (for VAD), the same frame as the recogniser should hear it, and
        the time of their first sample (the canceller may lag)."""
        cleaned = self._aec.process(frame.mic_frame, frame.reference_frame)
        heard = recognition_frame(self._aec, cleaned)
        # Read each frame: a drift-compensated canceller's lag grows as it gives the drift back.
        aec_delay_s = getattr(self._aec, "output_delay_samples", 0) / SAMPLE_RATE
        cleaned_at = self._newest_at = frame.captured_at - aec_delay_s
        if np.any(frame.reference_frame):
            self._reference_heard_at = frame.captured_at
        if aec_delay_s and frame.captured_at - self._reference_heard_at > ECHO_TAIL_S:
            # Nothing played for longer than any room's echo tail: there is no echo to
            # cancel, so VAD takes the mic as it is, without the canceller's frame of delay.
            return frame.mic_frame, frame.mic_frame, frame.captured_at
        return cleaned, heard, cleaned_at

    def _track_convergence(self, frame: DuplexFrame) -> None:
        if self._converged or not np.any(frame.reference_frame):
            return
        self._far_end_s += len(frame.reference_frame) / SAMPLE_RATE
        if self._far_end_s >= self._aec_warmup_s:
            self._converged = True
            after_s = round(self._far_end_s, 2)
            self._session.write("echo_canceller_converged", at=frame.captured_at, after_s=after_s)
            self._emit(EchoCancellerConverged(at=frame.captured_at, after_s=after_s))

    def _feed_vad(self, cleaned: np.ndarray, heard: np.ndarray, at: float) -> None:
        """VAD judges fixed chunks (32 ms for silero); between chunks the endpointer polls each
        frame, so a quiet frame can close the stop window without waiting for a whole chunk.
        The utterance keeps `heard`, the recogniser's copy of the same samples."""
        if not self._vad_chunk:
            self._vad_chunk_at = at
        self._vad_chunk.append(cleaned)
        self._heard_chunk.append(heard)
        buffered = sum(len(part) for part in self._vad_chunk)
        size = self._vad.chunk_samples
        if buffered < size:
            for event in self._endpointer.poll(cleaned, at):
                self._emit(self._over_reply(event))
            return
        audio, heard_audio = np.concatenate(self._vad_chunk), np.concatenate(self._heard_chunk)
        chunk, rest = audio[:size], audio[size:]
        heard_chunk, heard_rest = heard_audio[:size], heard_audio[size:]
        chunk_at = self._vad_chunk_at
        self._vad_chunk = [rest] if rest.size else []
        self._heard_chunk = [heard_rest] if heard_rest.size else []
        self._vad_chunk_at = chunk_at + size / SAMPLE_RATE
        self._keep_cut(chunk)
        probability = self._vad.speech_probability(chunk)
        for event in self._endpointer.feed(chunk, probability, chunk_at, kept=heard_chunk):
            self._emit(self._over_reply(event))

    def _keep_cut(self, chunk: np.ndarray) -> None:
        self._cut_written = _write_ring(self._cut, self._cut_written, chunk)

    def _keep_mic(self, frame: DuplexFrame) -> None:
        if self._mic.size:
            self._mic_written = _write_ring(self._mic, self._mic_written, frame.mic_frame)
            self._mic_end_at = frame.captured_at + len(frame.mic_frame) / SAMPLE_RATE

    def _cut_copy(self, samples: int) -> np.ndarray | None:
        """The last `samples` VAD judged, as the canceller cut them; None where fewer were kept
        (or none: `turn.hear_cut_copy` off)."""
        return _read_ring(self._cut, self._cut_written, samples, 0)

    def _mic_copy(self, samples: int) -> np.ndarray | None:
        """The mic over the same span as the last `samples` VAD judged (they end where the next
        chunk starts); None where fewer were kept (or none: `turn.hear_mic_copy` off)."""
        newer = round((self._mic_end_at - self._vad_chunk_at) * SAMPLE_RATE)
        return _read_ring(self._mic, self._mic_written, samples, max(newer, 0))

    def _over_reply(self, event: Event) -> Event:
        """Speech that ended over a reply (or its echo's tail), with what the machine needs to
        tell it from the reply's echo: the words the speaker sounded meanwhile, and how much of
        it the reference explains (the machine's rule: above `turn.echo_coherence`); and the
        same samples as the canceller cut them, for a second hearing (`turn.hear_cut_copy`)."""
        if not isinstance(event, SpeechEnded) or event.started_at - self._reference_heard_at > ECHO_TAIL_S:
            return event
        sounded = ""
        if self._hand_on_reply_words:
            sounded = self._playback.words_sounded(
                event.started_at - OWN_WORDS_BEFORE_S, event.at + OWN_WORDS_AFTER_S
            )
        if sounded:  # the session log says why a reply resumed over words the recogniser heard
            t0 = self._session.t0 or 0.0
            speech_at = round(event.started_at - t0, 4)
            self._session.write("reply_words", at=event.detected_at, speech_at=speech_at, words=sounded)
        cut = self._cut_copy(len(event.audio))
        if cut is not None and np.array_equal(cut, event.audio):
            cut = None  # the canceller keeps no uncut copy for the recogniser: nothing new to hear
        mic = self._mic_copy(len(event.audio))
        refit = self._refit_copy(len(event.audio))
        return self._with_echo_coherence(
            replace(event, reply_words=sounded, cut_audio=cut, refit_copy=refit, mic_audio=mic)
        )

    def _refit_copy(self, samples: int) -> RefitCopy | None:
        """The canceller's frames of the mic and the reference over the same span as the last
        `samples` VAD judged, the seconds before in front (aec/refit.py); None where it keeps
        none, or `turn.hear_refit_copy` is off. Slices only: the fit is made if it is heard."""
        take = getattr(self._aec, "refit_copy", None) if self._keep_refit_copy else None
        if take is None:
            return None
        frames_ago = self._frames_ago(self._vad_chunk_at - samples / SAMPLE_RATE)
        copy: RefitCopy | None = take(frames_ago, min(-(-samples // FRAME_SAMPLES), frames_ago))
        return copy

    def _frames_ago(self, start: float) -> int:
        """How many of the canceller's frames began at or after `start` (cleaned time), the
        newest one included: what its recent frames are asked by."""
        return round((self._newest_at - start) * (SAMPLE_RATE / FRAME_SAMPLES)) + 1

    def _with_echo_coherence(self, event: SpeechEnded) -> SpeechEnded:
        measure = getattr(self._aec, "echo_coherence", None) if self._measure_echo_coherence else None
        if measure is None:
            return event
        start = event.started_at - COHERENCE_MARGIN_S
        per_s = SAMPLE_RATE / FRAME_SAMPLES
        frames_ago = self._frames_ago(start)
        frames = round(max(event.at + COHERENCE_MARGIN_S - start, COHERENCE_MIN_S) * per_s)
        measured = measure(frames_ago, frames, self._measure_mic_coherence)
        if measured is None:
            return event
        t0 = self._session.t0 or 0.0  # the session log says why a reply resumed over sure speech
        self._session.write(
            "echo_coherence",
            at=event.detected_at,
            speech_at=round(event.started_at - t0, 4),
            speech_end_at=round(event.at - t0, 4),
            coherence=round(measured.residual, 3),
            mic=None if measured.mic is None else round(measured.mic, 3),
            peak=round(event.peak_probability, 3),  # VAD's surest chunk: `turn.words_confidence`
        )
        return replace(event, echo_coherence=measured.residual, mic_coherence=measured.mic)


def _write_ring(ring: np.ndarray, written: int, samples: np.ndarray) -> int:
    """`samples` written into `ring` after the `written` before them; the new count."""
    if not ring.size:
        return written
    start = written % ring.size
    first = min(samples.size, ring.size - start)
    ring[start : start + first] = samples[:first]
    ring[: samples.size - first] = samples[first:]
    return written + samples.size


def _read_ring(ring: np.ndarray, written: int, samples: int, newer: int) -> np.ndarray | None:
    """The `samples` that `ring` took before its newest `newer`, oldest first; None where it
    never held them all."""
    if samples == 0 or samples + newer > min(ring.size, written):
        return None
    start = (written - newer - samples) % ring.size
    if start + samples <= ring.size:
        return ring[start : start + samples].copy()
    return np.concatenate((ring[start:], ring[: start + samples - ring.size]))
