"""The residual suppressor's per-band arithmetic (aec/residual.py), compiled with numba.

At 161 bands numpy's per-call machinery, not the arithmetic, was most of the suppressor's
cost: ~50 calls a frame at 7-9 k instructions each, ~190 µs of the default canceller's
~470 µs per frame while a reply plays (callgrind, mandarin-10db). Here each frame is three
calls: `take_frame` (the analysis window), numpy's rfft (kept: pocketfft), `learn_frame`
(powers, held reference, leaks, gains), and `apply_gains` (the FIR) on the way out.

Each band's arithmetic is numpy's, operation for operation and in the same float types, and the
two sums over bands are numpy's pairwise summation, so the gains are bit for bit what the numpy
statement gave (tests/test_aec_residual_kernels.py holds them to it). The FIR's taps are the
inverse real DFT of the gains as a product with a cosine table, and the convolution sums in
another order than numpy's: the output differs from np.convolve's in the last float32 bit now
and then.

Compiled when first imported and cached on disk (aec/compiled.py). Imported by
`ResidualSuppressor.__init__`, not with aec/residual.py: building a canceller pays numba's
import and the load (README, echo section), never the audio thread.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from voiceloop.aec.compiled import compiled

# numpy's pairwise summation: blocks of up to this many elements are summed with eight
# accumulators (numpy/_core/src/umath/loops_utils.h.src, PW_BLOCKSIZE).
_PAIRWISE_BLOCK = 128


@numba.njit
def _pairwise_sum(values: Any, start: int, count: int) -> Any:
    """values[start:start+count].sum() as numpy sums a contiguous row, in its type: halved
    (rounded to eights) until a block is at most _PAIRWISE_BLOCK, each summed by `_block_sum`.
    Written as three levels rather than recursively (numba's cache cannot reload a recursive
    function: LLVM aborts the process on an unresolved symbol), so the same to the bit up to
    ~1000 values (161 bands at 16 kHz, 481 at 48 kHz), and still a sum beyond."""
    if count <= _PAIRWISE_BLOCK:
        return _block_sum(values, start, count)
    half = count // 2
    half -= half % 8
    return _halves(values, start, half) + _halves(values, start + half, count - half)


@numba.njit
def _halves(values: Any, start: int, count: int) -> Any:
    if count <= _PAIRWISE_BLOCK:
        return _block_sum(values, start, count)
    half = count // 2
    half -= half % 8
    return _quarters(values, start, half) + _quarters(values, start + half, count - half)


@numba.njit
def _quarters(values: Any, start: int, count: int) -> Any:
    if count <= _PAIRWISE_BLOCK:
        return _block_sum(values, start, count)
    half = count // 2
    half -= half % 8
    return _block_sum(values, start, half) + _block_sum(values, start + half, count - half)


@numba.njit
def _block_sum(values: Any, start: int, count: int) -> Any:
    zero = values[start] - values[start]
    if count < 8:
        total = zero
        for i in range(start, start + count):
            total += values[i]
        return total
    r0, r1, r2, r3 = values[start], values[start + 1], values[start + 2], values[start + 3]
    r4, r5, r6, r7 = values[start + 4], values[start + 5], values[start + 6], values[start + 7]
    i = start + 8
    stop = start + count - count % 8
    while i < stop:
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < start + count:
        total += values[i]
        i += 1
    return total


@compiled("boolean(float32[:, ::1], float32[:, ::1], float32[::1], float32[:], float32[:], float32[:])")
def take_frame(
    signals: np.ndarray,
    windowed: np.ndarray,
    window: np.ndarray,
    mic: np.ndarray,
    residual: np.ndarray,
    reference: np.ndarray,
) -> bool:
    """Shifts one frame of mic, residual and reference into the analysis rows, windows them,
    and says whether the reference frame has a sample that is not zero."""
    rows, size = signals.shape
    n = mic.size
    for row in range(rows):
        for i in range(size - n):
            signals[row, i] = signals[row, i + n]
    sounding = False
    for i in range(n):
        signals[0, size - n + i] = mic[i]
        signals[1, size - n + i] = residual[i]
        signals[2, size - n + i] = reference[i]
        if reference[i] != 0:
            sounding = True
    for row in range(rows):
        for i in range(size):
            windowed[row, i] = signals[row, i] * window[i]
    return sounding


@compiled(
    "boolean(complex64[:, ::1], float32[:, ::1], float64[:, ::1], float64[:, ::1], float64[:, :, ::1],"
    " float64[:, ::1], float64[::1], float64[::1], float64[::1], float64[::1], float64[:, ::1],"
    " boolean, boolean, float64, float64, float64, float64, float64, float64, float64)"
)
def learn_frame(
    spectra: np.ndarray,
    powers: np.ndarray,
    held: np.ndarray,
    means: np.ndarray,
    moments: np.ndarray,
    leaks: np.ndarray,
    residual_power: np.ndarray,
    predicted: np.ndarray,
    shares: np.ndarray,
    gains: np.ndarray,
    constants: np.ndarray,
    echo_heard: bool,
    silent: bool,
    active_energy: float,
    decay: float,
    leak_smoothing: float,
    power_smoothing: float,
    spread_scale: float,
    floor_gain: float,
    release: float,
) -> bool:
    """One frame of ResidualSuppressor.add after its FFT (see there for the rule); True when
    the suppressor may pass frames untouched (reference silent, every gain back at 1), in
    which case the gains are set to 1 and the prediction to 0.

    `constants` rows: the reference holds (short, long) in column 0, the leak caps (echo
    estimate, reference, distortion) in column 1, and the passing gain at [0, 2]."""
    bins = spectra.shape[1]
    for k in range(bins):  # the filter's echo estimate: mic minus what it left
        spectra[0, k] = spectra[0, k] - spectra[1, k]
    for row in range(3):
        for k in range(bins):
            value = spectra[row, k]
            powers[row, k] = value.real * value.real + value.imag * value.imag
    hold_short, hold_long = constants[0, 0], constants[1, 0]
    for k in range(bins):
        played = np.float64(powers[2, k])
        short = held[0, k] * hold_short
        long = held[1, k] * hold_long
        held[0, k] = played if played >= short else short
        held[1, k] = played if played >= long else long
        residual_power[k] += power_smoothing * (np.float64(powers[1, k]) - residual_power[k])
    if np.float64(_pairwise_sum(powers[0], 0, bins)) < active_energy:
        for k in range(bins):
            predicted[k] *= decay
    else:
        distortion = _pairwise_sum(held[0], 0, bins)  # the same predictor in every band
        a = leak_smoothing
        for k in range(bins):
            samples = (np.float64(powers[0, k]), held[0, k], distortion, np.float64(powers[1, k]))
            for row in range(4):
                means[row, k] += a * (samples[row] - means[row, k])
            left = samples[3] - means[3, k]
            most = 0.0
            for p in range(3):
                deviation = samples[p] - means[p, k]
                moments[0, p, k] += a * (deviation * left - moments[0, p, k])
                moments[1, p, k] += a * (deviation * deviation - moments[1, p, k])
                leak = moments[0, p, k] / (moments[1, p, k] + 1e-20)
                leak = leak if leak >= 0.0 else 0.0
                cap = constants[p, 1]
                leak = leak if leak <= cap else cap
                leaks[p, k] = leak
                echo = leak * (held[1, k] if p == 1 and echo_heard else samples[p])
                most = echo if p == 0 or not most >= echo else most  # np.maximum(most, echo)
            kept = predicted[k] * decay
            predicted[k] = most if most >= kept else kept
    # 1 - twice the predicted share, spread 1:2:1 over neighbouring bands, floored, released.
    for k in range(bins):
        shares[k + 1] = predicted[k] / (residual_power[k] + 1e-20)
    lowest = np.inf
    for k in range(bins):
        spread = ((shares[k + 1] + shares[k + 1]) + shares[k]) + shares[k + 2]
        spread *= spread_scale
        wanted = 1.0 - spread
        wanted = floor_gain if floor_gain >= wanted else wanted
        gain = gains[k]
        gain = gain + release * (wanted - gain) if wanted > gain else wanted
        gains[k] = gain
        lowest = gain if gain <= lowest else lowest
    if silent and lowest >= constants[0, 2]:
        for k in range(bins):
            gains[k] = 1.0
            predicted[k] = 0.0
        return True
    return False


@compiled("float32[::1](float32[::1], float32[:], float64[::1], float64[:, ::1], boolean)")
def apply_gains(
    signal: np.ndarray, frame: np.ndarray, gains: np.ndarray, taps_by_gain: np.ndarray, passing: bool
) -> np.ndarray:
    """Shifts `frame` into `signal` (the last len(signal) - len(frame) samples, then the frame)
    and returns it filtered by the FIR whose taps are gains @ taps_by_gain (odd length,
    centred), or, `passing`, delayed by its half length."""
    n = frame.size
    kept = signal.size - n
    for i in range(kept):
        signal[i] = signal[i + n]
    for i in range(n):
        signal[kept + i] = frame[i]
    out = np.empty(n, np.float32)
    length = taps_by_gain.shape[1]
    if passing:
        for i in range(n):
            out[i] = signal[length // 2 + i]
        return out
    # Loops ordered so that each tap, and each output sample, is its own running sum: no
    # chain of dependent additions, and the compiler can keep several going at once.
    taps = np.zeros(length)
    for k in range(gains.size):
        gain = gains[k]
        for j in range(length):
            taps[j] += taps_by_gain[k, j] * gain
    wide = np.empty(signal.size)  # float64 once, not per product: half the time, same sums
    for i in range(signal.size):
        wide[i] = signal[i]
    filtered = np.zeros(n)
    for j in range(length):  # np.convolve(signal, taps, "valid"), summed tap by tap
        tap = taps[j]
        window = wide[length - 1 - j : length - 1 - j + n]
        for i in range(n):
            filtered[i] += window[i] * tap
    for i in range(n):
        out[i] = np.float32(filtered[i])
    return out
