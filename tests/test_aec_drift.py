"""Clock drift between speaker and mic, and the compensation that resamples the reference.

The rooms are the virtual room's own echo paths (`echo_path` with `EchoConditions`), run
frame by frame through the canceller and silero directly rather than the whole loop: the
question is the loop's (does the assistant hear itself as speech?) but the answer only needs
the canceller and the VAD.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from voiceloop.aec import compensated, speex
from voiceloop.aec.base import EchoCanceller
from voiceloop.aec.compensated import ALIGNED_LEAD_SAMPLES, LAG_SAMPLES, DriftCompensated
from voiceloop.aec.drift import DriftEstimator, fractional_lag
from voiceloop.aec.metrics import erle_db
from voiceloop.audio.fractional import StreamReader, interpolate
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE
from voiceloop.audio.room_echo import EchoConditions
from voiceloop.audio.virtual import REFERENCE_LEAD_MS, echo_path, room_impulse_response
from voiceloop.config import Settings
from voiceloop.config.settings import RoomSettings
from voiceloop.vad.silero import CHUNK_SAMPLES, SileroVad

pytestmark = pytest.mark.skipif(not speex.ctypes.util.find_library("speexdsp"), reason="no libspeexdsp")

# A desk set-up: USB mic, separate speaker, echo 6 dB over the user (as rooms.HARD_SCENARIOS).
DESK = RoomSettings(echo_delay_ms=45, echo_gain_db=6, rt60_s=0.4, noise_dbfs=-55)
LEAD_S = 0.5
REPLY_S = 12.0
VAD_THRESHOLD = 0.5


@functools.cache
def drifting_room(
    drift_ppm: float,
    seconds: float = REPLY_S,
    path_change_at_s: float | None = None,
    path_change_every_s: float | None = None,
    pause: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(mic, reference) of the assistant's English reply in DESK with its speaker `drift_ppm`
    fast (and someone walking past at `path_change_at_s` of room time, and back and forth
    every `path_change_every_s`; the speaker silent over `pause`); whole frames, the
    reference handed out 10 ms before its echo (at the start)."""
    from voiceloop.testing.replies import english_reply

    far_start = int(LEAD_S * SAMPLE_RATE)
    frames = int((LEAD_S + seconds) * SAMPLE_RATE) // FRAME_SAMPLES
    total = frames * FRAME_SAMPLES
    speaker = np.zeros(total, np.float32)
    reply = np.tile(english_reply(), 4)
    speaker[far_start:] = reply[: total - far_start]
    if pause is not None:
        speaker[int(pause[0] * SAMPLE_RATE) : int(pause[1] * SAMPLE_RATE)] = 0.0
    rir = room_impulse_response(DESK.rt60_s, np.random.default_rng(DESK.seed))
    conditions = EchoConditions(
        drift_ppm=drift_ppm, path_change_at_s=path_change_at_s, path_change_every_s=path_change_every_s
    )
    path = echo_path(DESK, conditions, rir)
    echo = np.concatenate([path.process(frame) for frame in speaker.reshape(frames, FRAME_SAMPLES)])
    noise = 10 ** (DESK.noise_dbfs / 20) * np.random.default_rng(DESK.seed + 1).standard_normal(total)
    mic = np.clip(echo + noise, -1.0, 1.0).astype(np.float32)
    delay = round((DESK.echo_delay_ms - REFERENCE_LEAD_MS) * SAMPLE_RATE / 1000)
    reference = np.concatenate([np.zeros(delay, np.float32), speaker])[:total]
    return mic, reference


