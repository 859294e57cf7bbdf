"""Held speech over a reply, cancelled again by a filter fitted to the echo just before it.

After a walk the adaptive filter re-learns the room over a second or more, and a "stop" said
meanwhile reaches the recogniser under echo that the filter has not yet learnt to remove: every
copy the canceller keeps is heard as nothing, and the mic's own copy is the reply's voice as
much as the user's (bench_bargein's "heard, no words" misses, and the echo blips the mic's copy
heard as phrases). The echo of the seconds before the speech is the room's new path, plain to
see once it is all there: a least-squares fit of the reference to the mic over those seconds,
in one go, removes what an adaptive filter removes only after it has heard them many times.

The fit is per frequency band, as a convolutive transfer function (`TAPS` frames of the
reference per band): a short STFT cannot hold a room's tail in one frame, and one long frame
would smear the user's onset. Made only where the copies the canceller keeps are heard as
nothing (`turn.hear_refit_copy`), in the recogniser's worker, so its cost (16-20 ms of CPU,
about one recognition: scripts/bench_refit.py) is never on the audio path nor the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import istft, stft

from voiceloop.audio.frames import SAMPLE_RATE

SEGMENT = 512  # 32 ms bands
HOP = 128
# Frames of the reference each band's filter spans: 24 hops, 192 ms, longer than the delay and
# the early part of a room's tail.
TAPS = 24
# The fit's echo: the speech's own span is left out of it, where the user is most of the mic.
# Shorter fits leave more of the echo, and a recogniser held to phrases hears that as one:
# offline over bench_bargein's kept echo blips heard as no words, 1 of 200 heard as words with
# 2 s or 1.5 s, 5 with 1 s, 11 with 3 s (which reach back past more walks); of 27 users heard
# as nothing, 16 given their words with 2 s, 14 with 1.5 s.
FIT_S = 2.0
# ...and at least this much of it since the path watch last saw the path change.
MIN_FIT_S = 1.5
# Tikhonov weight, relative to the band's reference power per frame over all taps: where a band
# held almost no reference, its filter stays near zero instead of fitting noise.
RIDGE = 1e-3


@dataclass(frozen=True)
class RefitCopy:
    """Held speech's span of the mic and the reference as the canceller took them, the fit's
    seconds before it in front. Cancelled again only when heard (`heard`, in the recogniser's
    worker): most held speech is words or a backchannel in the copies before it."""

    mic: np.ndarray = field(repr=False)
    reference: np.ndarray = field(repr=False)
    fit_samples: int

    def __len__(self) -> int:
        return self.mic.size - self.fit_samples

    def heard(self) -> np.ndarray:
        return refit_residual(self.mic, self.reference, self.fit_samples)


def refit_residual(mic: np.ndarray, reference: np.ndarray, fit_samples: int) -> np.ndarray:
    """The mic after `fit_samples`, less what a filter fitted to the first `fit_samples` of
    `reference` and `mic` (the same clock, the reference aligned as the canceller takes it)
    explains of it. The mic as it was where the fit's span held no reference."""
    _, _, mic_bands = stft(mic.astype(np.float64), SAMPLE_RATE, nperseg=SEGMENT, noverlap=SEGMENT - HOP)
    _, _, reference_bands = stft(
        reference.astype(np.float64), SAMPLE_RATE, nperseg=SEGMENT, noverlap=SEGMENT - HOP
    )
    mic_bands, reference_bands = mic_bands.T, reference_bands.T  # (frames, bands)
    # Frames wholly before the span (each centred on its hop): the fit never hears the speech.
    fitted = min(len(mic_bands), max((fit_samples - SEGMENT // 2) // HOP + 1, 0))
    fit_reference = reference_bands[:fitted]
    if not np.any(fit_reference):
        return mic[fit_samples:].copy()
    gram = _gram(fit_reference)
    ridge = RIDGE * np.real(np.trace(gram, axis1=1, axis2=2)) / fitted + 1e-12
    gram += ridge[:, None, None] * np.eye(TAPS)
    cross = np.stack(
        [np.sum(fit_reference[: fitted - k].conj() * mic_bands[k:fitted], axis=0) for k in range(TAPS)],
        axis=1,
    )  # (bands, taps)
    weights = np.linalg.solve(gram, cross[..., None])[..., 0]
    echo = np.zeros_like(mic_bands)
    for k in range(TAPS):
        echo[k:] += reference_bands[: len(mic_bands) - k] * weights[:, k]
    _, residual = istft((mic_bands - echo).T, SAMPLE_RATE, nperseg=SEGMENT, noverlap=SEGMENT - HOP)
    return residual[fit_samples : mic.size].astype(np.float32)


def _gram(reference_bands: np.ndarray) -> np.ndarray:
    """Each band's sum over frames t of conj(x[t - k]) x[t - l], for taps k and l (x zero
    before the first frame): the least-squares normal matrix, from its first row and one
    outer product, since stepping both taps by one only drops the last frame's term."""
    frames = len(reference_bands)
    rows = np.zeros((reference_bands.shape[1], TAPS, TAPS), np.complex128)
    for lag in range(TAPS):
        rows[:, 0, lag] = np.sum(reference_bands[lag:].conj() * reference_bands[: frames - lag], axis=0)
    last = reference_bands[::-1][: TAPS - 1].T  # (bands, taps - 1): x[T - 1 - j]
    dropped = last.conj()[:, :, None] * last[:, None, :]
    for k in range(1, TAPS):
        rows[:, k, k:] = rows[:, k - 1, k - 1 : TAPS - 1] - dropped[:, k - 1, k - 1 : TAPS - 1]
    upper = np.triu(np.ones((TAPS, TAPS), bool), 1)
    rows[:, upper.T] = rows.transpose(0, 2, 1).conj()[:, upper.T]
    return rows
