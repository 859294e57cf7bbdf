"""A canceller that sees one clock: the reference resampled onto the mic's before it reaches it.

The drift estimator (voiceloop/aec/drift.py) says how many ppm the speaker runs ahead of the
mic; the reference is then read at positions advancing by 1 + ppm·1e-6 per mic sample
(voiceloop/audio/fractional.py), so the echo path the inner canceller models stops moving.
Reading between samples rather than dropping or repeating one matters: a dropped sample is a
one-sample step in the path, and speex's filter re-learns after each.

The reader trails the newest reference sample by LAG_SAMPLES (the interpolator's half-width
plus room for a fast speaker to run ahead): 3 ms of the reference's lead over its echo. A
fast speaker's echo arrives earlier and earlier against a reference written on the mic's
clock (+80 ppm: a sample every 0.8 s), so the reader catches up with the newest sample and
must be set back: re-centred, while the reference is silent. Setting only the reader back
moves the echo against the reference the inner filter learnt by that much (a path change):
measured in the loop (bench_bargein, mandarin-10db-drift80), the re-centring 29.6 s into the
session left the sixth reply's filter removing 0-9 dB instead of 25, its first words heard as
speech and its interruption missed; and as each one gave up part of the reference's lead, a
session at +120 ppm kept 25 dB only for its first minute and 0-3 dB after (every reply from
64 s on: the reference had fallen behind its echo). So the mic the inner canceller hears is
set back by the same whole samples (MicDelay below): the two streams keep the alignment the
filter learnt and only the output's lag grows, by what the clocks drifted apart (+80 ppm: 5 ms
a minute), up to MAX_MIC_DELAY_SAMPLES. A slow speaker's reader only falls further behind into
the kept history, which lasts hours; it is set forward when that runs out (shifting the path).

The same measurements say where the echo is: a device whose output delay was never configured
(`voiceloop calibrate`) hands out a reference that leads its echo by that whole delay, and
speex, though its 256 ms filter spans 150 ms, heard itself as speech for 4.3 s per 10 s of
echo there. Once the first measurements agree, the reference is read that much later, once.
"""

from __future__ import annotations

import logging

import numpy as np

from voiceloop.aec.base import EchoCanceller, speaker_gain
from voiceloop.aec.coherence import EchoCoherence
from voiceloop.aec.drift import SETTLED_SPAN_S, DriftEstimator
from voiceloop.aec.refit import RefitCopy
from voiceloop.audio.fractional import HALF, StreamReader
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE

log = logging.getLogger(__name__)

MARGIN_SAMPLES = 40  # a speaker 120 ppm fast uses this up in 20 s of session time
LAG_SAMPLES = HALF + MARGIN_SAMPLES
RECENTRE_SAMPLES = 8  # re-centre when the margin left is this small (and the reference silent)
SILENT_FRAMES = 30  # 0.3 s of silent reference: nothing of it is left to cancel
# The mic's delay, paired with a fast speaker's re-centring, grows with the drift (+80 ppm: 60
# ms in 12.5 minutes of session). Past it the reader alone is set back, as before: the filter
# re-learns after each (a path change) and the reference's lead shrinks.
MAX_MIC_DELAY_SAMPLES = SAMPLE_RATE * 60 // 1000
MAX_LAG_SAMPLES = SAMPLE_RATE // 2
# The echo lag the drift estimator measures also says whether the configured device delay is
# right: a calibrated device's reference leads its echo by ~10 ms (the lead speex wants; 10-60
# ms gave it 27-30 dB, speex.py), an uncalibrated one's by its whole output delay. Beyond
# MISALIGNED_SAMPLES the reference is read that much later, once, when ALIGN_AFTER measurements
# in a row agree within ALIGN_SPREAD_SAMPLES (the first ~1 s of the first reply).
ALIGNED_LEAD_SAMPLES = SAMPLE_RATE // 100
MISALIGNED_SAMPLES = SAMPLE_RATE // 20
ALIGN_AFTER = 3
ALIGN_SPREAD_SAMPLES = 2.0
# The drift is first known after ~1.5 s of playback (drift.py: a 1 s span of 0.5 s windows)
# and the inner filter settles ~1 s after that: measured, silero heard residual echo up to
# 3.3 s into the first reply at ±120 ppm, none after. Later replies start compensated. The
# price (bench_bargein, desk-quiet, 6 pairs): the first interruption, 0.6-1.1 s into the
# first reply, needs 1.5 s of voice until then, and was missed (5 of 6 caught; speex: 6).
ESTIMATE_WARMUP_S = 1.5
# A calibrated drift (`voiceloop calibrate --drift-s 30`: ±2 ppm) stands until the echo's own
# estimate is as sure (drift.SETTLED_SPAN_S of it), unless the two differ by more than this:
# then the calibration was made on other devices, and the echo's estimate is taken at once.
# (The first estimates, ~1.5 s into a reply, are a few ppm off: 77.8 at 80 in
# tests/test_aec_drift.py's room; after a 1.4 s greeting 57.2 at 60 and 88.9 at 80.)
STALE_CALIBRATION_PPM = 15.0


