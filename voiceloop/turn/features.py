"""Whisper's 80-bin log-mel features in numpy, for the Smart Turn model.

Smart Turn v3 is a Whisper-tiny encoder, so it only understands the exact features Whisper was
trained on; a slightly different mel scale or floor shifts every probability. These are
transformers' `WhisperFeatureExtractor(feature_size=80)` with `do_normalize=True`, written out
here so that a turn decision needs neither transformers (seconds to import) nor torch, and
checked against transformers in tests/test_turn_smart_turn.py.
"""

from __future__ import annotations

import threading
from functools import cache

import numpy as np
from threadpoolctl import ThreadpoolController

from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.turn.options import MODEL_WINDOW_S

N_FFT = 400  # 25 ms windows
HOP = 160  # 10 ms: 100 frames a second
N_MELS = 80
WINDOW_S = MODEL_WINDOW_S
WINDOW_SAMPLES = int(WINDOW_S * SAMPLE_RATE)
N_FRAMES = WINDOW_SAMPLES // HOP
_MEL_FLOOR = 1e-10
_DYNAMIC_RANGE_LOG10 = 8.0  # 80 dB below the loudest bin is floored
_NORM_EPS = 1e-7


def _hz_to_mel(hz: float | np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, Whisper's): linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = 3.0 * hz / 200.0
    above = hz >= 1000.0
    return np.where(above, 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) * (27.0 / np.log(6.4)), mel)


def _mel_to_hz(mel: float | np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = 200.0 * mel / 3.0
    above = mel >= 15.0
    return np.where(above, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), hz)


