"""Acoustic echo cancellation with libspeexdsp, through ctypes.

The PyPI `speexdsp` binding wraps only the adaptive filter, and the filter alone leaves enough
residual echo that silero-vad hears the assistant's own voice as speech. Speex's preprocessor,
given the echo state, suppresses that residual using the filter's own echo estimate; that
pairing is what makes the canceller usable before a VAD, so this binds both from the system
library (Debian's libspeexdsp1, Homebrew's speexdsp) rather than a wheel.

The reference must reach `process` no later than its echo reaches the mic. In the virtual room
(128 ms filter, RT60 0.3 s) a reference 10 ms late left ERLE at ~2 dB; one 10 to 60 ms early
gave 27-30 dB (best at 20-40 ms); 100 ms early fell to 18 dB, and a full filter length early
to nothing.

Two couplings inside the preprocessor that its API does not show: with denoising off it
applies no spectral gain at all, so residual echo suppression silently stops too (denoise is
therefore always on here); and noise and echo share one gain floor, so less noise suppression
also means less echo suppression. In the virtual room, -25 dB of noise suppression rather than
speex's -15 dB default cut silero's false triggers on converged echo from runs of up to four
32 ms chunks to single isolated ones.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceloop.aec import speex_build
from voiceloop.aec.base import check_frames
from voiceloop.aec.coherence import RECENT_S, EchoCoherence, RecentFrames
from voiceloop.aec.compensated import DriftCompensated
from voiceloop.aec.path_watch import ACTIVE_POWER, USER_COHERENCE, PathWatch
from voiceloop.aec.refit import FIT_S, RefitCopy
from voiceloop.aec.relearn import ReplyFrames
from voiceloop.aec.residual import ResidualSuppressor
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE, to_float32

if TYPE_CHECKING:
    from voiceloop.aec.options import SpeexOptions
    from voiceloop.config.settings import AecSettings

# Request codes from speexdsp's speex_echo.h and speex_preprocess.h (1.2).
_ECHO_SET_SAMPLING_RATE = 24
_PREPROCESS_SET_DENOISE = 0
_PREPROCESS_SET_AGC = 2
_PREPROCESS_SET_NOISE_SUPPRESS = 18
_PREPROCESS_SET_ECHO_SUPPRESS = 20
_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE = 22
_PREPROCESS_SET_ECHO_STATE = 24

# The preprocessor's overlap-add hands back each frame one frame late: the cleaned frame
# returned with mic frame k is mostly mic frame k-1, so speech ends 10 ms later downstream.
OUTPUT_DELAY_SAMPLES = FRAME_SAMPLES
# The filter from before a path change is taken back where it leaves RECALL_DB less echo than
# the one in use and RECALL_DEPTH_DB under the mic. Replayed over person-walks sessions (kept
# bench_bargein runs): a filter asked back on the path it had learnt left 6-18 dB less than the
# one in use, 11-23 dB under the mic; on another path 0-5 dB less, 2-9 under the mic.
RECALL_DB = 6.0
RECALL_DEPTH_DB = -10.0
_RECALL, _RECALL_DEPTH = 10 ** (-RECALL_DB / 10), 10 ** (RECALL_DEPTH_DB / 10)
# After a re-learn the speaker is asked back up over this many frames, not at once: stepped back
# 10 dB in a frame, bench_aec's mandarin-10db-walks let 0.52 s of echo per 10 s through as
# speech (ERLE 24.5 dB); over 10, 30 and 60 frames, 0.28-0.32 s and 25.3-25.8 dB (duck off: 0.34
# s, 27.3 dB).
BACK_UP_FRAMES = 30
# While a rebuilt filter re-learns, the path watch's last 0.4 s is fed through it again every
# `relearn_replay_every` frames, and REBUILT_PASSES times on the frame it is rebuilt (data
# reuse, as relearn.py does for a first reply, but while the reply still plays: the hold lasts
# only as long as the filter cancels too little for a user under the echo to be told from it).
# Replayed over the kept bench_bargein sessions of seeds 913-936 (the filter alone, echo-only
# frames), a rebuilt filter removed, 0.6-1.0 s / 1.0-1.5 s / 1.5-3 s after its rebuild, in
# mandarin-10db-walks 4.4 / 5.2 / 5.2 dB without it, 8.8 / 11.4 / 12.1 with it (every 5
# frames); in person-walks 5.6 / 7.3 / 6.2 against 9.9 / 11.6 / 11.8. Every 10 frames gave
# mandarin-10db-walks 7.3 / 9.9 / 11.5, every 20 frames 6.0 / 8.2 / 10.2.
REBUILT_PASSES = 2

# Rates whose 10 ms frame size is worth naming in an error: a 480-sample frame is far more
# likely 48 kHz audio that skipped resampling than a framing bug.

_LIBRARY_FALLBACK = "libspeexdsp.so.1"
LIBRARY_ENV = "VOICELOOP_SPEEXDSP"
_MISSING = (
    "libspeexdsp is not installed: apt-get install libspeexdsp1 (Debian/Ubuntu) or brew install speexdsp"
)

_Int16Pointer = ctypes.POINTER(ctypes.c_int16)
log = logging.getLogger(__name__)


class SpeexError(RuntimeError):
    pass


def _declare(lib: ctypes.CDLL) -> None:
    """Without these ctypes returns states as C ints, truncating 64-bit pointers."""
    state, request, data = ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p
    lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_echo_state_init.restype = state
    lib.speex_echo_state_destroy.argtypes = [state]
    lib.speex_echo_state_destroy.restype = None
    lib.speex_echo_cancellation.argtypes = [state, _Int16Pointer, _Int16Pointer, _Int16Pointer]
    lib.speex_echo_cancellation.restype = None
    lib.speex_echo_ctl.argtypes = [state, request, data]
    lib.speex_echo_ctl.restype = ctypes.c_int
    lib.speex_preprocess_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_preprocess_state_init.restype = state
    lib.speex_preprocess_state_destroy.argtypes = [state]
    lib.speex_preprocess_state_destroy.restype = None
    lib.speex_preprocess_run.argtypes = [state, _Int16Pointer]
    lib.speex_preprocess_run.restype = ctypes.c_int
    lib.speex_preprocess_ctl.argtypes = [state, request, data]
    lib.speex_preprocess_ctl.restype = ctypes.c_int


_library: ctypes.CDLL | None = None
library_name: str | None = None  # the file loaded: voiceloop's -O3 build or the system's


def load_library() -> ctypes.CDLL:
    """Loads and declares libspeexdsp once per process; SpeexError if it is not installed.
    voiceloop's own -O3 build of it (aec/speex_build.py: the same output for ~40 % less CPU)
    comes first where setup built it; one that does not load is passed over for the system's.
    VOICELOOP_SPEEXDSP=system skips the build (to compare the two), =PATH loads that file."""
    global _library, library_name
    if _library is not None:
        return _library
    chosen = os.environ.get(LIBRARY_ENV, "")
    if chosen and chosen != "system":
        try:
            _library, library_name = _loaded(chosen), chosen
        except (OSError, AttributeError) as error:
            raise SpeexError(f"{LIBRARY_ENV}={chosen} does not load: {error}") from None
        return _library
    built = None if chosen == "system" else speex_build.built_library()
    if built is not None:
        try:
            _library, library_name = _loaded(str(built)), str(built)
            return _library
        except (OSError, AttributeError) as error:  # AttributeError: a symbol is missing
            log.warning("%s does not load (%s): using the system libspeexdsp", built, error)
    system = ctypes.util.find_library("speexdsp") or _LIBRARY_FALLBACK
    try:
        _library, library_name = _loaded(system), system
    except OSError:
        raise SpeexError(_MISSING) from None
    return _library


def _loaded(name: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(name)
    _declare(lib)
    return lib


def _set_int(ctl: Any, state: int, request: int, value: int) -> None:
    """Speex's ctl calls take a pointer to an int32, even for on/off switches."""
    if ctl(state, request, ctypes.byref(ctypes.c_int32(value))) != 0:
        raise SpeexError(f"libspeexdsp rejected control request {request} = {value}")


