"""Per-frequency suppression of the echo the linear filter leaves, so the user talking over it
keeps the bands where their voice is louder than that echo.

Speex's preprocessor already suppresses residual echo, but its estimate is the filter's echo
estimate times one broadband "leak" figure, and at +10 dB of echo with a clipping mic or
speaker the residual is mostly what no linear filter models: silero still heard 0.25-0.6 s of
echo per 10 s through it, and turning its caps from -40/-15 dB to -60/-40 dB changed nothing
(bench_aec: the residual estimate, not the cap, is what limits it). The path watch's answer,
holding the whole output down 40 dB while the residual correlates with the reference, takes
the user down with the echo: silero heard only 83-92 % of the user's voiced chunks at +10 dB.

This cuts residual echo per band instead, as AEC3's suppressor and speex's own preprocessor
do, from two predictions of the echo left in each band: the filter's echo estimate (mic minus
linear output) and the reference's power, held ~30 ms (its lead over the echo and the room's
tail). Each band learns how much of either is left in the residual as the covariance of the
residual's power with the predictor's over the predictor's variance: the user is independent
of the echo, so talking over it does not teach the leak (speex learns its one leak the same
way). The reference's prediction is what covers a filter that has not learnt the room yet (the
first seconds, a drift still being measured): there the residual is nearly all the echo and the
echo estimate nearly nothing. The gain is 1 minus twice the predicted echo over the residual,
spread over neighbouring bands, floored and released over a few frames. Bands the user
dominates pass; bands the echo dominates are cut.

A third predictor is the held reference's total power, the same figure in every band: what a
clipping speaker or mic leaves is distortion, energy in bands the reference has little of, and
it follows how loud the reply is overall rather than its spectrum. In mandarin-10db (mic at
full scale 1.4 % of the time) the blocks that held most of the output were the reply's loudest,
left only 16-19 dB under the mic, most of it 1-8 kHz (band ERLE 11-19 dB there, 27-32 below).
With this predictor (bench_aec, profile canceller, every room): ERLE 23.0-24.8 → 27.2-34.0 dB in
the four +10 dB rooms, +2-9 dB in the others; the user's voiced chunks kept 91-98 → 94-97 %;
false speech unchanged or lower (person-walks 0.24 → 0.00 s per 10 s).

Where the path watch hears the residual correlate with the reference, the echo's share counts
four times over, held over a longer tail, and the floor goes from -15 to -60 dB: that deep
floor is what keeps a filter still learning from sounding like speech, a shallow one what
keeps the user's words whole for the recogniser.

Measured (bench_aec --cancellers profile+residual, +10 dB rooms): the user's voiced chunks heard
91-98 % (hold: 83-92 %), false speech 0-0.41 s per 10 s (hold: 0.16-0.62), ERLE 23-25 dB
(hold: 15-19). What it hands on is for VAD and barge-in only: the recogniser hears the
canceller's output as it would be without the suppressor (`SpeexCanceller.recognition_frame`),
because in tests/test_soak.py's "stop" said over a long reply
in the same espeak voice (echo 0 dB, filter converged, the path watch silent) the filter's
residual echo sits 10-16 dB under the user, yet the predicted echo is within ~8 dB of the
user in ~40-70 of the word's 161 bands (over 4x the true residual in ~40 of them: the held
predictions and the spread), and 1 - 2 x share cuts those bands 6 dB and more. The output
was 2-7 dB under the user over the word (5-7 dB at its onset) and pocketsphinx heard nothing.
A gentler rule where the watch is silent (0.5 x share) kept the "stop" but lost the
+10 dB rooms (tests/test_aec_residual.py: 88 % of the user in mandarin-10db). With the
recogniser hearing the uncut frame, the soak kept its "stop" as often as without the
suppressor (README, echo section).

The gains are applied to the preprocessor's output as a short linear-phase FIR (HALF_TAPS_MS
either side), so the output lags by that much more (2 ms) rather than a whole overlap-add
frame; the FIR's 4 ms resolves bands ~250 Hz wide.
"""

from __future__ import annotations

import numpy as np

OVERESTIMATE = 2.0  # the predicted echo counts double against the residual
# Deeper floors cost the user: at -30 or -40 dB pocketsphinx heard nothing of "set a timer for
# five minutes" over clipping-10db's echo (tests/test_aec_double_talk.py); at -20 dB it did
# alone but not after the two Mandarin rooms (its cepstral mean carries over), at -15 dB always.
# Measured when the recogniser heard this cut output and kept its front end between
# utterances; it now hears the uncut copy (`recognition_frame`) with a fresh front end each
# time (voiceloop/asr/pocketsphinx.py), so only VAD and barge-in judge this floor: not re-tuned.
FLOOR_DB = -15.0
# Where the path watch heard the residual correlate with the reference (the echo at +10 dB
# through a clipping mic, a filter still learning or re-learning): a deeper floor, the echo's
# predicted share counted ECHO_HEARD_BOOST times over and held over a longer tail.
ECHO_FLOOR_DB = -60.0
ECHO_HEARD_BOOST = 4.0
HALF_TAPS_MS = 2.0  # the gains' FIR: 4 ms long, so bands ~250 Hz wide at 16 kHz
FFT_FRAMES = 2  # analysis window: the last two frames
LEAK_SMOOTHING = 0.02  # per frame: ~0.5 s of echo to learn a band's leak
# Leak caps: of the echo estimate, the residual is at most all of it; the echo can be up to
# 20 dB louder than the reference that made it; one band's distortion is at most all of the
# reference's power.
LEAK_MAX = np.array([[1.0], [100.0], [1.0]])
POWER_SMOOTHING = 0.5  # per frame, of the residual's power
# Per frame, how long a predicted echo and a played reference are held (the reference leads
# its echo by 10-20 ms, and the room's tail follows it): normally, and where echo was heard.
DECAY, ECHO_DECAY = 0.5, 0.8
REFERENCE_HOLDS = np.array([[0.7], [0.85]])
RELEASE = 0.7  # per frame towards a higher gain; lower gains apply at once
ACTIVE_POWER = 10 ** (-60 / 10)  # mean power per sample of the echo estimate: below, no echo
PASSING_GAIN = 0.999  # every band at least this, nothing played: the filter is a delay
SPREAD = np.array([0.25, 0.5, 0.25])  # over neighbouring bands


