"""`voiceloop calibrate`: the device's output-to-input delay and echo level, measured.

A logarithmic chirp is played a few times through the real device; GCC-PHAT finds it in the
mic. The delay measured is the device's own round trip (DAC to ADC, plus the air between
speaker and mic), without voiceloop's speaker queue, so it stays valid when `audio.buffer_ms`
changes; it does change with the devices, the backend and `audio.latency`.

With `drift_s` the sweeps go on for that long and the slope of their (fractional) delay over
time is the speaker's clock against the mic's, in ppm: separate devices run on separate
crystals 20-120 ppm apart, which the echo canceller must compensate (`[aec.speex]
drift_compensation`); a longer sweep measures it more finely (±1 samples' jitter over 30 s is
±2 ppm). The loop measures the same drift from its own replies and logs it per session.

It is saved as `[aec] delay_ms` in a user file (`calibration_path()`), which `load_settings`
reads for real devices when nothing else sets `aec.delay_ms` (voiceloop/config/calibration_file.py,
so that loading settings never imports this module). The virtual room ignores it: there
`aec.delay_ms` describes the room, and a real device's delay would misalign the demo's canceller.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voiceloop.config.calibration_file import (  # noqa: F401  (where callers look for them)
    CALIBRATION_ENV,
    VIRTUAL_BACKENDS,
    calibrated_aec,
    calibration_path,
    read_calibration,
)

if TYPE_CHECKING:
    import numpy as np

    from voiceloop.audio.devices import DeviceDuplex
    from voiceloop.audio.devices.delay import DelayEstimate
    from voiceloop.config import Settings

MAX_DELAY_S = 1.0  # the longest full delay (queue included) looked for: Bluetooth stays below
CHIRP_S = 0.4
MIN_DRIFT_SPAN_S = 5.0


def apply_user_calibration(settings: Settings) -> Settings:
    """Settings with `aec.delay_ms` (and `drift_ppm`) from the calibration file, for a real
    device, where neither the profile nor the environment set them; `load_settings` already
    does this, so this is for settings built some other way. Returns a new object; the one
    given is left as it was."""
    from voiceloop.config.settings import user_calibration

    saved = user_calibration(settings)
    if not saved:
        return settings
    return settings.model_copy(update={"aec": settings.aec.model_copy(update=saved)})


@dataclass
class CalibrationResult:
    delay_ms: float  # the device's output-to-input delay (what is saved)
    echo_level_db: float  # echo at the mic relative to what was played
    input: str
    output: str
    sample_rate: int
    # Beyond the JSON contract: what the bench and a curious user want.
    backend: str = ""
    per_chirp_ms: list[float] = field(default_factory=list)
    sharpness: float = 0.0
    noise_dbfs: float = -120.0
    portaudio_delay_ms: float | None = None
    queue_ms: float = 0.0
    drift_ppm: float | None = None  # only when asked for (a longer sweep)

    def summary(self) -> dict[str, Any]:
        """The `--json` contract (`drift_ppm` only when the drift was asked for)."""
        return {
            "delay_ms": self.delay_ms,
            "echo_level_db": self.echo_level_db,
            "input": self.input,
            "output": self.output,
            "sample_rate": self.sample_rate,
            **({} if self.drift_ppm is None else {"drift_ppm": self.drift_ppm}),
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CalibrationError(RuntimeError):
    """Nothing clear came back; the message says what to check."""


def chirp(
    duration_s: float = 0.4, f0: float = 150.0, f1: float = 6000.0, level_dbfs: float = -12.0
) -> np.ndarray:
    """A logarithmic sweep with 10 ms fades: every band of speech, one sharp correlation peak."""
    import numpy as np

    from voiceloop.audio.frames import SAMPLE_RATE

    t = np.arange(int(duration_s * SAMPLE_RATE)) / SAMPLE_RATE
    k = math.log(f1 / f0)
    sweep = np.sin(2 * math.pi * f0 * duration_s / k * (np.exp(t * k / duration_s) - 1))
    fade = int(0.01 * SAMPLE_RATE)
    envelope = np.ones_like(sweep)
    envelope[:fade] = np.linspace(0, 1, fade)
    envelope[-fade:] = np.linspace(1, 0, fade)
    peak = 10 ** (level_dbfs / 20)
    return (sweep * envelope * peak).astype(np.float32)


async def play_and_record(
    device: DeviceDuplex, signal: np.ndarray, tail_s: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Plays `signal` (16 kHz) through the device and returns (played, recorded): the speaker
    samples as pulled and the mic, both on the lockstep clock, so the recorded copy of the
    signal sits exactly the device's full delay (queue included) after it."""
    import numpy as np

    from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
    from voiceloop.audio.playback import PlaybackQueue

    queue = PlaybackQueue()
    queue.open_turn(1)
    piece = queue.begin_piece(1, "calibration", spoken=False)
    assert piece is not None
    queue.append(1, piece, signal)
    queue.end_piece(1, piece)
    queue.close_turn(1)
    played: list[np.ndarray] = []
    recorded: list[np.ndarray] = []

    def tap(mic: np.ndarray, speaker: np.ndarray) -> None:
        recorded.append(mic)
        played.append(speaker)

    device.tap = tap
    frames_needed = int((signal.size / SAMPLE_RATE + tail_s) * SAMPLE_RATE / FRAME_SAMPLES)
    try:
        async for _ in device.frames(queue):
            if len(recorded) >= frames_needed:
                break
    finally:
        device.tap = None
        await device.aclose()
    return np.concatenate(played), np.concatenate(recorded)