@cache
def mel_filters() -> np.ndarray:
    """[201 frequency bins, 80 mels]: triangles evenly spaced in mel from 0 to 8 kHz, each scaled
    to unit area (Slaney normalisation) so wide high-frequency bands do not dominate."""
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    widths = np.diff(edges_hz)
    slopes = edges_hz[None, :] - fft_hz[:, None]
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= 2.0 / (edges_hz[2 : N_MELS + 2] - edges_hz[:N_MELS])
    filters.setflags(write=False)
    return filters


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def _to_mel(power: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """[frames, 201] power spectrum → [frames, 80] mel energies, on one BLAS thread: a product
    this small gains nothing from two, and on a loaded 2-core host OpenBLAS's second thread
    waited for a core: 20 ms a call instead of 1.7 (8 ms of CPU instead of 1.7)."""
    with _blas().limit(limits=1, user_api="blas"):
        mel: np.ndarray = np.matmul(power, mel_filters(), out=out)
    return mel


@cache
def _hann() -> np.ndarray:
    """The periodic Hann window (torch.hann_window's default), as Whisper's STFT uses."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)
    window.setflags(write=False)
    return window


def last_window(audio: np.ndarray, seconds: float = WINDOW_S) -> np.ndarray:
    """The last `seconds` of `audio`, zero-padded at the front to exactly 8 s.

    The front, not the back: the model reads the end of the 800 frames as "now", and the
    trailing silence there is what it judges."""
    keep = min(int(seconds * SAMPLE_RATE), WINDOW_SAMPLES)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)[-keep:] if keep else np.zeros(0, np.float32)
    if audio.size == WINDOW_SAMPLES:
        return audio.copy()
    out = np.zeros(WINDOW_SAMPLES, np.float32)
    if audio.size:
        out[-audio.size :] = audio
    return out


def normalise_waveform(audio: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the whole padded window (transformers' `do_normalize`),
    in float32 as transformers computes it."""
    audio = np.asarray(audio, dtype=np.float32)
    normalised: np.ndarray = (audio - audio.mean()) / np.sqrt(audio.var() + _NORM_EPS)
    return normalised


class _Buffers:
    """The working arrays for an 8 s window (~7 MB), kept between calls: one set for the process,
    taken under a lock (the detector runs on whichever of asyncio's worker threads is free, so
    a set per thread could hold six).

    Fresh multi-megabyte temporaries cost more than the arithmetic on them here: glibc hands
    them back to the kernel and takes them again, and each page is faulted in anew (measured:
    rfft of 800 frames 1.5 ms into a reused array, 6.5 ms when its input was just allocated,
    ~1,200 page faults a call). The same operations write into these instead, in the same
    order, so every number is the same."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.padded = np.empty(frames * HOP + N_FFT, np.float64)
        self.windowed = np.empty((frames, N_FFT), np.float64)
        self.spectrum = np.empty((frames, N_FFT // 2 + 1), np.complex128)
        self.power = np.empty((frames, N_FFT // 2 + 1), np.float64)
        self.mel = np.empty((frames, N_MELS), np.float64)


_buffers_lock = threading.Lock()
_shared_buffers: list[_Buffers] = []


def _buffers(frames: int) -> _Buffers:
    """The shared set, grown if `frames` needs more; call it holding `_buffers_lock`."""
    if not _shared_buffers or _shared_buffers[0].frames < frames:
        _shared_buffers[:] = [_Buffers(max(frames, N_FRAMES))]
    return _shared_buffers[0]


def reflect_padded(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """np.pad(x, 200, mode="reflect") written into `out`, as float64."""
    pad = N_FFT // 2
    if x.size <= pad:  # the mirror would need more than one reflection: numpy's own loop
        return np.pad(np.asarray(x, np.float64), pad, mode="reflect")
    padded = out[: x.size + 2 * pad]
    padded[pad:-pad] = x
    padded[:pad] = padded[2 * pad : pad : -1]
    padded[-pad:] = padded[-pad - 2 : -2 * pad - 2 : -1]
    return padded


def log_mel(waveform: np.ndarray, constant_lead: int = 0) -> np.ndarray:
    """[80, len/160] Whisper log-mel of a 16 kHz waveform: centred STFT (reflect padding),
    power spectrum, mel, log10 floored at 1e-10 and at 8 (80 dB) below the peak, scaled by
    (x + 4) / 4. The last frame (past the end of the audio) is dropped, as Whisper does: it is
    never transformed.

    `constant_lead`: how many samples at the front are one value (the padding of a short turn,
    after normalising): every frame inside them has the same spectrum, so one of them goes
    through the transform, the mel product and the log, and is copied into the others. A 2 s
    turn then costs a quarter of the work of a full 8 s window, with the same numbers."""
    x = np.asarray(waveform).reshape(-1)
    count = x.size // HOP  # frames kept: 1 + size // HOP, less the last
    with _buffers_lock:
        buffers = _buffers(count)
        padded = reflect_padded(x, buffers.padded)
        frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:count]
        # Frame i spans x[i*HOP - 200 : i*HOP + 200]; reflected, its front half stays in the lead.
        same = (constant_lead - N_FFT // 2) // HOP + 1 if constant_lead > N_FFT // 2 else 0
        first = min(max(same - 1, 0), max(count - 1, 0))  # one frame of the lead stands for all
        distinct = count - first
        windowed = np.multiply(frames[first:], _hann(), out=buffers.windowed[:distinct])
        spectrum = np.fft.rfft(windowed, axis=-1, out=buffers.spectrum[:distinct])
        power = np.square(spectrum.real, out=buffers.power[:distinct])
        # The windowed frames are spent: their memory holds the imaginary parts' squares.
        imaginary = buffers.windowed.reshape(-1)[: power.size].reshape(power.shape)
        power += np.square(spectrum.imag, out=imaginary)  # [distinct, 201]
        mel = _to_mel(power, out=buffers.mel[:distinct])  # [distinct, 80]
        log_spec = np.log10(np.maximum(mel, _MEL_FLOOR, out=mel), out=mel)
        np.maximum(log_spec, log_spec.max(initial=-np.inf) - _DYNAMIC_RANGE_LOG10, out=log_spec)
        log_spec += 4.0
        log_spec /= 4.0
        scaled = np.empty((N_MELS, count), np.float32)
        scaled[:, first:] = log_spec.T  # read out before the lock lets another call in
    scaled[:, :first] = scaled[:, first : first + 1]
    return scaled


def smart_turn_features(audio: np.ndarray, seconds: float = WINDOW_S) -> np.ndarray:
    """[1, 80, 800] float32: what Smart Turn's `input_features` expects for `audio` (16 kHz)."""
    window = last_window(audio, seconds)
    heard = min(np.asarray(audio).size, int(seconds * SAMPLE_RATE), WINDOW_SAMPLES)
    return log_mel(normalise_waveform(window), constant_lead=WINDOW_SAMPLES - heard)[None]