class ResidualSuppressor:
    """Fed each frame with the mic, the linear filter's output and the reference (float, ±1);
    `apply` then filters the frame handed out with the gains learnt from them: one stacked FFT
    and a few dozen operations on 161 bands while the reference plays; between replies, once
    every gain is back at 1, a delay."""

    def __init__(self, frame_samples: int) -> None:
        self.frame_samples = frame_samples
        self.size = FFT_FRAMES * frame_samples
        self.half_taps = int(HALF_TAPS_MS * frame_samples / 10)
        bins = self.size // 2 + 1
        self._window = np.hanning(self.size + 2)[1:-1].astype(np.float32)
        self._taper = np.hanning(2 * self.half_taps + 3)[1:-1]
        self._signals = np.zeros((3, self.size), np.float32)  # mic, residual, reference
        self._history = np.zeros(2 * self.half_taps, np.float32)
        self._held = np.zeros((2, bins))  # the played reference's power, held short and long
        # Running means, covariances with the residual's power and variances of the three
        # predictors: the echo estimate's power, the short-held reference's, and the latter's
        # total over all bands (distortion).
        self._predictors = np.zeros((3, bins))
        self._predictor_means = np.zeros((3, bins))
        self._residual_mean = np.zeros(bins)
        self._covariance = np.zeros((3, bins))
        self._variance = np.zeros((3, bins))
        self.leaks = np.zeros((3, bins))
        self._residual_power = np.zeros(bins)
        self._predicted = np.zeros(bins)
        self.gains = np.ones(bins)
        self._passing = True  # the reference silent and every gain 1: add and apply skip the work
        self.echo_heard = False  # set by a caller that knows the residual is the echo (path watch)

    def add(self, mic: np.ndarray, residual: np.ndarray, reference: np.ndarray) -> None:
        """Learns from one frame of what the linear filter saw and left."""
        n, signals = self.frame_samples, self._signals
        signals[:, :-n] = signals[:, n:]
        signals[0, -n:], signals[1, -n:], signals[2, -n:] = mic, residual, reference
        self._passing = self._passing and not signals[2].any()
        if self._passing:
            return  # nothing played and nothing held down: no echo to predict, every gain 1
        spectra = np.fft.rfft(signals * self._window)
        spectra[0] -= spectra[1]  # the filter's echo estimate: mic minus what it left
        powers = spectra.real**2 + spectra.imag**2
        echo, left, played = powers
        np.maximum(played, self._held * REFERENCE_HOLDS, out=self._held)
        decay = ECHO_DECAY if self.echo_heard else DECAY
        self._residual_power += POWER_SMOOTHING * (left - self._residual_power)
        if float(echo.sum()) < ACTIVE_POWER * self.size * echo.size:
            self._predicted *= decay
        else:
            predictors = self._predictors
            predictors[0], predictors[1], predictors[2] = echo, self._held[0], self._held[0].sum()
            a = LEAK_SMOOTHING
            self._predictor_means += a * (predictors - self._predictor_means)
            self._residual_mean += a * (left - self._residual_mean)
            deviations = predictors - self._predictor_means
            self._covariance += a * (deviations * (left - self._residual_mean) - self._covariance)
            self._variance += a * (deviations * deviations - self._variance)
            self.leaks = np.minimum(np.maximum(self._covariance / (self._variance + 1e-20), 0.0), LEAK_MAX)
            held = self._held[1] if self.echo_heard else self._held[0]
            predicted = np.maximum(self.leaks[0] * echo, self.leaks[1] * held)
            np.maximum(predicted, self.leaks[2] * predictors[2], out=predicted)
            self._predicted = np.maximum(predicted, decay * self._predicted)
        boost, floor_db = (ECHO_HEARD_BOOST, ECHO_FLOOR_DB) if self.echo_heard else (1.0, FLOOR_DB)
        share = np.convolve(self._predicted / (self._residual_power + 1e-20), SPREAD, mode="same")
        wanted = np.maximum(10 ** (floor_db / 20), 1.0 - OVERESTIMATE * boost * share)
        self.gains = np.where(wanted > self.gains, self.gains + RELEASE * (wanted - self.gains), wanted)
        if not signals[2].any() and float(self.gains.min()) >= PASSING_GAIN:
            self._passing = True  # until the reference plays again: the gains are 1 meanwhile
            self.gains[:] = 1.0
            self._predicted[:] = 0.0

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """`frame` filtered by the current gains; lags its input by `half_taps` samples."""
        if self._passing:  # the filter would be a delay: between replies, most of a session
            signal = np.concatenate([self._history, frame])
            self._history = signal[-2 * self.half_taps :]
            return signal[self.half_taps : self.half_taps + frame.size].copy()
        response = np.fft.irfft(self.gains, self.size)
        taps = np.concatenate([response[-self.half_taps :], response[: self.half_taps + 1]]) * self._taper
        signal = np.concatenate([self._history, frame])
        self._history = signal[-2 * self.half_taps :]
        return np.convolve(signal, taps, mode="valid").astype(np.float32)
