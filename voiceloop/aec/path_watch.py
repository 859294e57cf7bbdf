"""Noticing that the echo path changed (someone walked between speaker and mic) and keeping
what the filter no longer removes from sounding like speech while it re-learns.

Measured (bench_aec person-walks): after a path change mid-reply speex's filter leaves a
residual only 0-10 dB under the mic for ~3 s, and silero calls 3.1 s of it speech. Speex
re-learns slowly because it cannot tell its own error from the user talking, so it adapts
cautiously; a filter rebuilt from scratch learns in ~1 s. Stronger residual-echo suppression
in speex's preprocessor does nothing here (its residual estimate comes from the same wrong
filter): -60 or -80 dB still left 2.6 s of false speech.

So the question is the one speex cannot answer: is the residual the echo, or the user? Echo
is the reference through a room, so it correlates with the reference at a steady lag; the
user does not. GCC-PHAT (phase only: level and spectrum do not matter) of the linear residual
against the reference over the last WINDOW_S tells them apart: its peak over the RMS stood at
7-26 after a path change (median 15), 3-7 in double talk (90th percentile), 5-15 for the
echo a linear filter never removes (a clipping speaker at +10 dB). It is asked only while the
residual is loud next to the mic (RESIDUAL_DB) and at most every CHECK_FRAMES, so a converged
room costs nothing and double talk ~20 µs per frame on average.

Where the peak lies matters as much as its height. Two voices at the same pitch (a user
talking over a reply in the same synthetic voice; a user who hums the reply's note) are also
phase-locked: PHAT turns both into pulse trains, and their correlation is a comb with a tooth
every pitch period, one of which always falls within the lags searched, 11-14 over the RMS.
Measured in tests/test_soak.py's long reply (espeak user over espeak reply, offline room): the
one check that landed on the onset of the user's "stop" found 13-14.5 at lags -5.5 and +3 ms
while the echo sat at +10 ms; the word's loudest 50 ms were held down 40 dB and pocketsphinx
heard "what is the" (the reply went on, 3 runs in 4). Echo is where the mic holds the
reference, so the mic is correlated too and the residual asked about lags from the echo's on
(from ECHO_LAG_S before the mic's peak): nothing of the room arrives before its direct sound,
and a path change leaves its residual at or after it (a body shadowing the direct path, a
reflection off it 2.5 ms later, a new tail). The same soak check then found 3.5; a residual
that is echo (the first reply, the filter still learning) 12-16 at the echo's lag, as before.
The mic's FFT is spared when the residual is below the threshold the check is compared with
at every lag.
The comb's teeth after the echo's lag are what is left to fool it (not seen here: the comb
is highest near zero lag, where the two voices line up).

- A loud residual that is the echo is turned down by GATE_DB until the next check: residual
  echo of any cause (a clipping speaker, a filter still learning) is not speech.
- A path change is that, suddenly, after deep cancellation and lasting REBUILD_AFTER checks:
  the filter is rebuilt (`on_diverged`) and, while it re-learns (until the residual is
  CONVERGED_DB under the mic, at most RECOVERY_FRAMES), the output stays down unless a check
  finds the residual plainly not the echo (the user talking over it).
- While a rebuilt filter re-learns, a user at +10 dB of echo is under the echo in every check:
  GCC-PHAT weighs each bin alike, and the bins the echo fills keep it over USER_CLARITY however
  loud the user is (mandarin-10db-walks: 12 of the 14 interruptions the barge-in bench missed
  were said in such a hold). So the canceller can ask the speaker to play quieter while it
  re-learns (`[aec.speex] relearn_duck_db`, `SpeexCanceller.speaker_gain`; -10 dB in the
  default profile, README), and where it does (`user_coherence`) a residual the reference
  explains little of, band by band (Welch, coherence.py: the user's share of the bands), is the
  user too. Replayed over held windows of kept bench sessions, the last 0.4 s with 0.15 s or
  more of the user against the echo alone: ducked 10 dB, users under 0.22 in 59 of 79 checks,
  the echo in 6 of 241; not ducked, 23 of 143 against 17 of 150.
- The hold is as long as the rebuilt filter cancels too little, and speex learns a changed
  room in ~1 s of live frames. So the canceller can also feed the watch's window (`window`)
  through the rebuilt filter again while it re-learns (`[aec.speex] relearn_replay_every`, 5
  in the default profile; speex.py has the figures): in mandarin-10db-walks it then removes
  ~11 dB a second after the rebuild rather than ~5, and the residual of a user under the echo
  falls under USER_CLARITY often enough to be let out of the hold.
- Whoever walked in walks out again, and the path goes back to the one before: the filter a
  rebuild replaced is kept as it was and asked back (`recall`) where a check hears the echo
  after a change, or once playback returns from a pause (the walk may fall where nothing
  played), from RECALL_AFTER frames of playback on. Asked back, it cancels at once; a new
  filter would re-learn for a second with its output held down, the user's words with it.
  "Sudden" counts played frames only: a pause is no sign that the filter stopped cancelling,
  and with it counted a walk between two replies was never rebuilt for (6 rebuilds in 39
  bench sessions), so there was no filter from before to ask back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from voiceloop.aec.coherence import coherence
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE

WINDOW_S = 0.4
CHECK_FRAMES = 5  # 50 ms between questions while the residual is loud
RESIDUAL_DB = -8.0  # residual over mic (smoothed): below, the filter is doing its job
CONVERGED_DB = -15.0  # residual over mic: the filter has learnt the room
CLEAR_ECHO = 10.0  # GCC-PHAT peak over RMS: the residual is the reference through a room
MAX_LAG_S = 0.05  # the compensated reference leads its echo by ~10-15 ms; residual echo is near
MIN_LAG_S = -0.01
ECHO_LAG_S = 0.002  # the residual's peak counts from this long before the mic's (the echo's)
# A path change is sudden: a filter that removed DEEP_DB of the echo within SUDDEN_FRAMES now
# leaves a residual within RESIDUAL_DB of the mic. Residual echo that a linear filter never
# removes (a clipping speaker at +10 dB) is loud too, but never follows deep cancellation, and
# rebuilding the filter for it only loses what it had learnt.
DEEP_DB = -20.0
SUDDEN_FRAMES = 50
REBUILD_AFTER = 3  # checks in a row (150 ms): a lasting change, not a transient
RECOVERY_FRAMES = int(1.5 * SAMPLE_RATE) // FRAME_SAMPLES  # a rebuilt filter learns in ~1 s
QUIET_FRAMES = 10  # a pause this long (100 ms) may hide a walk: the filter from before is asked
RECALL_FRAMES = 30  # frames of playback after a pause within which a check may ask
RECALL_AFTER = 8  # frames of playback first: what fits fewer frames is chance
# While re-learning with the speaker ducked, below this (coherence.py's Welch measure over the
# window) the residual is the user.
USER_COHERENCE = 0.22
USER_CLARITY = 7.0  # while re-learning, below this the residual is the user (double talk: 3.5-6.6)
# Below the threshold a check is compared with (CLEAR_ECHO, or USER_CLARITY while re-learning)
# at every lag, where the echo is changes no decision: the mic's FFT is spared (most checks in
# double talk, and a clipping speaker's 7-10; measured per check ~600 µs without it, ~900 with).
UNCLEAR = min(CLEAR_ECHO, USER_CLARITY)
GATE_DB = -40.0
GATE = 10 ** (GATE_DB / 20)
ACTIVE_POWER = FRAME_SAMPLES * 10 ** (-50 / 10)  # reference frame energy: -50 dBFS
SMOOTHING = 0.3  # per frame: ~30 ms
BAND_HZ = (200.0, 4000.0)
_LOUD, _CONVERGED, _DEEP = (10 ** (db / 10) for db in (RESIDUAL_DB, CONVERGED_DB, DEEP_DB))


def _phase_correlation(
    reference_band: np.ndarray, signal: np.ndarray, size: int, band: slice, min_lag: int, max_lag: int
) -> np.ndarray:
    """GCC-PHAT of `signal` against the reference (its band of the spectrum, conjugated) over
    its RMS across all lags, at the lags min_lag..max_lag in order (only those are divided by
    the RMS: the same values as dividing the whole correlation, for a tenth of the work)."""
    cross = reference_band * np.fft.rfft(signal, size)[band]
    cross /= np.maximum(np.abs(cross), 1e-20)
    full = np.zeros(size // 2 + 1, np.complex128)
    full[band] = cross
    correlation = np.fft.irfft(full, size)
    return _near(correlation, min_lag, max_lag) / (np.sqrt(np.mean(np.square(correlation))) + 1e-20)


@functools.cache
def _fft_plan(samples: int, min_lag: int, max_lag: int) -> tuple[int, slice]:
    """(FFT size, band of its bins) for a window of `samples` searched over these lags."""
    size = 1 << int(np.ceil(np.log2(samples + max_lag - min_lag)))
    return size, slice(*(int(hz * size / SAMPLE_RATE) for hz in BAND_HZ))


def _near(correlation: np.ndarray, min_lag: int, max_lag: int) -> np.ndarray:
    """The lags min_lag..max_lag, in order."""
    return np.concatenate([correlation[correlation.size + min_lag :], correlation[: max_lag + 1]])


def echo_clarity(
    reference: np.ndarray,
    residual: np.ndarray,
    min_lag: int,
    max_lag: int,
    mic: np.ndarray | None = None,
    compared_with: float = UNCLEAR,
) -> float:
    """Peak of the band-limited GCC-PHAT correlation of `residual` against `reference` over its
    RMS across all lags: high when the residual is the reference delayed and filtered, near
    3-5 for unrelated signals of this length. Searched within [min_lag, max_lag], or, given the
    `mic`, from ECHO_LAG_S before the lag where the mic holds the reference (the echo's) on.

    A caller that only compares the answer with one threshold says so (`compared_with`): a
    residual below it at every lag is below it from the echo's lag on too, so the mic's FFT
    is spared and the peak returned (on the same side of that threshold as the full answer)."""
    size, band = _fft_plan(reference.size, min_lag, max_lag)
    reference_band = np.conj(np.fft.rfft(reference, size)[band])
    near = _phase_correlation(reference_band, residual, size, band, min_lag, max_lag)
    peak = float(np.max(near))
    if mic is None or peak < compared_with:
        return peak  # low at every lag: low from the echo's lag on too
    echo_at = int(np.argmax(_phase_correlation(reference_band, mic, size, band, min_lag, max_lag)))
    return float(np.max(near[max(echo_at - int(ECHO_LAG_S * SAMPLE_RATE), 0) :]))


class PathWatch:
    """Fed every frame with what the linear filter saw and left; returns what to multiply the
    canceller's output by (1, or GATE). `changes` counts the path changes it acted on."""

    def __init__(
        self,
        on_diverged: Callable[[], None],
        recall: Callable[[np.ndarray, np.ndarray, np.ndarray], bool] | None = None,
        user_coherence: float = 0.0,
    ) -> None:
        self.on_diverged = on_diverged
        # Given the last WINDOW_S (mic, reference and what the filter left, in frames, oldest
        # first), switches to the filter from before the last change where it fits them better.
        self.recall = recall
        # While re-learning, a residual the reference explains less of than this is the user
        # (0 = off: only where the speaker plays quieter meanwhile, see the module's docstring).
        self.user_coherence = user_coherence
        slots = int(WINDOW_S * SAMPLE_RATE) // FRAME_SAMPLES
        self._reference = np.zeros((slots, FRAME_SAMPLES), np.float32)
        self._residual = np.zeros_like(self._reference)
        self._mic = np.zeros_like(self._reference)
        self._frames = 0
        self._mic_power = self._residual_power = 0.0
        self._since_check = CHECK_FRAMES
        self._streak = 0  # checks in a row that found the residual to be the echo
        self._recovering = 0  # frames left of re-learning after a rebuild
        self._since_deep = SUDDEN_FRAMES + 1  # frames since the filter removed DEEP_DB
        self.gain = 1.0
        self.changes = 0  # path changes acted on (the filter rebuilt, or the one before taken back)
        self.recalls = 0  # of those, the filter from before taken back
        self._quiet = 0  # frames since the reference last played
        self._recall_due = 0  # frames of playback left, since a pause, in which to ask
        self._playing = 0  # frames played since the last pause
        # What a loud residual that is the echo is multiplied by outside a re-learn: GATE, or
        # 1 where a per-band suppressor follows and reads `echo_heard` (aec/residual.py).
        self.echo_gain = GATE
        self.echo_heard = False
        # What the output would be multiplied by were echo_gain GATE: where it is below the
        # gain in use, the speex canceller hands the recogniser its per-band cut as well.
        self.held_gain = 1.0

    def add(self, mic: np.ndarray, reference: np.ndarray, residual: np.ndarray) -> float:
        """Cheap unless the residual is loud: three dot products and three frame copies."""
        slot = self._frames % self._reference.shape[0]
        self._reference[slot] = reference
        self._residual[slot] = residual
        self._mic[slot] = mic
        self._frames += 1
        self._since_check += 1
        self._mic_power += SMOOTHING * (float(np.dot(mic, mic)) - self._mic_power)
        self._residual_power += SMOOTHING * (float(np.dot(residual, residual)) - self._residual_power)
        mic_power, residual_power = self._mic_power + 1e-12, self._residual_power
        playing = float(np.dot(reference, reference)) >= ACTIVE_POWER
        if playing:  # a pause is no sign that the filter stopped cancelling: not counted
            self._since_deep = 0 if residual_power < mic_power * _DEEP else self._since_deep + 1
            if self._quiet >= QUIET_FRAMES:
                self._recall_due, self._playing = RECALL_FRAMES, 0
            self._recall_due = max(self._recall_due - 1, 0)
            self._playing += 1
            self._quiet = 0
        else:
            self._quiet += 1
        if self._frames < self._reference.shape[0]:
            return 1.0
        if self._recovering:
            self._recovering -= 1
            if residual_power < mic_power * _CONVERGED or not self._recovering:
                self._recovering, self._streak, self.gain = 0, 0, 1.0
            elif self._since_check >= CHECK_FRAMES:
                # Re-learning: held down unless the residual plainly is not the echo (the user).
                self.gain = 1.0 if self._is_user() else GATE
            self.held_gain = self.gain
            return self.gain
        if residual_power < mic_power * _LOUD or not playing:
            self._streak, self.gain, self.echo_heard, self.held_gain = 0, 1.0, False, 1.0
        elif self._since_check >= CHECK_FRAMES:
            echo = self._clarity(CLEAR_ECHO) >= CLEAR_ECHO
            self._streak = self._streak + 1 if echo else 0
            self.echo_heard = echo
            self.gain = self.echo_gain if echo else 1.0
            self.held_gain = GATE if echo else 1.0
            changed = self._since_deep <= SUDDEN_FRAMES and self._streak >= REBUILD_AFTER
            ask = changed or (self._recall_due and self._playing >= RECALL_AFTER)
            if echo and ask and self._recalled():
                self.changes += 1
                self._streak = 0
            elif changed:
                self.changes += 1
                self._recovering = RECOVERY_FRAMES
                self.on_diverged()
        return self.gain

    @property
    def relearning(self) -> bool:
        """A rebuilt filter is learning the room: it cancels little yet."""
        return self._recovering > 0

    def window(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last WINDOW_S of (mic, reference, residual) as added, in frames, oldest first."""
        oldest = self._frames % self._reference.shape[0]
        mic, reference, residual = (
            np.roll(ring, -oldest, axis=0) for ring in (self._mic, self._reference, self._residual)
        )
        return mic, reference, residual

    def _is_user(self) -> bool:
        if self._clarity(USER_CLARITY) < USER_CLARITY:
            return True
        if self.user_coherence <= 0:
            return False
        reference = self._reference.ravel()
        if float(np.mean(np.square(reference))) * FRAME_SAMPLES < ACTIVE_POWER:
            return False  # nothing played: no measure of what the reference explains
        return coherence(reference, self._residual.ravel()) < self.user_coherence

    def _recalled(self) -> bool:
        """Asks once (per pause or change) whether the filter from before fits the room now."""
        self._recall_due = 0
        if self.recall is None or not self.recall(*self.window()):
            return False
        self.recalls += 1
        return True

    def _clarity(self, compared_with: float) -> float:
        """The rings as they lie, not put in order: both turn at the same frame, so only the
        few samples either side of that seam pair up wrongly (lags are under MAX_LAG_S). Only
        which side of `compared_with` the answer falls on is used (see echo_clarity)."""
        self._since_check = 0
        lags = int(MIN_LAG_S * SAMPLE_RATE), int(MAX_LAG_S * SAMPLE_RATE)
        rings = self._reference.ravel(), self._residual.ravel()
        return echo_clarity(*rings, *lags, mic=self._mic.ravel(), compared_with=compared_with)