class DriftCompensated:
    """Wraps any EchoCanceller; same protocol. `drift_ppm` is the estimate in use: until the
    assistant has spoken for a few seconds, the calibrated one (`[aec] drift_ppm`), else 0.

    Starting from a calibrated drift is what lets the first reply be cancelled where nothing
    was played before it: its drift is first measured ~1.5 s into it, and until then a filter
    chasing an echo that slides (80 ppm: a sample every 0.8 s) removes only a few dB of it (a
    greeting of 1 s or more is measured instead). Measured when the drift took 1.5 s of
    windows, ~0.5 s into the first reply after the greeting: bench_bargein --calibrated-drift, seeds
    11-23: drift+60ppm caught 66 → 78 of 78 (every first-reply interruption, 0.6-1.1 s in);
    mandarin-10db-drift80 55 → 57, with its reply held by its own echo 35 → 82 times in ~135
    replies: calibrated, a drifting room's later ERLE is its twin's on one clock, 2-5 dB under
    what it reaches uncalibrated (README, echo section)."""

    def __init__(self, inner: EchoCanceller, drift_ppm: float | None = None) -> None:
        self.inner = inner
        self.calibrated_ppm = drift_ppm
        self.name = f"{inner.name}+drift"
        # An inner canceller that holds down residual correlated with the reference (speex's
        # path watch) needs no extra warm-up: measured at ±60-120 ppm, with it silero heard no
        # echo from 1 s of playback on, without it up to 1 s of "speech" between 2 and 3.5 s.
        watched = getattr(inner, "path_watch", None) is not None
        self.warmup_s = inner.warmup_s + (0.0 if watched else ESTIMATE_WARMUP_S)
        self.estimator = DriftEstimator()
        self._reset_reader()

    def _reset_reader(self) -> None:
        self._mic = MicDelay(MAX_MIC_DELAY_SAMPLES)
        self._mic_delay_spent = False  # said once per session
        self.output_delay_samples = self.inner.output_delay_samples
        self._reader = StreamReader(keep=MAX_LAG_SAMPLES + FRAME_SAMPLES)
        self._position = float(-LAG_SAMPLES)  # of the next output sample, in input samples
        self.alignment_samples = 0  # how much later than configured the reference is read
        self._delay_checked = False  # the first agreeing measurements decide, once
        self._asked_at = -1.0  # the newest measurement's centre when last asked
        self._silent_frames = 0
        self.recentred = 0
        self.ratio = 1.0 + (self.calibrated_ppm or 0.0) * 1e-6  # until the echo says
        self._said_stale = False

    @property
    def recognition_frame(self) -> np.ndarray | None:
        """The inner canceller's copy of its last frame for the recogniser, if it keeps one."""
        return getattr(self.inner, "recognition_frame", None)

    @property
    def speaker_gain(self) -> float:
        """The inner canceller's ask of the speaker (aec/base.py)."""
        return speaker_gain(self.inner)

    def echo_coherence(self, frames_ago: int, frames: int, with_mic: bool = True) -> EchoCoherence | None:
        """The inner canceller's (aec/coherence.py), if it keeps what its filter left."""
        inner = getattr(self.inner, "echo_coherence", None)
        return None if inner is None else inner(frames_ago, frames, with_mic)

    def refit_copy(self, frames_ago: int, frames: int) -> RefitCopy | None:
        """The inner canceller's (aec/refit.py), if it keeps what its filter took."""
        inner = getattr(self.inner, "refit_copy", None)
        return None if inner is None else inner(frames_ago, frames)

    @property
    def drift_ppm(self) -> float:
        return (self.ratio - 1.0) * 1e6

    def process(self, mic_frame: np.ndarray, reference_frame: np.ndarray) -> np.ndarray:
        self.estimator.add(mic_frame, reference_frame)
        ppm = self.estimator.ppm
        if ppm is not None and self._measured_over_calibrated(ppm):
            self.ratio = 1.0 + ppm * 1e-6
        if not self._delay_checked and len(self.estimator.lags) >= ALIGN_AFTER:
            self._align()
        reference = self._resampled(reference_frame)
        return self.inner.process(self._mic.delayed(mic_frame), reference)

    def _measured_over_calibrated(self, ppm: float) -> bool:
        """Whether the echo's estimate should replace the calibrated drift (see
        STALE_CALIBRATION_PPM); says once when the calibration looks stale."""
        calibrated = self.calibrated_ppm
        if calibrated is None or self.estimator.span_s >= SETTLED_SPAN_S:
            return True
        if abs(ppm - calibrated) <= STALE_CALIBRATION_PPM:
            return False
        if not self._said_stale:
            self._said_stale = True
            log.warning(
                "the speaker's clock runs %+.0f ppm against the mic's, not the %+.1f ppm "
                "calibrated: following the echo; run `voiceloop calibrate --drift-s 30` again",
                ppm,
                calibrated,
            )
        return True

    def _align(self) -> None:
        """Reads the reference later by what the device's delay was misconfigured by."""
        measured = self.estimator.lags
        if measured[-1][0] == self._asked_at:
            return  # no new measurement since (one every 0.25-1 s): nothing new to decide on
        self._asked_at = measured[-1][0]
        lags = [measured[-k][1] for k in range(1, ALIGN_AFTER + 1)]  # newest first (a deque's ends)
        if max(lags) - min(lags) > ALIGN_SPREAD_SAMPLES:
            return  # not agreed yet: asked again
        self._delay_checked = True
        if lags[0] < MISALIGNED_SAMPLES:
            return  # the configured delay is right
        shift = int(round(lags[0])) - ALIGNED_LEAD_SAMPLES - LAG_SAMPLES
        shift = min(shift, MAX_LAG_SAMPLES // 2)
        self._position -= shift
        self.alignment_samples = shift

    def _resampled(self, reference_frame: np.ndarray) -> np.ndarray:
        reader = self._reader
        reader.write(reference_frame)
        silent = not np.count_nonzero(reference_frame)  # a quarter of .any()'s cost per frame
        self._silent_frames = self._silent_frames + 1 if silent else 0
        # How far the reader has wandered from its nominal lag behind the newest sample: a
        # fast speaker uses up the margin, a slow one only lengthens the history read.
        wandered = self._position - (reader.written - FRAME_SAMPLES - LAG_SAMPLES - self.alignment_samples)
        running_out = wandered > MARGIN_SAMPLES - RECENTRE_SAMPLES or -wandered > MAX_LAG_SAMPLES // 2
        if self._silent_frames >= SILENT_FRAMES:
            self._recentre(wandered, running_out)
        start = self._position
        # A clock that runs away holds at the newest sample: never read what is not written.
        self._position = min(start + FRAME_SAMPLES * self.ratio, reader.newest_readable())
        if self._silent_frames * FRAME_SAMPLES > reader.written - start + HALF:
            return np.zeros_like(reference_frame)  # everything it would read is silence
        return reader.read_ramp(start, self.ratio, FRAME_SAMPLES)

    def _recentre(self, wandered: float, running_out: bool) -> None:
        """In a silent reference: a fast speaker's reader is set back by whole samples with the
        mic (the inner filter sees no change), whenever a sample's worth is there to give back
        while the mic's delay has room; otherwise, as a path change, only when running out."""
        whole = int(wandered)
        if whole >= 1 and self._mic.delay_samples + whole <= self._mic.max_samples:
            self._mic.delay_samples += whole
            self.output_delay_samples = self.inner.output_delay_samples + self._mic.delay_samples
            self._position -= whole
            self.recentred += 1
        elif running_out:
            if whole >= 1 and not self._mic_delay_spent:
                self._mic_delay_spent = True
                log.warning(
                    "the speaker's clock runs %.0f ppm ahead of the mic's: the echo canceller "
                    "has held the mic back %.0f ms to follow it, its most; from now on it "
                    "re-learns the echo path after each pause",
                    self.drift_ppm,
                    self._mic.delay_samples * 1000 / SAMPLE_RATE,
                )
            self._position -= wandered
            self.recentred += 1

    @property
    def mic_delay_samples(self) -> int:
        """How far the mic the inner canceller hears lags the real one (the drift given back)."""
        return self._mic.delay_samples

    def session_fields(self) -> dict[str, float | None]:
        """What the session log keeps of this canceller: the drift it measured between the
        speaker's clock and the mic's (None: the assistant never spoke long enough to say) and
        how much later than configured it reads the reference."""
        ppm = self.estimator.ppm
        return {
            "aec_drift_ppm": None if ppm is None else round(ppm, 1),
            # Where it started (`[aec] drift_ppm`, from `voiceloop calibrate --drift-s`), if set.
            "aec_drift_calibrated_ppm": self.calibrated_ppm,
            # How much later than `aec.delay_ms` says the echo came: `voiceloop calibrate` sets it.
            "aec_delay_correction_ms": round(self.alignment_samples * 1000 / SAMPLE_RATE, 1),
            # The mic held back with each re-centring of a fast speaker's reference.
            "aec_mic_delay_ms": round(self._mic.delay_samples * 1000 / SAMPLE_RATE, 1),
        }

    def reset(self) -> None:
        """Forgets the room, the drift measured included (a new device may run at another
        rate): back to the calibrated drift, as at the start."""
        self.inner.reset()
        self.estimator = DriftEstimator()
        self._reset_reader()


class MicDelay:
    """The mic frames delayed by a whole number of samples, which only grows: each time it
    does, the last few samples are heard again, in a silent reference (a few ms of the room's
    noise, or of the user's voice, repeated once)."""

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self.delay_samples = 0
        self._line = np.zeros(max_samples + FRAME_SAMPLES, np.float32)

    def delayed(self, mic_frame: np.ndarray) -> np.ndarray:
        line = self._line
        line[:-FRAME_SAMPLES] = line[FRAME_SAMPLES:]
        line[-FRAME_SAMPLES:] = mic_frame
        if not self.delay_samples:
            return mic_frame
        end = line.size - self.delay_samples
        return line[end - FRAME_SAMPLES : end].copy()