def cancelled(canceller: EchoCanceller, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
    frames = mic.size // FRAME_SAMPLES
    spans = [slice(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES) for k in range(frames)]
    return np.concatenate([canceller.process(mic[span], reference[span]) for span in spans])


def false_speech_per_10_s(output: np.ndarray, from_s: float) -> float:
    """Seconds silero calls speech in echo-only output after `from_s` of playback, per 10 s;
    silero runs from the start, as in the loop."""
    vad = SileroVad()
    chunks = output[: output.size // CHUNK_SAMPLES * CHUNK_SAMPLES].reshape(-1, CHUNK_SAMPLES)
    flags = np.array([vad.speech_probability(chunk) >= VAD_THRESHOLD for chunk in chunks])
    first = int((LEAD_S + from_s) * SAMPLE_RATE) // CHUNK_SAMPLES
    counted = flags[first:]
    return 10.0 * float(np.count_nonzero(counted)) / counted.size


def barge_ins(output: np.ndarray, from_s: float) -> list[float]:
    """When the loop would stop its reply on this echo-only output: the real endpointer over
    silero, an utterance reaching the machine's barge_in_min_s of voiced time after `from_s`
    of playback (before it, the warm-up rule asks for more)."""
    from voiceloop.engine.events import SpeechProgress
    from voiceloop.engine.machine import MachineConfig
    from voiceloop.vad.endpointer import Endpointer

    vad, endpointer, stops = SileroVad(), Endpointer(), []
    needed = MachineConfig().barge_in_min_s
    for k in range(output.size // CHUNK_SAMPLES):
        chunk = output[k * CHUNK_SAMPLES : (k + 1) * CHUNK_SAMPLES]
        at = k * CHUNK_SAMPLES / SAMPLE_RATE
        for event in endpointer.feed(chunk, vad.speech_probability(chunk), at):
            late = at >= LEAD_S + from_s
            stopping = isinstance(event, SpeechProgress) and event.voiced_s >= needed and late
            if stopping and (not stops or at - stops[-1] > 1.0):
                stops.append(round(at, 2))
    return stops


def test_the_reader_reads_a_tone_between_samples_at_a_drifting_rate() -> None:
    """The interpolator is the room's speaker clock as much as the compensator's: its error
    must sit far below any canceller's ERLE, or the room would be unfair."""
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.5 * np.sin(2 * np.pi * 1234.5 * t)).astype(np.float32)
    reader = StreamReader(keep=SAMPLE_RATE)
    ratio, position, out = 1 + 120e-6, -20.25, []
    for frame in tone.reshape(-1, FRAME_SAMPLES):
        reader.write(frame)
        out.append(reader.read(position + np.arange(FRAME_SAMPLES) * ratio))
        position += FRAME_SAMPLES * ratio
    read = np.concatenate(out)[FRAME_SAMPLES:]
    positions = -20.25 + np.arange(read.size + FRAME_SAMPLES) * ratio
    expected = 0.5 * np.sin(2 * np.pi * 1234.5 * positions / SAMPLE_RATE)[FRAME_SAMPLES:]
    assert 20 * np.log10(np.std(read - expected) / np.std(expected)) < -55


@pytest.mark.parametrize("drift_ppm", [120.0, -120.0, 0.0])
def test_the_frame_fast_path_reads_what_the_per_sample_path_reads(drift_ppm: float) -> None:
    """read_ramp blends two fixed-phase filters along the frame; it must not be a second,
    worse interpolator (white noise: the hardest case, all of the band)."""
    noise = (0.1 * np.random.default_rng(9).standard_normal(60 * FRAME_SAMPLES)).astype(np.float32)
    fast, exact = StreamReader(keep=SAMPLE_RATE), StreamReader(keep=SAMPLE_RATE)
    ratio, position, error, energy = 1 + drift_ppm * 1e-6, -40.3, 0.0, 0.0
    for frame in noise.reshape(-1, FRAME_SAMPLES):
        fast.write(frame)
        exact.write(frame)
        quick = fast.read_ramp(position, ratio, FRAME_SAMPLES)
        slow = exact.read(position + np.arange(FRAME_SAMPLES) * ratio)
        error += float(np.sum((quick - slow) ** 2))
        energy += float(np.sum(slow**2))
        position += FRAME_SAMPLES * ratio
    assert 10 * np.log10(error / energy + 1e-30) < -55


def test_fractional_lag_measures_a_delay_between_samples() -> None:
    noise = np.random.default_rng(3).standard_normal(3 * SAMPLE_RATE).astype(np.float32)
    for true in (37.0, 37.25, 37.5, 37.8):
        later = interpolate(noise, np.arange(SAMPLE_RATE, 2 * SAMPLE_RATE) - true)
        played = noise[SAMPLE_RATE : 2 * SAMPLE_RATE].astype(np.float64)
        lag, clarity = fractional_lag(played, later.astype(np.float64), -50, 400, SAMPLE_RATE)
        assert abs(lag - true) < 0.05 and clarity > 10


@pytest.mark.parametrize("drift_ppm", [120.0, -60.0, 20.0])
def test_the_estimate_is_within_5_ppm_of_the_room_after_10_s_of_playback(drift_ppm: float) -> None:
    mic, reference = drifting_room(drift_ppm)
    estimator = DriftEstimator()
    frames = int((LEAD_S + 10.0) * SAMPLE_RATE) // FRAME_SAMPLES
    for k in range(frames):
        span = slice(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES)
        estimator.add(mic[span], reference[span])
    assert estimator.ppm is not None
    assert abs(estimator.ppm - drift_ppm) <= 5.0


def test_a_room_on_one_clock_estimates_no_drift() -> None:
    mic, reference = drifting_room(0.0, seconds=6.0)
    compensated = DriftCompensated(speex.SpeexCanceller())
    cancelled(compensated, mic, reference)
    assert abs(compensated.drift_ppm) < 2.0


@pytest.mark.parametrize("drift_ppm", [80.0, -120.0])
def test_speex_hears_itself_in_a_drifting_room_unless_the_reference_is_resampled(drift_ppm: float) -> None:
    """Measured (bench_aec, drift rooms): speex alone 6-9.5 s of false speech per 10 s of
    echo at 60-120 ppm, ERLE 14-20 dB; compensated, none after its warm-up."""
    mic, reference = drifting_room(drift_ppm)
    plain = speex.SpeexCanceller()
    compensated = DriftCompensated(speex.SpeexCanceller())
    plain_out = cancelled(plain, mic, reference)
    compensated_out = cancelled(compensated, mic, reference)
    settled = int((LEAD_S + compensated.warmup_s) * SAMPLE_RATE)
    delay = plain.output_delay_samples

    assert false_speech_per_10_s(plain_out, compensated.warmup_s) >= 3.0
    assert false_speech_per_10_s(compensated_out, compensated.warmup_s) <= 0.5
    plain_erle = erle_db(mic[settled:-delay], plain_out[settled + delay :])
    compensated_erle = erle_db(mic[settled:-delay], compensated_out[settled + delay :])
    assert compensated_erle >= plain_erle + 5.0
    assert abs(compensated.drift_ppm - drift_ppm) <= 5.0
    assert compensated.name == "speex+drift" and isinstance(compensated, EchoCanceller)


def test_drift_compensation_is_one_switch_in_the_speex_options() -> None:
    settings = Settings()
    assert settings.aec.speex.drift_compensation is False
    assert isinstance(speex.create(settings.aec.speex, settings.aec), speex.SpeexCanceller)
    settings.aec.speex.drift_compensation = True
    wrapped = speex.create(settings.aec.speex, settings.aec)
    assert isinstance(wrapped, DriftCompensated) and isinstance(wrapped.inner, speex.SpeexCanceller)
    assert wrapped.output_delay_samples == wrapped.inner.output_delay_samples


def test_someone_walking_past_mid_reply_causes_no_barge_in() -> None:
    """Path-change recovery (voiceloop/aec/path_watch.py): the residual that still correlates
    with the reference is held down and the filter rebuilt once, at the change."""
    mic, reference = drifting_room(0.0, path_change_at_s=LEAD_S + 7.0)
    inner = speex.SpeexCanceller(path_change_recovery=True)
    compensated = DriftCompensated(inner)
    output = cancelled(compensated, mic, reference)
    assert barge_ins(output, compensated.warmup_s) == []
    assert inner.path_watch is not None and inner.path_watch.changes == 1


def test_without_recovery_the_walk_interrupts_the_reply() -> None:
    """Measured (bench_aec person-walks): speex alone lets 3.1 s of echo through as speech in
    the 3.5 s after someone walks past, with or without drift compensation."""
    mic, reference = drifting_room(0.0, path_change_at_s=LEAD_S + 7.0)
    compensated = DriftCompensated(speex.SpeexCanceller())
    stops = barge_ins(cancelled(compensated, mic, reference), compensated.warmup_s)
    assert stops and all(LEAD_S + 7.0 <= at <= LEAD_S + 11.0 for at in stops)


# Someone walks between speaker and mic WALK_AT_S into the track and away again BACK_AFTER_S
# later (the path goes back to the one before); in one room the reply pauses over the return.
WALK_AT_S = LEAD_S + 6.0
BACK_AFTER_S = 5.0
PAUSE_OVER_THE_RETURN = (LEAD_S + 10.5, LEAD_S + 11.5)


def heard_user_chunks(recall: bool, paused: bool, after_s: float) -> tuple[int, int, int]:
    """(the profile's canceller's recalls, voiced chunks of the user's words silero hears in
    its output, voiced chunks of the words alone) for "turn off the lights" said `after_s`
    after the walk back (or after the reply resumes from its pause over it)."""
    from voiceloop.testing.clips import spoken_clip
    from voiceloop.testing.talked_over import cancelled as aligned

    pause = PAUSE_OVER_THE_RETURN if paused else None
    mic, reference = drifting_room(0.0, 14.0, WALK_AT_S, BACK_AFTER_S, pause)
    back_s = pause[1] if pause else WALK_AT_S + BACK_AFTER_S
    words = spoken_clip("turn off the lights", lead_s=0.0, tail_s=0.0)
    user = np.zeros_like(mic)
    start = int((back_s + after_s) * SAMPLE_RATE)
    user[start : start + words.size] = words
    inner = speex.SpeexCanceller(path_change_recovery=True, residual_suppression=True)
    assert inner.path_watch is not None
    if not recall:
        inner.path_watch.recall = None
    output = aligned(DriftCompensated(inner), (mic + user).astype(np.float32), reference)

    def voiced(audio: np.ndarray) -> np.ndarray:
        vad = SileroVad()
        chunks = audio[: audio.size // CHUNK_SAMPLES * CHUNK_SAMPLES].reshape(-1, CHUNK_SAMPLES)
        return np.array([vad.speech_probability(chunk) >= VAD_THRESHOLD for chunk in chunks])

    said = voiced(user)
    return inner.path_watch.recalls, int(np.count_nonzero(voiced(output) & said)), int(np.count_nonzero(said))


@pytest.mark.parametrize(("paused", "after_s"), [(False, 0.4), (False, 0.7), (True, 0.2), (True, 0.7)])
def test_a_user_speaking_just_after_someone_walked_back_is_heard(paused: bool, after_s: float) -> None:
    """The path back is the one the filter had before the walk: that filter, kept, is taken
    back (path_watch.py), where a new one would re-learn the room for a second with its output
    held down, and the user's words with it (measured: 0-2 of 32-35 voiced chunks heard)."""
    recalls, heard, said = heard_user_chunks(True, paused, after_s)
    assert recalls == 1 and heard >= 0.9 * said
    recalls, heard, said = heard_user_chunks(False, paused, after_s)
    assert recalls == 0 and heard <= 0.1 * said


@pytest.mark.parametrize("recovery", [False, True])
def test_a_steady_room_causes_no_barge_in_after_the_warm_up(recovery: bool) -> None:
    """The same count on the same reply with the path left alone: the walk above is the change;
    in a steady room the watch never rebuilds the filter."""
    mic, reference = drifting_room(0.0)
    inner = speex.SpeexCanceller(path_change_recovery=recovery)
    compensated = DriftCompensated(inner)
    assert barge_ins(cancelled(compensated, mic, reference), compensated.warmup_s) == []
    assert inner.path_watch is None or inner.path_watch.changes == 0


@pytest.mark.parametrize("drift_ppm", [80.0, -120.0, 60.0])
def test_the_greeting_tells_the_drift_before_the_first_reply(drift_ppm: float) -> None:
    """The loop's greeting (espeak: 1.3 s of voice) then two seconds of silence: the drift is
    known when the first reply starts, so its first second is read at the right rate (with a
    1.5 s span the fit waited until ~0.5 s into it). Measured: 75.1 at 80, -108.2 at -120, 67.8
    at 60; the next second of echo brings it within ~1 ppm."""
    from voiceloop.audio.virtual import at_voice_level, trim_silence
    from voiceloop.tts.espeak import render

    greeting = at_voice_level(trim_silence(render(Settings().loop.greeting, "en-us")))
    frames = int((LEAD_S + 2.0) * SAMPLE_RATE + greeting.size) // FRAME_SAMPLES
    speaker = np.zeros(frames * FRAME_SAMPLES, np.float32)
    start = int(LEAD_S * SAMPLE_RATE)
    speaker[start : start + greeting.size] = greeting
    rir = room_impulse_response(DESK.rt60_s, np.random.default_rng(DESK.seed))
    path = echo_path(DESK, EchoConditions(drift_ppm=drift_ppm), rir)
    echo = np.concatenate([path.process(frame) for frame in speaker.reshape(frames, FRAME_SAMPLES)])
    noise = 10 ** (DESK.noise_dbfs / 20) * np.random.default_rng(DESK.seed + 1).standard_normal(echo.size)
    mic = np.clip(echo + noise, -1.0, 1.0).astype(np.float32)
    delay = round((DESK.echo_delay_ms - REFERENCE_LEAD_MS) * SAMPLE_RATE / 1000)
    reference = np.concatenate([np.zeros(delay, np.float32), speaker])[: speaker.size]
    compensated = DriftCompensated(speex.SpeexCanceller(path_change_recovery=True))

    cancelled(compensated, mic, reference)

    assert compensated.estimator.ppm is not None
    assert abs(compensated.drift_ppm - drift_ppm) <= 15.0  # compensated.STALE_CALIBRATION_PPM


@pytest.mark.parametrize("drift_ppm", [80.0, -120.0])
def test_a_calibrated_drift_cancels_the_first_reply_before_the_echo_measures_it(drift_ppm: float) -> None:
    """`[aec] drift_ppm` (what `voiceloop calibrate --drift-s 30` saves): read at that rate from
    the first frame, where the echo's own estimate comes ~1.5 s into the reply. Measured here, 1-2 s
    into it: ERLE 7.0 → 10.8 dB (+80 ppm), 5.1 → 11.3 (-120)."""
    mic, reference = drifting_room(drift_ppm)
    measured = DriftCompensated(speex.SpeexCanceller())
    calibrated = DriftCompensated(speex.SpeexCanceller(), drift_ppm=drift_ppm)
    assert calibrated.drift_ppm == pytest.approx(drift_ppm) and measured.drift_ppm == 0.0
    second = slice(int((LEAD_S + 1.0) * SAMPLE_RATE), int((LEAD_S + 2.0) * SAMPLE_RATE))
    delay = measured.output_delay_samples
    heard = slice(second.start + delay, second.stop + delay)
    measured_erle = erle_db(mic[second], cancelled(measured, mic, reference)[heard])
    calibrated_erle = erle_db(mic[second], cancelled(calibrated, mic, reference)[heard])
    assert calibrated_erle >= measured_erle + 3.0
    assert measured.estimator.ppm is not None  # both measured it later: the echo had its say
    assert abs(calibrated.drift_ppm - drift_ppm) <= 2.0


def test_a_calibration_made_on_other_devices_gives_way_to_the_echo_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mic, reference = drifting_room(80.0)
    stale = DriftCompensated(speex.SpeexCanceller(), drift_ppm=20.0)
    with caplog.at_level("WARNING", logger="voiceloop.aec.compensated"):
        cancelled(stale, mic, reference)
    assert abs(stale.drift_ppm - 80.0) <= 5.0
    (said,) = [r.getMessage() for r in caplog.records if "calibrate --drift-s" in r.getMessage()]
    assert "+20.0 ppm calibrated" in said


def test_a_calibration_close_to_the_echo_s_first_estimates_stands_until_they_are_as_sure() -> None:
    """The first estimates are a few ppm off (77.8 at 80, ~1.5 s in); a ±2 ppm calibration is not
    replaced by them, only by the estimate over drift.SETTLED_SPAN_S of echo."""
    mic, reference = drifting_room(80.0, seconds=6.0)
    calibrated = DriftCompensated(speex.SpeexCanceller(), drift_ppm=81.0)
    cancelled(calibrated, mic, reference)
    assert calibrated.estimator.ppm is not None and calibrated.estimator.span_s < compensated.SETTLED_SPAN_S
    assert calibrated.drift_ppm == pytest.approx(81.0)


class _Recording:
    """An inner canceller that keeps the reference it was handed (the wrapper's output)."""

    name, output_delay_samples, warmup_s = "recording", 0, 0.0

    def __init__(self) -> None:
        self.references: list[np.ndarray] = []

    def process(self, mic_frame: np.ndarray, reference_frame: np.ndarray) -> np.ndarray:
        self.references.append(reference_frame)
        return mic_frame

    def reset(self) -> None:
        self.references.clear()


def _fed(
    drift_ppm: float, played_s: float, then_silent_s: float = 0.0
) -> tuple[DriftCompensated, np.ndarray]:
    """A wrapper told the drift (as its estimator would), fed noise for `played_s`, then
    silence; returns it and the raw reference."""
    inner = _Recording()
    compensated = DriftCompensated(inner)
    compensated.estimator.slope = -drift_ppm * 1e-6
    noise = 0.1 * np.random.default_rng(5).standard_normal(int(played_s * SAMPLE_RATE)).astype(np.float32)
    raw = np.concatenate([noise, np.zeros(int(then_silent_s * SAMPLE_RATE), np.float32)])
    for frame in raw[: raw.size // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES):
        compensated.process(np.zeros_like(frame), frame)
    return compensated, raw


def test_the_reference_is_read_at_the_drifting_rate() -> None:
    """Twelve seconds at +120 ppm: the compensated reference runs ahead of the raw one by
    120e-6 · 12 s · 16 kHz = 23 samples, smoothly (no drops)."""
    compensated, raw = _fed(120.0, 12.0)
    out = np.concatenate(compensated.inner.references)
    second = SAMPLE_RATE

    def lag_at(start: int) -> float:
        span = slice(start, start + second)
        return fractional_lag(
            raw[span].astype(np.float64), out[span].astype(np.float64), -100, 100, SAMPLE_RATE
        )[0]

    # The reader starts LAG_SAMPLES behind the newest sample; the first second's mean lag is
    # half a second of drift less.
    assert lag_at(0) == pytest.approx(LAG_SAMPLES - 120e-6 * SAMPLE_RATE / 2, abs=0.3)
    assert lag_at(10 * second) - lag_at(0) == pytest.approx(-120e-6 * 10 * SAMPLE_RATE, abs=0.3)
    assert compensated.recentred == 0


@pytest.mark.parametrize("drift_ppm", [120.0, -120.0])
def test_the_reader_recentres_only_in_silence_and_only_for_a_fast_speaker(drift_ppm: float) -> None:
    """Never mid-reply; a slow speaker's lag only grows into the kept history (hours of it),
    a fast one's reader is set back, with the mic, by the whole samples it gained, once the
    reference is silent for 0.3 s."""
    compensated, _ = _fed(drift_ppm, 20.0)
    assert compensated.recentred == 0  # still playing: never mid-reply
    compensated, _ = _fed(drift_ppm, 20.0, then_silent_s=0.5)
    gained = max(drift_ppm, 0.0) * 1e-6 * 20.5 * SAMPLE_RATE  # 39.4 samples at +120 ppm
    assert (compensated.recentred > 0) == (drift_ppm > 0)
    assert compensated.mic_delay_samples == pytest.approx(gained, abs=1.0)


class _Heard:
    """An inner canceller that keeps the mic and reference frames it is handed."""

    name = "heard"
    output_delay_samples = 0
    warmup_s = 0.0

    def __init__(self) -> None:
        self.mics: list[np.ndarray] = []
        self.references: list[np.ndarray] = []

    def process(self, mic_frame: np.ndarray, reference_frame: np.ndarray) -> np.ndarray:
        self.mics.append(mic_frame.copy())
        self.references.append(reference_frame)
        return mic_frame

    def reset(self) -> None:
        pass


def test_a_fast_speaker_s_echo_stays_where_the_filter_learnt_it_through_every_recentring() -> None:
    """+120 ppm over a 90 s session of 5 s replies: the echo comes 173 samples earlier against
    the reference by the end, more than the reference's whole lead over it. Each re-centring
    sets the reader and the mic the inner canceller hears back together, so the echo's lag
    behind the reference it hears is the first reply's in the last (setting only the reader
    back moved it by every re-centring: a new path to learn each time, and past the lead a
    reference that trails its echo), and the output lags the mic by what was given back."""
    drift_ppm, reply_s, pause_s, replies = 120.0, 5.0, 1.0, 15
    rng = np.random.default_rng(3)
    played = [
        np.concatenate(
            [0.1 * rng.standard_normal(int(reply_s * SAMPLE_RATE)), np.zeros(int(pause_s * SAMPLE_RATE))]
        )
        for _ in range(replies)
    ]
    speaker = np.concatenate(played).astype(np.float32)
    frames = speaker.size // FRAME_SAMPLES
    path = echo_path(
        RoomSettings(echo_delay_ms=45, echo_gain_db=0, rt60_s=0.05, noise_dbfs=-90),
        EchoConditions(drift_ppm=drift_ppm),
        np.array([1.0], np.float32),
    )
    mic = np.concatenate([path.process(frame) for frame in speaker.reshape(frames, FRAME_SAMPLES)])
    delay = round((45 - REFERENCE_LEAD_MS) * SAMPLE_RATE / 1000)
    reference = np.concatenate([np.zeros(delay, np.float32), speaker])[: speaker.size]
    inner = _Heard()
    compensated = DriftCompensated(inner)
    compensated.estimator.slope = -drift_ppm * 1e-6  # as its estimator would say
    for k in range(frames):
        span = slice(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES)
        compensated.process(mic[span], reference[span])
    heard_mic, heard_reference = np.concatenate(inner.mics), np.concatenate(inner.references)
    cycle = int((reply_s + pause_s) * SAMPLE_RATE)

    def echo_lag(reply: int) -> float:
        span = slice(reply * cycle + SAMPLE_RATE, reply * cycle + 4 * SAMPLE_RATE)
        return fractional_lag(
            heard_reference[span].astype(np.float64),
            heard_mic[span].astype(np.float64),
            -50,
            250,
            SAMPLE_RATE,
        )[0]

    drifted = drift_ppm * 1e-6 * replies * (reply_s + pause_s) * SAMPLE_RATE
    assert drifted > ALIGNED_LEAD_SAMPLES - LAG_SAMPLES  # the reader alone set back: it would trail
    assert echo_lag(replies - 1) == pytest.approx(echo_lag(0), abs=0.5)
    assert compensated.recentred >= replies - 1  # in every pause
    assert compensated.mic_delay_samples == pytest.approx(
        drifted - drift_ppm * 1e-6 * pause_s * SAMPLE_RATE, abs=LAG_SAMPLES
    )
    assert compensated.output_delay_samples == compensated.mic_delay_samples


@functools.cache
def uncalibrated_room(seconds: float = REPLY_S) -> tuple[np.ndarray, np.ndarray]:
    """(mic, reference): rooms.SCENARIOS' uncalibrated-150ms, a device whose 150 ms output
    delay was never configured, so the reference is handed out as it is played."""
    from voiceloop.testing.replies import english_reply

    room = RoomSettings(echo_delay_ms=150, echo_gain_db=3, rt60_s=0.45, noise_dbfs=-55, reported_delay_ms=0)
    far_start = int(LEAD_S * SAMPLE_RATE)
    frames = int((LEAD_S + seconds) * SAMPLE_RATE) // FRAME_SAMPLES
    speaker = np.zeros(frames * FRAME_SAMPLES, np.float32)
    speaker[far_start:] = np.tile(english_reply(), 3)[: speaker.size - far_start]
    path = echo_path(
        room, EchoConditions(), room_impulse_response(room.rt60_s, np.random.default_rng(room.seed))
    )
    echo = np.concatenate([path.process(frame) for frame in speaker.reshape(frames, FRAME_SAMPLES)])
    noise = 10 ** (room.noise_dbfs / 20) * np.random.default_rng(room.seed + 1).standard_normal(speaker.size)
    return np.clip(echo + noise, -1.0, 1.0).astype(np.float32), speaker


def test_a_device_delay_never_configured_is_measured_and_the_reference_read_that_much_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Speex with drift compensation here: 4.3 s of false speech per 10 s of echo unaligned,
    none aligned (bench_aec uncalibrated-150ms, the default canceller: 1.88 s before, none)."""
    mic, reference = uncalibrated_room()
    aligned = DriftCompensated(speex.SpeexCanceller())
    aligned_out = cancelled(aligned, mic, reference)
    # Read so that the reference leads its echo by ALIGNED_LEAD_SAMPLES again (the echo's lag
    # is the path's delay plus the room's direct-path peak, within a few ms of 150).
    read_late_ms = (aligned.alignment_samples + LAG_SAMPLES + ALIGNED_LEAD_SAMPLES) * 1000 / SAMPLE_RATE
    assert 148.0 <= read_late_ms <= 160.0
    assert false_speech_per_10_s(aligned_out, aligned.warmup_s) <= 0.5

    monkeypatch.setattr(compensated, "MISALIGNED_SAMPLES", SAMPLE_RATE)  # never realigns
    unaligned = DriftCompensated(speex.SpeexCanceller())
    unaligned_out = cancelled(unaligned, mic, reference)
    assert unaligned.alignment_samples == 0
    assert false_speech_per_10_s(unaligned_out, unaligned.warmup_s) >= 1.0


def test_a_minute_into_a_session_with_a_fast_speaker_the_filter_still_removes_the_echo() -> None:
    """drift+120ppm (a desk, echo +6 dB), 6 s replies with 3 s pauses for 80 s, through speex
    with drift compensation: the linear filter removes 27-31 dB of every reply from the second
    on. With the reader set back alone at each re-centring it removed 11-13 dB after each (a
    shifted path to learn again) and 3 dB from 64 s on, where the reference had fallen behind
    its echo."""
    from voiceloop.testing.drift_session import drifting_session

    reply_s = 6.0
    mic, reference, starts = drifting_session("drift+120ppm", 80.0, reply_s, 3.0)
    frames = mic.size // FRAME_SAMPLES

    inner = speex.SpeexCanceller(path_change_recovery=True, residual_suppression=True)
    canceller = DriftCompensated(inner)
    residual = np.zeros_like(mic)  # the linear filter's output, before any suppression
    mic_delay = np.zeros(frames, int)  # the mic it heard lags the real one by this (grows)
    for k in range(frames):
        span = slice(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES)
        canceller.process(mic[span], reference[span])
        residual[span] = inner._residual
        mic_delay[k] = canceller.mic_delay_samples
    removed = []
    for start in starts[1:]:
        span = slice(int((start + 1.0) * SAMPLE_RATE), int((start + reply_s) * SAMPLE_RATE))
        lag = mic_delay[span.start // FRAME_SAMPLES]  # set only in pauses: steady over a reply
        removed.append(erle_db(mic[span], residual[span.start + lag : span.stop + lag]))
    assert min(removed) >= 20.0, [round(float(r), 1) for r in removed]
    assert canceller.mic_delay_samples > 0


def test_past_the_most_the_mic_is_held_back_the_reader_alone_is_set_back_and_the_log_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The mic's delay is the output's lag too, so it has a ceiling (60 ms: +80 ppm for 12.5
    minutes of session); past it a re-centring is a path change again, and the user is told."""
    monkeypatch.setattr(compensated, "MAX_MIC_DELAY_SAMPLES", 20)
    with caplog.at_level("WARNING", logger="voiceloop.aec.compensated"):
        fed, _ = _fed(120.0, 20.0, then_silent_s=0.5)  # 39 samples to give back
    assert fed.mic_delay_samples == 0 and fed.recentred == 1
    assert [r.getMessage() for r in caplog.records if "ppm ahead" in r.getMessage()] == [
        "the speaker's clock runs 120 ppm ahead of the mic's: the echo canceller has held the mic "
        "back 0 ms to follow it, its most; from now on it re-learns the echo path after each pause"
    ]