def chirp_drift_ppm(played: np.ndarray, recorded: np.ndarray, found: list[tuple[int, int]]) -> float | None:
    """The speaker's clock against the mic's from sweeps found at (start, whole-sample lag):
    each lag refined between samples, then the slope of lag over time, fitted robustly (a
    speaker running fast brings its echo ever earlier: positive ppm). None under 3 sweeps (or 3
    that agree) or a span under MIN_DRIFT_SPAN_S, where one sample's jitter is tens of ppm."""
    import numpy as np

    from voiceloop.aec.drift import fractional_lag
    from voiceloop.audio.frames import SAMPLE_RATE

    if len(found) < 3 or found[-1][0] - found[0][0] < MIN_DRIFT_SPAN_S * SAMPLE_RATE:
        return None
    starts, lags = [], []
    for start, lag in found:
        window = slice(max(0, start - SAMPLE_RATE // 20), start + int(CHIRP_S * SAMPLE_RATE) + lag + 64)
        fine, _ = fractional_lag(
            played[window].astype(np.float64), recorded[window].astype(np.float64), -64, lag + 64, SAMPLE_RATE
        )
        starts.append(float(start))
        lags.append(fine)
    t, measured = np.array(starts) - np.mean(starts), np.array(lags)
    # Robustly: a block delivered late on a loaded machine shifts one sweep's lag by whole
    # blocks, which would bend a plain least-squares slope by hundreds of ppm. Theil-Sen's
    # median slope first, then least squares over the sweeps within a sample of its line.
    i, j = np.triu_indices(t.size, 1)
    rough = float(np.median((measured[j] - measured[i]) / (t[j] - t[i])))
    off = measured - rough * t
    kept = np.abs(off - np.median(off)) <= 1.0
    if np.count_nonzero(kept) < 3:
        return None
    t, measured = t[kept] - t[kept].mean(), measured[kept]
    slope = float(np.dot(t, measured - measured.mean()) / np.dot(t, t))
    return round(-slope * 1e6, 1)


def sweeps(sweep: np.ndarray, chirps: int = 3, drift_s: float | None = None) -> tuple[np.ndarray, list[int]]:
    """What calibrate plays: `chirps` sweeps (with `drift_s`, as many as fill that long), each
    followed by room for its longest echo, after 0.5 s of silence; (signal, sweep starts)."""
    import numpy as np

    from voiceloop.audio.frames import SAMPLE_RATE

    period = sweep.size + int(MAX_DELAY_S * SAMPLE_RATE) + SAMPLE_RATE // 10
    if drift_s is not None:
        chirps = max(chirps, math.ceil(drift_s * SAMPLE_RATE / period))
    lead_in = SAMPLE_RATE // 2
    signal = np.zeros(lead_in + chirps * period, dtype=np.float32)
    starts = [lead_in + i * period for i in range(chirps)]
    for start in starts:
        signal[start : start + sweep.size] = sweep
    return signal, starts


def sweeps_heard(
    played: np.ndarray, recorded: np.ndarray, starts: list[int], sweep_samples: int
) -> list[tuple[int, DelayEstimate]]:
    """Each sweep found on its own, in a window that cannot reach the next one (a second sweep
    in the window blurs the peak): (start, its estimate)."""
    from voiceloop.audio.devices.delay import estimate_delay
    from voiceloop.audio.frames import SAMPLE_RATE

    max_lag = int(MAX_DELAY_S * SAMPLE_RATE)
    heard = []
    for start in starts:
        window = slice(start - SAMPLE_RATE // 20, start + sweep_samples + max_lag)
        heard.append((start, estimate_delay(played[window], recorded[window], max_lag)))
    return heard


def sweep_drift_ppm(
    played: np.ndarray, recorded: np.ndarray, starts: list[int], sweep_samples: int
) -> float | None:
    """The drift from the sweeps heard clearly (`chirp_drift_ppm`)."""
    found = [
        (start, estimate.lag_samples)
        for start, estimate in sweeps_heard(played, recorded, starts, sweep_samples)
        if estimate.clear
    ]
    return chirp_drift_ppm(played, recorded, found)


async def calibrate(
    device: DeviceDuplex, chirps: int = 3, level_dbfs: float = -12.0, drift_s: float | None = None
) -> CalibrationResult:
    """Plays `chirps` sweeps 1.5 s apart after 0.5 s of silence (with `drift_s`, as many as
    fill that long, and the drift is measured); raises CalibrationError when the mic does not
    clearly hear most of them. Each sweep is found on its own, in a window that cannot reach
    the next one (a second sweep in the window blurs the peak)."""
    import numpy as np

    from voiceloop.audio.devices.delay import CLEAR_PEAK
    from voiceloop.audio.frames import rms_dbfs

    sweep = chirp(CHIRP_S, level_dbfs=level_dbfs)
    signal, starts = sweeps(sweep, chirps, drift_s)
    lead_in = starts[0]
    played, recorded = await play_and_record(device, signal, tail_s=MAX_DELAY_S)
    plan = device.plan
    assert plan is not None
    per_chirp: list[float] = []
    found: list[tuple[int, int]] = []
    echo_db: list[float] = []
    sharpness: list[float] = []
    for start, estimate in sweeps_heard(played, recorded, starts, sweep.size):
        sharpness.append(estimate.sharpness)
        if estimate.clear:
            per_chirp.append(estimate.delay_ms)
            found.append((start, estimate.lag_samples))
            # Each sweep's level where it came back: a late block on a loaded machine shifts
            # one sweep, and measured at the others' delay it would read as a quiet echo.
            lag = estimate.lag_samples
            played_power = float(np.mean(played[start : start + sweep.size] ** 2))
            echo_power = float(np.mean(recorded[start + lag : start + lag + sweep.size] ** 2))
            echo_db.append(10 * math.log10(max(echo_power, 1e-12) / max(played_power, 1e-12)))
    noise = rms_dbfs(recorded[: lead_in // 2])  # before any chirp could be back
    if len(per_chirp) < max(1, len(starts) // 2 + 1):
        raise CalibrationError(
            f"the mic did not clearly hear the chirp (peak {max(sharpness):.1f}, needs {CLEAR_PEAK:.0f}; "
            f"mic noise {noise:.0f} dBFS). Turn the speaker up, unmute the mic, or bring them "
            f"closer; check that '{plan.input.name}' really hears '{plan.output.name}'."
        )
    total_ms = float(np.median(per_chirp))
    queue_ms = device.own_s * 1000
    return CalibrationResult(
        delay_ms=round(total_ms - queue_ms, 1),
        echo_level_db=round(float(np.median(echo_db)), 1),
        input=plan.input.name,
        output=plan.output.name,
        sample_rate=plan.input_rate,
        backend=device.backend,
        per_chirp_ms=[round(d - queue_ms, 2) for d in per_chirp],
        sharpness=round(float(np.median(sharpness)), 1),
        noise_dbfs=round(noise, 1),
        portaudio_delay_ms=device.portaudio_delay_ms,
        queue_ms=round(queue_ms, 1),
        drift_ppm=None if drift_s is None else chirp_drift_ppm(played, recorded, found),
    )


def save_calibration(result: CalibrationResult, settings: Settings, path: Path | None = None) -> Path:
    """Writes the delay (and the drift, if measured) where `apply_user_calibration` finds them;
    says what they were measured on."""
    path = path or calibration_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = settings.audio
    path.write_text(
        "# Written by `voiceloop calibrate` on "
        f"{datetime.now().isoformat(timespec='seconds')}.\n"
        f"# Measured with audio.backend = {result.backend!r}, input {result.input!r}, output "
        f"{result.output!r}, {result.sample_rate} Hz, latency {audio.latency!r}.\n"
        "# The delay is the device's own output-to-input delay; calibrate again after changing "
        "devices, backend or latency.\n"
        f"# Echo level {result.echo_level_db} dB, mic noise {result.noise_dbfs} dBFS; PortAudio "
        f"estimated {result.portaudio_delay_ms} ms.\n"
        "[aec]\n"
        f"delay_ms = {result.delay_ms}\n"
        # The clocks' drift, where it was measured (--drift-s): the canceller starts from it.
        + ("" if result.drift_ppm is None else f"drift_ppm = {result.drift_ppm}\n"),
        encoding="utf-8",
    )
    return path
