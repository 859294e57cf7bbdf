"""The echo-delay tracker on its own: fed mic and speaker frames, it returns the delay to adopt
and never touches a device (the device applies what it returns; test_audio_devices.py checks
that on a real sound server)."""

from __future__ import annotations

import numpy as np

from voiceloop.audio.devices import DelayEstimate, EchoDelayTracker
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE


def echo_of(speaker: np.ndarray, delay: int, rng: np.random.Generator, gain: float = 0.5) -> np.ndarray:
    mic = np.zeros_like(speaker)
    mic[delay:] = gain * speaker[: speaker.size - delay]
    return (mic + 0.001 * rng.standard_normal(speaker.size)).astype(np.float32)


async def feed(
    tracker: EchoDelayTracker, speaker: np.ndarray, mic: np.ndarray, current_delay_s: float
) -> list[tuple[int, DelayEstimate]]:
    """Frame by frame, as the device does; returns (frame number, estimate) for each adoption.
    Waits for each correlation it starts, so the result does not hang on thread timing."""
    adopted = []
    for i in range(speaker.size // FRAME_SAMPLES):
        frame = slice(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES)
        estimate = tracker.add(mic[frame], speaker[frame], current_delay_s)
        if estimate is not None:
            adopted.append((i, estimate))
            current_delay_s = estimate.lag_samples / SAMPLE_RATE  # what the device does with it
        if tracker._pending is not None:
            await tracker._pending
    return adopted


async def test_without_a_configured_delay_the_first_clear_echo_is_adopted_and_returned():
    rng = np.random.default_rng(1)
    speaker = (0.2 * rng.standard_normal(4 * SAMPLE_RATE)).astype(np.float32)
    delay = 1234  # 77.1 ms
    tracker = EchoDelayTracker(trust_current=False)
    adopted = await feed(tracker, speaker, echo_of(speaker, delay, rng), current_delay_s=0.2)
    assert len(adopted) == 1  # the same delay again is no change
    _, estimate = adopted[0]
    assert isinstance(estimate, DelayEstimate) and estimate.clear and estimate.lag_samples == delay
    assert estimate.sample_rate == SAMPLE_RATE and estimate.correlation > 0.9
    assert tracker.changes == [delay / SAMPLE_RATE] and tracker.estimates >= 2


async def test_a_configured_delay_moves_only_when_the_echo_says_so_twice_in_a_row():
    rng = np.random.default_rng(2)
    speaker = (0.2 * rng.standard_normal(8 * SAMPLE_RATE)).astype(np.float32)
    before, after = 800, 1120  # 50 ms, then 70 ms from 4 s on
    mic = echo_of(speaker, before, rng)
    mic[4 * SAMPLE_RATE :] = echo_of(speaker, after, rng)[4 * SAMPLE_RATE :]
    tracker = EchoDelayTracker(trust_current=True)
    adopted = await feed(tracker, speaker, mic, current_delay_s=before / SAMPLE_RATE)
    assert [estimate.lag_samples for _, estimate in adopted] == [after]
    frame, _ = adopted[0]
    # Estimates run once a second over the last 2 s: the first that can hear the new delay
    # (3-5 s, half of it) may only make it a candidate; a second one has to agree.
    assert frame >= 6 * SAMPLE_RATE // FRAME_SAMPLES
    assert tracker.changes == [after / SAMPLE_RATE]


async def test_no_echo_gives_nothing_to_adopt():
    rng = np.random.default_rng(3)
    speaker = (0.2 * rng.standard_normal(5 * SAMPLE_RATE)).astype(np.float32)
    mic = (0.01 * rng.standard_normal(speaker.size)).astype(np.float32)  # a headset: no echo
    tracker = EchoDelayTracker(trust_current=False)
    assert await feed(tracker, speaker, mic, current_delay_s=0.1) == []
    assert tracker.changes == []


async def test_a_quiet_speaker_starts_no_correlation():
    rng = np.random.default_rng(4)
    speaker = np.zeros(4 * SAMPLE_RATE, dtype=np.float32)
    speaker[: SAMPLE_RATE // 2] = 0.2 * rng.standard_normal(SAMPLE_RATE // 2)  # 0.5 s < MIN_ACTIVE_S
    tracker = EchoDelayTracker(trust_current=False)
    assert await feed(tracker, speaker, echo_of(speaker, 500, rng), current_delay_s=0.1) == []
    assert tracker.estimates == 0