class SpeexCanceller:
    """Adaptive filter plus residual-echo and noise suppression on 10 ms frames (16 kHz in the
    pipeline; `sample_rate` exists for use outside it, and frames must then match it)."""

    name = "speex"
    output_delay_samples = OUTPUT_DELAY_SAMPLES
    # Silero heard a fresh canceller's residual as speech in its first 1.5 s of echo and hardly
    # after: the default profile's over bench_aec's 18 rooms, echo only, 0.70, 1.98, 1.73 and
    # 0.16 s in its first four half seconds (/tmp script over bench_aec's takes). 2.0 s kept
    # bench_bargein's first interruption (0.6-1.1 s into the first reply, after the 1.4 s
    # greeting) inside the warm-up, where no onset holds the reply (README, echo section).
    warmup_s = 1.5

    def __init__(
        self,
        filter_ms: int = 256,
        echo_suppress_db: int = -40,
        echo_suppress_active_db: int = -15,
        noise_suppress_db: int = -25,
        path_change_recovery: bool = False,
        residual_suppression: bool = False,
        relearn_passes: int = 0,
        relearn_duck_db: float = 0.0,
        relearn_replay_every: int = 0,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        self._echo: int | None = None  # set first: __del__ runs even if __init__ raises
        # The filter a rebuild replaced, as it was then (fed nothing since): path_watch.py.
        self._previous: int | None = None
        self._previous_relearnt = False
        self._preprocess: int | None = None
        if sample_rate <= 0 or sample_rate % 100:
            raise ValueError(f"the speex canceller needs a rate in whole 10 ms frames, got {sample_rate} Hz")
        self._lib = load_library()
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate // 100
        self.output_delay_samples = self.frame_samples
        self.filter_taps = filter_ms * sample_rate // 1000
        self._suppression = (echo_suppress_db, echo_suppress_active_db, noise_suppress_db)
        # Speex works in int16; these buffers (and the pointers into them) live as long as we do.
        # Mic and reference are the two rows of one buffer, converted in one compiled call
        # (numba's import and the kernels' load: here, when the canceller is built).
        from voiceloop.aec import pcm_kernels

        self._pcm_kernels = pcm_kernels
        self._pcm = np.zeros((2, self.frame_samples), dtype=np.int16)
        self._mic, self._reference = self._pcm
        self._out = np.zeros(self.frame_samples, dtype=np.int16)
        self._mic_p = self._mic.ctypes.data_as(_Int16Pointer)
        self._reference_p = self._reference.ctypes.data_as(_Int16Pointer)
        self._out_p = self._out.ctypes.data_as(_Int16Pointer)
        self._residual = np.zeros(self.frame_samples, dtype=np.float32)
        self._residual_suppression = residual_suppression
        # What the speaker is asked to play at while a rebuilt filter re-learns (path_watch.py).
        self._relearn_gain = float(10 ** (relearn_duck_db / 20))
        self._speaker_gain = 1.0
        self._back_step = float(10 ** (-relearn_duck_db / 20 / BACK_UP_FRAMES))
        # The recent frames fed through a rebuilt filter again while it re-learns (0 = never).
        self.relearn_replay_every = relearn_replay_every
        self._replay_wait = 0  # frames until the next such replay
        self._rebuilt = False  # the filter was rebuilt and has had no replay yet
        # The last frame as the recogniser should hear it: the output without the per-band
        # suppressor (2 ms, the suppressor's lag, ahead of what `process` returned). The
        # suppressor's cut keeps VAD and barge-in off residual echo, but over a word said
        # through a reply it took the word 2-7 dB down in the bands its held echo prediction
        # overstated, and pocketsphinx then heard nothing (tests/test_soak.py's "stop").
        self.recognition_frame = np.zeros(self.frame_samples, dtype=np.float32)
        # The first reply each filter hears, learnt from again once it ends (relearn.py); the
        # replay has its own buffers so that it leaves the live ones as they were.
        self.relearn_passes = relearn_passes
        self.relearns = 0  # replies learnt from again, over every filter
        self._filter_relearnt = False  # this filter (a new one after a rebuild) has had its replay
        self._reply_frames = ReplyFrames(
            self.frame_samples, gap_frames=self.filter_taps // self.frame_samples + 5
        )
        self._replay_pcm = np.zeros((2, self.frame_samples), dtype=np.int16)
        self._replay_out = np.zeros(self.frame_samples, dtype=np.int16)
        self._replay_mic_p = self._replay_pcm[0].ctypes.data_as(_Int16Pointer)
        self._replay_reference_p = self._replay_pcm[1].ctypes.data_as(_Int16Pointer)
        self._replay_out_p = self._replay_out.ctypes.data_as(_Int16Pointer)
        self.path_watch: PathWatch | None = None
        self.suppressor: ResidualSuppressor | None = None
        # What the filter took and left over the last RECENT_S, for `echo_coherence`, and the
        # FIT_S before for `refit_copy`: kept only where the residual is read out anyway (a path
        # watch or per-band suppressor).
        self._recent = RecentFrames(RECENT_S, FIT_S) if path_change_recovery or residual_suppression else None
        self._new_watchers(path_change_recovery)
        self._open()

    def _new_watchers(self, path_change_recovery: bool) -> None:
        ducked = self._relearn_gain < 1.0
        self.path_watch = (
            PathWatch(self._rebuild_filter, self._recall, USER_COHERENCE if ducked else 0.0)
            if path_change_recovery
            else None
        )
        self.suppressor = ResidualSuppressor(self.frame_samples) if self._residual_suppression else None
        self.output_delay_samples = self.frame_samples + (self.suppressor.half_taps if self.suppressor else 0)
        if self.path_watch is not None and self.suppressor is not None:
            self.path_watch.echo_gain = 1.0  # the suppressor cuts the echo's bands instead

    def _open(self) -> None:
        self._echo = self._lib.speex_echo_state_init(self.frame_samples, self.filter_taps)
        if not self._echo:
            raise SpeexError("speex_echo_state_init failed")
        _set_int(self._lib.speex_echo_ctl, self._echo, _ECHO_SET_SAMPLING_RATE, self.sample_rate)
        self._preprocess = self._new_preprocessor()

    def _new_preprocessor(self) -> int:
        """A preprocessor tied to our echo state: it reads the filter's echo estimate each frame."""
        echo_db, active_db, noise_db = self._suppression
        state = self._lib.speex_preprocess_state_init(self.frame_samples, self.sample_rate)
        if not state:
            raise SpeexError("speex_preprocess_state_init failed")
        ctl = self._lib.speex_preprocess_ctl
        if ctl(state, _PREPROCESS_SET_ECHO_STATE, self._echo) != 0:
            self._lib.speex_preprocess_state_destroy(state)
            raise SpeexError("libspeexdsp refused to attach the echo state to the preprocessor")
        _set_int(ctl, state, _PREPROCESS_SET_ECHO_SUPPRESS, echo_db)
        _set_int(ctl, state, _PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE, active_db)
        _set_int(ctl, state, _PREPROCESS_SET_DENOISE, 1)  # off would switch echo suppression off
        _set_int(ctl, state, _PREPROCESS_SET_NOISE_SUPPRESS, noise_db)
        _set_int(ctl, state, _PREPROCESS_SET_AGC, 0)  # AGC would pump the level VAD and ASR see
        return state

    def _rebuild_filter(self) -> None:
        """A fresh adaptive filter under the same preprocessor (which keeps its noise estimate):
        after a path change a new filter converges in ~1 s, speex's old one took ~3 s."""
        if self._echo is None or self._preprocess is None:
            return
        echo = self._lib.speex_echo_state_init(self.frame_samples, self.filter_taps)
        if not echo:
            raise SpeexError("speex_echo_state_init failed")
        _set_int(self._lib.speex_echo_ctl, echo, _ECHO_SET_SAMPLING_RATE, self.sample_rate)
        if self._lib.speex_preprocess_ctl(self._preprocess, _PREPROCESS_SET_ECHO_STATE, echo) != 0:
            self._lib.speex_echo_state_destroy(echo)
            raise SpeexError("libspeexdsp refused to attach the echo state to the preprocessor")
        self._forget_previous()
        self._previous, self._previous_relearnt = self._echo, self._filter_relearnt
        self._echo = echo
        self._reply_frames.clear()
        self._filter_relearnt = False
        self._rebuilt = True  # `_replay_wait` is 0 already: it counts only while a filter re-learns
        if self._recent is not None:
            self._recent.path_changed()

    def _recall(self, mic: np.ndarray, reference: np.ndarray, residual: np.ndarray) -> bool:
        """Feeds the previous filter these frames (oldest first) and, where over the played
        frames it has wholly heard it leaves RECALL_DB less than the filter in use and
        RECALL_DEPTH_DB under the mic, swaps the two. Feeding it is also what brings its
        history of the reference up to now (it was fed nothing since it was replaced)."""
        previous, preprocess = self._previous, self._preprocess
        if previous is None or preprocess is None:
            return False
        left = np.zeros(len(mic))
        for index, (mic_frame, reference_frame) in enumerate(zip(mic, reference, strict=True)):
            self._feed(previous, mic_frame, reference_frame)
            left[index] = np.dot(self._replay_out.astype(np.float64), self._replay_out) / 32768.0**2
        heard = slice(self.filter_taps // self.frame_samples, None)  # its history all these frames'
        playing = np.einsum("ij,ij->i", reference[heard], reference[heard]) >= ACTIVE_POWER
        if not playing.any():
            return False

        def energy(frames: np.ndarray) -> float:
            return float(np.einsum("ij,ij->i", frames[heard], frames[heard])[playing].sum())

        theirs = float(left[heard][playing].sum())
        if theirs > energy(residual) * _RECALL or theirs > energy(mic) * _RECALL_DEPTH:
            return False
        if self._lib.speex_preprocess_ctl(preprocess, _PREPROCESS_SET_ECHO_STATE, previous) != 0:
            return False
        self._echo, self._previous = previous, self._echo
        self._filter_relearnt, self._previous_relearnt = self._previous_relearnt, self._filter_relearnt
        self._reply_frames.clear()
        if self._recent is not None:
            self._recent.path_changed()
        return True

    def _feed(self, echo: int, mic_frame: np.ndarray, reference_frame: np.ndarray) -> None:
        """One float frame pair through a filter, on the replay buffers (the live ones kept)."""
        self._pcm_kernels.to_int16_pair(mic_frame, reference_frame, self._replay_pcm)
        self._lib.speex_echo_cancellation(
            echo, self._replay_mic_p, self._replay_reference_p, self._replay_out_p
        )

    def _forget_previous(self) -> None:
        previous, self._previous = self._previous, None
        if previous:
            self._lib.speex_echo_state_destroy(previous)

    def _to_int16(self, mic_frame: np.ndarray, reference_frame: np.ndarray) -> None:
        """`to_int16_into` on both frames at once, compiled: one call where numpy took six."""
        self._pcm_kernels.to_int16_pair(to_float32(mic_frame), to_float32(reference_frame), self._pcm)

    def process(self, mic_frame: np.ndarray, reference_frame: np.ndarray) -> np.ndarray:
        """Returns a new array: callers keep frames (pre-roll), so the buffer is not handed out."""
        if self._echo is None:
            raise SpeexError("the speex canceller was closed: build a new one")
        check_frames(self.name, self.sample_rate, mic_frame, reference_frame)
        self._to_int16(mic_frame, reference_frame)
        self._lib.speex_echo_cancellation(self._echo, self._mic_p, self._reference_p, self._out_p)
        cleaned = self._suppressed(mic_frame, reference_frame)
        self._ask_the_speaker()
        if self.relearn_replay_every:
            self._replay_while_relearning()
        if self.relearn_passes and not self._filter_relearnt:  # after this frame is done with
            segment = self._reply_frames.add(self._pcm, bool(self._reference.any()))
            if segment is not None:
                self._relearn(segment)
        return cleaned

    def _suppressed(self, mic_frame: np.ndarray, reference_frame: np.ndarray) -> np.ndarray:
        """The filter's output for this frame (in `_out`), through the suppressors."""
        gain = 1.0
        watch, suppressor = self.path_watch, self.suppressor
        if watch is not None or suppressor is not None:
            self._pcm_kernels.scaled_into(self._out, 1.0 / 32768.0, self._residual)
        if watch is not None:
            gain = watch.add(mic_frame, reference_frame, self._residual)
        if self._recent is not None:
            self._recent.add(mic_frame, reference_frame, self._residual)
        self._lib.speex_preprocess_run(self._preprocess, self._out_p)
        cleaned = np.empty(self.frame_samples, np.float32)  # a new array: callers keep frames
        self._pcm_kernels.scaled_into(self._out, gain / 32768.0, cleaned)
        if suppressor is None:
            self.recognition_frame = cleaned
            return cleaned
        suppressor.echo_heard = watch is not None and watch.echo_heard
        suppressor.add(mic_frame, self._residual, reference_frame)
        # The recogniser's copy: this frame as it would be without the suppressor, and not
        # lagged by the suppressor's 2 ms: the same samples the recogniser heard without it,
        # where they were (soak, default profile's canceller: "stop" kept in 7 of 9 runs so, 3
        # of 15 with the 2 ms lag, 11 of 18 without the suppressor; pocketsphinx is that
        # sensitive to where a word falls). Except where the path watch hears echo in the
        # residual: without the suppressor the watch would hold the whole frame 40 dB down,
        # and a user talking over a filter still learning (a second into a reply, a drifting
        # room) lost the middle of the word to it (bench_bargein: "turn off the lights" heard
        # as nothing); the cut output keeps the bands the user dominates.
        held = gain if watch is None else watch.held_gain
        suppressed = suppressor.apply(cleaned)
        self.recognition_frame = cleaned if held == gain else suppressed
        return suppressed

    def _replay_while_relearning(self) -> None:
        """The path watch's window (this frame the newest) through a rebuilt filter again, every
        `relearn_replay_every` frames while it re-learns: speex learns a changed room in ~1 s
        of live frames, and a user said meanwhile is held down with the echo. The window ends
        on this frame, so the filter's history is as it was live once the replay is done; its
        first frames meet the history of the last (~33 µs a frame, the filter alone)."""
        watch, echo = self.path_watch, self._echo
        if watch is None or echo is None or not watch.relearning:
            self._rebuilt, self._replay_wait = False, 0
            return
        if self._replay_wait:
            self._replay_wait -= 1
            return
        self._replay_wait = self.relearn_replay_every - 1
        mic, reference, _ = watch.window()
        for _ in range(REBUILT_PASSES if self._rebuilt else 1):
            for mic_frame, reference_frame in zip(mic, reference, strict=True):
                self._feed(echo, mic_frame, reference_frame)
        self._rebuilt = False

    def _ask_the_speaker(self) -> None:
        """Quieter at once when a rebuilt filter starts re-learning, back up over BACK_UP_FRAMES
        once it has learnt the room."""
        watch = self.path_watch
        if watch is not None and watch.relearning:
            self._speaker_gain = self._relearn_gain
        elif self._speaker_gain < 1.0:
            self._speaker_gain = min(self._speaker_gain * self._back_step, 1.0)

    @property
    def speaker_gain(self) -> float:
        """What the speaker should play at now: quieter (`relearn_duck_db`) while a rebuilt
        filter re-learns, where it cancels too little for a user at the echo's level to be told
        from it (aec/base.py's `speaker_gain`)."""
        return self._speaker_gain

    def echo_coherence(self, frames_ago: int, frames: int, with_mic: bool = True) -> EchoCoherence | None:
        """How much of what the filter left over those frames (`frames` of them, the first
        `frames_ago` frames before the newest) the reference explains: coherence.py."""
        return None if self._recent is None else self._recent.echo_coherence(frames_ago, frames, with_mic)

    def refit_copy(self, frames_ago: int, frames: int) -> RefitCopy | None:
        """Those frames of the mic, to be cancelled again by a filter fitted to the seconds
        before them (aec/refit.py)."""
        return None if self._recent is None else self._recent.refit_copy(frames_ago, frames)

    def _relearn(self, segment: np.ndarray) -> None:
        """The reply that just ended, through the filter `relearn_passes` times more. Its
        last frames are silence as long as the filter, so the filter's history is silent
        after each pass, as it is now, live. Once per filter: relearn.py says why."""
        for _ in range(self.relearn_passes):
            for frame in segment:
                self._replay_pcm[:] = frame
                self._lib.speex_echo_cancellation(
                    self._echo, self._replay_mic_p, self._replay_reference_p, self._replay_out_p
                )
        self.relearns += 1
        self._filter_relearnt = True

    def reset(self) -> None:
        """Forgets the room by rebuilding both states.

        speex_echo_state_reset leaves some adaptation state behind (after it, the output
        differs from a new canceller's from the first frame on), and the preprocessor has no
        reset call at all. Rebuilding takes ~30 µs.
        """
        if self._echo is None:
            return
        self.close()
        self._open()
        self._new_watchers(self.path_watch is not None)
        self._reply_frames.clear()
        if self._recent is not None:
            self._recent.clear()
        self._filter_relearnt = False
        self._speaker_gain = 1.0

    def close(self) -> None:
        """Frees the states; safe to call twice (and again from __del__)."""
        self._forget_previous()
        preprocess, echo = self._preprocess, self._echo
        self._preprocess = self._echo = None
        if preprocess:
            self._lib.speex_preprocess_state_destroy(preprocess)
        if echo:
            self._lib.speex_echo_state_destroy(echo)

    def __del__(self) -> None:
        if hasattr(self, "_lib"):
            self.close()


def create(options: SpeexOptions, aec: AecSettings, **kwargs: Any) -> SpeexCanceller | DriftCompensated:
    """From `[aec.speex]`; keyword arguments override single options. With `drift_compensation`
    the reference is first resampled onto the mic's clock."""
    settings = options.model_dump(exclude={"drift_compensation"})
    canceller = SpeexCanceller(**{**settings, **kwargs})
    if not options.drift_compensation:
        return canceller
    return DriftCompensated(canceller, drift_ppm=aec.drift_ppm)
