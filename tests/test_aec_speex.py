"""The speex canceller in a simulated room: real libspeexdsp, real silero-vad, espeak voices.

The room is built from the virtual room's own parts (`EchoPath`, `room_impulse_response`), and
the canceller gets the reference the way the room hands it out: 10 ms before its echo. The
question each test asks is the one the loop cares about: does the assistant stop hearing
itself, while still hearing the user?
"""

from __future__ import annotations

import ctypes.util
import functools
import time

import numpy as np
import pytest

from voiceloop.aec import speex, speex_build
from voiceloop.aec.base import EchoCanceller
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE, rms_dbfs
from voiceloop.audio.virtual import REFERENCE_LEAD_MS, EchoPath, room_impulse_response
from voiceloop.config import Settings
from voiceloop.tts.espeak import render
from voiceloop.vad.silero import CHUNK_SAMPLES, SileroVad

ECHO_DELAY_MS = 30.0
RT60_S = 0.3
NOISE_DBFS = -55.0
SEED = 7
ASSISTANT_VOICE = "en-us"
USER_VOICE = "en-us+f3"
ASSISTANT_LINES = (
    "The weather today is sunny with a light breeze from the west.",
    "Tomorrow it will rain in the afternoon, so take an umbrella.",
    "Your next meeting starts at half past three in the small room.",
)
USER_LINE = "Please set a timer for ten minutes and remind me to call my sister."
USER_AT_S = 3.0  # well inside the assistant's speech, after the filter has converged
CONVERGED_S = 1.0  # ERLE is counted from here
VAD_SETTLED_S = 2.0  # the suppressor trails the filter: silero may still hear bits before this
GAINS_DB = (-6.0, 0.0)


@functools.cache
def assistant_speech() -> np.ndarray:
    return np.concatenate([render(line, ASSISTANT_VOICE) for line in ASSISTANT_LINES])


@functools.cache
def user_speech() -> np.ndarray:
    return render(USER_LINE, USER_VOICE)


