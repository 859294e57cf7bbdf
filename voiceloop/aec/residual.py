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

from voiceloop.audio.frames import to_float32

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
SPREAD = np.array([0.25, 0.5, 0.25])  # over neighbouring bands (_update_gains sums it as 1:2:1)


class ResidualSuppressor:
    """Fed each frame with the mic, the linear filter's output and the reference (float, ±1);
    `apply` then filters the frame handed out with the gains learnt from them: numpy's FFT of
    the three windows and three compiled calls (aec/residual_kernels.py) while the reference
    plays; between replies, once every gain is back at 1, a delay.

    At 161 bands numpy's per-call overhead, not the arithmetic, was most of the cost (~50
    calls a frame, ~190 µs of the default canceller's ~470 on this machine): the per-band rule
    now runs as compiled loops over the same arrays, in the same float types and order of
    operations (the gains bit for bit what numpy gave: tests/test_aec_residual_kernels.py)."""

    def __init__(self, frame_samples: int) -> None:
        # Imported here, not with the module: numba's import and the kernels' load (from its
        # on-disk cache; compiled on a first run) cost ~0.5-1 s, paid when a canceller is built,
        # never on the audio thread, and not by code that only imports the speex module.
        from voiceloop.aec import residual_kernels

        self._kernels = residual_kernels
        self.frame_samples = frame_samples
        self.size = FFT_FRAMES * frame_samples
        self.half_taps = int(HALF_TAPS_MS * frame_samples / 10)
        bins = self.size // 2 + 1
        self._window = np.hanning(self.size + 2)[1:-1].astype(np.float32)
        self._taps_by_gain = _taps_by_gain(self.size, self.half_taps)
        self._signal = np.zeros(2 * self.half_taps + frame_samples, np.float32)  # the FIR's input
        self._signals = np.zeros((3, self.size), np.float32)  # mic, residual, reference
        self._windowed = np.zeros_like(self._signals)
        self._spectra = np.zeros((3, bins), np.complex64)
        self._powers = np.zeros((3, bins), np.float32)  # echo estimate, residual, reference
        self._held = np.zeros((2, bins))  # the played reference's power, held short and long
        # Running means (of the three predictors: the echo estimate's power, the short-held
        # reference's, and the latter's total over all bands (distortion); row 3 the
        # residual's power), and the predictors' covariances with the residual's power and
        # their variances.
        self._means = np.zeros((4, bins))
        self._moments = np.zeros((2, 3, bins))  # covariances, variances
        self.leaks = np.zeros((3, bins))
        self._residual_power = np.zeros(bins)
        self._predicted = np.zeros(bins)
        self._shares = np.zeros(bins + 2)  # predicted over residual, a zero band either side
        self.gains = np.ones(bins)
        # The kernel's constants: reference holds (column 0), leak caps (1), passing gain.
        self._constants = np.zeros((3, 3))
        self._constants[:2, 0] = REFERENCE_HOLDS[:, 0]
        self._constants[:, 1] = LEAK_MAX[:, 0]
        self._constants[0, 2] = PASSING_GAIN
        self._active_energy = ACTIVE_POWER * self.size * bins
        self._silent_frames = FFT_FRAMES  # of the reference, in a row
        self._passing = True  # the reference silent and every gain 1: add and apply skip the work
        self.echo_heard = False  # set by a caller that knows the residual is the echo (path watch)

    def add(self, mic: np.ndarray, residual: np.ndarray, reference: np.ndarray) -> None:
        """Learns from one frame of what the linear filter saw and left."""
        kernels = self._kernels
        sounding = kernels.take_frame(
            self._signals,
            self._windowed,
            self._window,
            to_float32(mic),
            to_float32(residual),
            to_float32(reference),
        )
        self._silent_frames = 0 if sounding else self._silent_frames + 1
        silent = self._silent_frames >= FFT_FRAMES
        self._passing = self._passing and silent
        if self._passing:
            return  # nothing played and nothing held down: no echo to predict, every gain 1
        # numpy's stubs know only complex128 outs; float32 input makes (and fills) complex64.
        np.fft.rfft(self._windowed, out=self._spectra)  # type: ignore[arg-type]
        boost, floor_db = (ECHO_HEARD_BOOST, ECHO_FLOOR_DB) if self.echo_heard else (1.0, FLOOR_DB)
        self._passing = kernels.learn_frame(
            self._spectra,
            self._powers,
            self._held,
            self._means,
            self._moments,
            self.leaks,
            self._residual_power,
            self._predicted,
            self._shares,
            self.gains,
            self._constants,
            self.echo_heard,
            silent,
            self._active_energy,
            ECHO_DECAY if self.echo_heard else DECAY,
            LEAK_SMOOTHING,
            POWER_SMOOTHING,
            # SPREAD's 1:4 folded into the overestimate: scaling by a power of two is exact.
            float(SPREAD[0] * OVERESTIMATE * boost),
            10 ** (floor_db / 20),
            RELEASE,
        )

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """`frame` filtered by the current gains; lags its input by `half_taps` samples."""
        return self._kernels.apply_gains(  # type: ignore[no-any-return]
            self._signal, to_float32(frame), self.gains, self._taps_by_gain, self._passing
        )


def _taps_by_gain(size: int, half_taps: int) -> np.ndarray:
    """The FIR's taps as a linear map of the gains: numpy's irfft of the gains (real, one per
    bin of a `size`-point DFT) at lags -half_taps..half_taps, times a Hann taper."""
    bins = size // 2 + 1
    weights = np.full(bins, 2.0)
    weights[0] = 1.0
    weights[-1] = 1.0  # size is even: the Nyquist bin counts once
    lags = np.arange(-half_taps, half_taps + 1)
    taper = np.hanning(2 * half_taps + 3)[1:-1]
    cosines = np.cos(2 * np.pi * np.outer(lags, np.arange(bins)) / size)
    # (bins, taps): the compiled product walks each bin's taps in a row.
    return np.ascontiguousarray((taper[:, None] * weights * cosines / size).T)