@functools.cache
def simulate(
    gain_db: float, with_user: bool, lead_ms: float = REFERENCE_LEAD_MS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mic, cleaned, user alone), whole frames; cached, so callers must not write to them.

    `lead_ms` is how long before its echo the reference reaches the canceller.
    """
    assistant = assistant_speech()
    frames = assistant.size // FRAME_SAMPLES + 50
    speaker = np.zeros(frames * FRAME_SAMPLES, np.float32)
    speaker[: assistant.size] = assistant
    user = np.zeros_like(speaker)
    if with_user:
        start = int(USER_AT_S * SAMPLE_RATE)
        user[start : start + user_speech().size] = user_speech()
    path = EchoPath(ECHO_DELAY_MS, gain_db, room_impulse_response(RT60_S, np.random.default_rng(SEED)), False)
    echo = np.concatenate([path.process(frame) for frame in speaker.reshape(frames, FRAME_SAMPLES)])
    noise = 10 ** (NOISE_DBFS / 20) * np.random.default_rng(SEED + 1).standard_normal(speaker.size)
    mic = np.clip(user + echo + noise.astype(np.float32), -1.0, 1.0)
    delay = int(round((ECHO_DELAY_MS - lead_ms) * SAMPLE_RATE / 1000))
    reference = np.concatenate([np.zeros(delay, np.float32), speaker])[: speaker.size]
    return mic, cancel(speex.SpeexCanceller(), mic, reference), user


def cancel(canceller: speex.SpeexCanceller, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
    frames = zip(mic.reshape(-1, FRAME_SAMPLES), reference.reshape(-1, FRAME_SAMPLES), strict=True)
    return np.concatenate([canceller.process(m, r) for m, r in frames])


def speech_chunks(audio: np.ndarray) -> np.ndarray:
    """silero's verdict (prob >= 0.5) per 32 ms chunk, run as the loop runs it: in order."""
    vad = SileroVad()
    usable = audio[: audio.size // CHUNK_SAMPLES * CHUNK_SAMPLES]
    return np.array([vad.speech_probability(c) >= 0.5 for c in usable.reshape(-1, CHUNK_SAMPLES)])


def chunk(seconds: float) -> int:
    return int(seconds * SAMPLE_RATE) // CHUNK_SAMPLES


def seconds_of(flags: np.ndarray) -> float:
    return float(np.count_nonzero(flags)) * CHUNK_SAMPLES / SAMPLE_RATE


def echo_end() -> int:
    return assistant_speech().size


def user_share(output: np.ndarray, user: np.ndarray, span: slice, delay: int) -> tuple[float, float]:
    """The user's level in `output` relative to the user alone (dB), and how far all the rest
    (echo, noise, suppressor distortion) lies below it (dB). A waveform comparison, so a
    canceller that passed echo through at the user's level cannot score well by energy alone.
    """
    alone = user[span]
    heard = output[span.start + delay : span.stop + delay]
    gain = float(np.dot(heard, alone) / np.dot(alone, alone))
    rest = heard - gain * alone
    return 20 * np.log10(gain), 10 * np.log10(np.sum((gain * alone) ** 2) / np.sum(rest**2))


@pytest.mark.parametrize("gain_db", GAINS_DB)
def test_pure_echo_loses_over_20_db_once_the_filter_has_converged(gain_db: float) -> None:
    mic, cleaned, _ = simulate(gain_db, with_user=False)
    span = slice(int(CONVERGED_S * SAMPLE_RATE), echo_end())

    erle = rms_dbfs(mic[span]) - rms_dbfs(cleaned[span])

    assert erle > 20.0, f"ERLE {erle:.1f} dB"  # measured 28-29 dB


@pytest.mark.parametrize(("lead_ms", "cancelled"), [(30.0, True), (0.0, True), (-10.0, False)])
def test_the_reference_may_be_early_but_never_late(lead_ms: float, cancelled: bool) -> None:
    """Why the room hands out the reference ahead of its echo: 10 ms late and speex is useless."""
    mic, cleaned, _ = simulate(-6.0, with_user=False, lead_ms=lead_ms)
    span = slice(int(CONVERGED_S * SAMPLE_RATE), echo_end())

    erle = rms_dbfs(mic[span]) - rms_dbfs(cleaned[span])

    assert (erle > 20.0) == cancelled, f"ERLE {erle:.1f} dB"  # measured 30, 26 and 2.5 dB


@pytest.mark.parametrize("gain_db", GAINS_DB)
def test_silero_hears_the_echo_on_the_raw_mic_but_not_after_cancellation(gain_db: float) -> None:
    mic, cleaned, _ = simulate(gain_db, with_user=False)
    settled = slice(chunk(VAD_SETTLED_S), chunk(echo_end() / SAMPLE_RATE))
    echo_s = (echo_end() / SAMPLE_RATE) - VAD_SETTLED_S

    raw = seconds_of(speech_chunks(mic)[settled])
    left = seconds_of(speech_chunks(cleaned)[settled])

    assert raw > 0.6 * echo_s, f"raw mic: {raw:.2f} s of {echo_s:.1f} s"  # ~90%: what AEC buys
    assert left <= 0.1, f"{left:.2f} s of echo still heard as speech"  # measured 0


@pytest.mark.parametrize("gain_db", GAINS_DB)
def test_the_users_voice_survives_double_talk(gain_db: float) -> None:
    mic, cleaned, user = simulate(gain_db, with_user=True)
    start = int(USER_AT_S * SAMPLE_RATE)
    span = slice(start, start + user_speech().size)
    chunks = slice(chunk(USER_AT_S), chunk(span.stop / SAMPLE_RATE))

    level, above_rest = user_share(cleaned, user, span, speex.OUTPUT_DELAY_SAMPLES)
    _, above_rest_raw = user_share(mic, user, span, 0)
    heard = speech_chunks(cleaned)[chunks].mean()
    heard_alone = speech_chunks(user)[chunks].mean()

    assert abs(level) < 2.0, f"user at {level:+.2f} dB"  # measured -0.8 dB
    assert above_rest > 8.0, f"user {above_rest:.1f} dB above the rest (raw mic: {above_rest_raw:.1f})"
    assert heard >= 0.9 * heard_alone, f"silero: {heard:.0%} vs {heard_alone:.0%} for the user alone"


@pytest.mark.parametrize("gain_db", GAINS_DB)
def test_double_talk_does_not_knock_the_filter_off_the_echo(gain_db: float) -> None:
    """While the user talks the filter sees a signal it cannot model; it must not diverge."""
    mic, cleaned, _ = simulate(gain_db, with_user=True)
    after = slice(int(USER_AT_S * SAMPLE_RATE) + user_speech().size + SAMPLE_RATE // 5, echo_end())
    chunks = slice(chunk(after.start / SAMPLE_RATE), chunk(after.stop / SAMPLE_RATE))

    assert rms_dbfs(mic[after]) - rms_dbfs(cleaned[after]) > 20.0
    assert seconds_of(speech_chunks(cleaned)[chunks]) <= 0.1


def test_the_output_lags_the_mic_by_the_stated_delay() -> None:
    """The preprocessor's overlap-add; whoever timestamps cleaned frames needs to know it."""
    canceller = speex.SpeexCanceller()
    mic = (0.1 * np.random.default_rng(2).standard_normal(100 * FRAME_SAMPLES)).astype(np.float32)
    cleaned = cancel(canceller, mic, np.zeros_like(mic))  # no reference: the mic passes through
    window = slice(2 * SAMPLE_RATE // 10, 8 * SAMPLE_RATE // 10)

    lags = range(0, 2 * FRAME_SAMPLES + 1)
    scores = [np.dot(cleaned[window.start + lag : window.stop + lag], mic[window]) for lag in lags]

    assert lags[int(np.argmax(scores))] == speex.OUTPUT_DELAY_SAMPLES


def test_process_is_cheap_and_returns_a_fresh_float32_frame() -> None:
    canceller = speex.SpeexCanceller()
    rng = np.random.default_rng(0)
    frames = (0.1 * rng.standard_normal((300, FRAME_SAMPLES))).astype(np.float32)
    first = canceller.process(frames[0], frames[0])
    kept = first.copy()

    started = time.perf_counter()
    for frame in frames:
        canceller.process(frame, frame)
    per_frame = (time.perf_counter() - started) / len(frames)

    assert first.dtype == np.float32 and first.shape == (FRAME_SAMPLES,)
    assert np.array_equal(first, kept)  # not a view of a buffer the next frame overwrites
    assert per_frame < 1e-3, f"{per_frame * 1e6:.0f} µs per 10 ms frame"  # measured ~70 µs


def test_reset_forgets_the_room_entirely() -> None:
    rng = np.random.default_rng(1)
    reference = (0.1 * rng.standard_normal(200 * FRAME_SAMPLES)).astype(np.float32)
    mic = 0.5 * np.roll(reference, 80)
    fresh = cancel(speex.SpeexCanceller(), mic, reference)
    used = speex.SpeexCanceller()
    cancel(used, mic[::-1].copy(), reference)

    used.reset()

    assert np.array_equal(cancel(used, mic, reference), fresh)


def test_close_is_idempotent_and_a_closed_canceller_refuses_work() -> None:
    canceller = speex.SpeexCanceller()
    frame = np.zeros(FRAME_SAMPLES, np.float32)
    canceller.close()
    canceller.close()
    canceller.reset()  # nothing to reset: must not touch freed states

    with pytest.raises(speex.SpeexError, match="closed"):
        canceller.process(frame, frame)


def test_create_builds_it_from_the_aec_settings() -> None:
    settings = Settings(aec={"name": "speex", "speex": {"filter_ms": 64}})

    canceller = speex.create(settings.aec.speex, settings.aec)
    overridden = speex.create(settings.aec.speex, settings.aec, filter_ms=256)

    assert isinstance(canceller, EchoCanceller) and canceller.name == "speex"
    assert canceller.filter_taps == 1024 and overridden.filter_taps == 4096


def test_a_missing_library_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speex, "_library", None)
    monkeypatch.setattr(speex_build, "built_library", lambda: None)  # no -O3 build either
    monkeypatch.delenv(speex.LIBRARY_ENV, raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(speex, "_LIBRARY_FALLBACK", "libspeexdsp-not-here.so.1")

    with pytest.raises(speex.SpeexError) as error:
        speex.SpeexCanceller()

    assert "libspeexdsp is not installed" in str(error.value)
    assert "apt-get install libspeexdsp1" in str(error.value) and "brew install speexdsp" in str(error.value)


@pytest.mark.parametrize(
    ("mic_samples", "reference_samples", "message"),
    [
        (159, 159, "takes 160-sample mic frames \\(10 ms at 16000 Hz\\), got 159 samples$"),
        (320, 320, "got 320 samples \\(10 ms at 32000 Hz: resample to 16000 Hz first\\)"),
        (480, 480, "got 480 samples \\(10 ms at 48000 Hz: resample to 16000 Hz first\\)"),
        (160, 159, "reference frame as long as the mic frame \\(160 samples\\), got 159 samples"),
    ],
)
def test_frames_of_the_wrong_size_are_refused_naming_expected_and_got(
    mic_samples: int, reference_samples: int, message: str
) -> None:
    """libspeexdsp reads a fixed frame size through raw pointers: a short frame would read past
    the buffer and a 48 kHz one would cancel nothing, silently."""
    canceller = speex.SpeexCanceller()

    with pytest.raises(ValueError, match=message):
        canceller.process(np.zeros(mic_samples, np.float32), np.zeros(reference_samples, np.float32))


def test_a_stereo_frame_is_refused_by_its_shape() -> None:
    canceller = speex.SpeexCanceller()
    stereo = np.zeros((FRAME_SAMPLES, 2), np.float32)

    with pytest.raises(ValueError, match="got shape \\(160, 2\\)$"):
        canceller.process(stereo, stereo)


def test_a_canceller_built_for_48_khz_takes_48_khz_frames_only() -> None:
    canceller = speex.SpeexCanceller(sample_rate=48_000)
    frame = np.zeros(480, np.float32)

    assert canceller.process(frame, frame).shape == (480,)
    assert canceller.filter_taps == 256 * 48 and canceller.output_delay_samples == 480
    with pytest.raises(
        ValueError, match="takes 480-sample mic frames \\(10 ms at 48000 Hz\\), got 160 samples"
    ):
        canceller.process(np.zeros(FRAME_SAMPLES, np.float32), np.zeros(FRAME_SAMPLES, np.float32))


def test_a_rate_that_is_not_whole_10_ms_frames_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="22050 Hz"):
        speex.SpeexCanceller(sample_rate=22_050)


def test_a_closed_canceller_says_closed_even_for_a_bad_frame() -> None:
    """After close the state is gone: that is the error to report, not the frame size."""
    canceller = speex.SpeexCanceller()
    canceller.close()

    with pytest.raises(speex.SpeexError, match="closed"):
        canceller.process(np.zeros(480, np.float32), np.zeros(480, np.float32))
    canceller.close()  # and closing again is still harmless
