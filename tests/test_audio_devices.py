"""Real devices on a real sound server: a private PulseAudio daemon whose null sink plays into
its own monitor, so what the speaker plays comes back to the mic (voiceloop.testing.pulse).

Nothing here is mocked: PortAudio, ALSA's pulse plugin and PulseAudio move every sample."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from voiceloop.audio.base import AudioDeviceError, DuplexFrame
from voiceloop.audio.calibration import apply_user_calibration, play_and_record, read_calibration
from voiceloop.audio.devices import DeviceDuplex, estimate_delay
from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.build import build_adapter
from voiceloop.config import Settings, load_settings
from voiceloop.testing.pulse import (
    FIXED_48K_DEVICE,
    LOOPBACK_MIC,
    SPEAKER_DEVICE,
    SPEAKER_SINK,
    PulseServer,
    has_fixed_rate_device,
    missing_parts,
    private_pulse,
)

VOICELOOP = [sys.executable, "-m", "voiceloop"]
BACKENDS = ("sounddevice", "pyaudio")
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pulse():
    if (reason := missing_parts()) is not None:
        pytest.skip(f"no PulseAudio to stand in for a sound card: {reason}")
    with private_pulse() as server:
        yield server


@pytest.fixture
def on_pulse(pulse: PulseServer):
    with pulse.activate():
        yield pulse


def device_settings(backend: str, **audio: object) -> Settings:
    settings = load_settings("offline")
    settings.audio.backend = backend
    settings.audio.input_device = LOOPBACK_MIC
    settings.audio.output_device = SPEAKER_DEVICE
    for key, value in audio.items():
        setattr(settings.audio, key, value)
    return settings


def open_device(backend: str, **audio: object) -> DeviceDuplex:
    return build_adapter(device_settings(backend, **audio), "audio", backend)


def voiceloop(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VOICELOOP, *args],
        check=False,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- finding devices ------------------------------------------------------------------------------


def test_devices_lists_what_the_sound_server_offers_and_marks_the_defaults(pulse: PulseServer):
    listed = voiceloop("devices", "--json", env=pulse.client_env())
    assert listed.returncode == 0, listed.stderr
    devices = json.loads(listed.stdout)
    names = [d["name"] for d in devices]
    assert {SPEAKER_DEVICE, LOOPBACK_MIC} <= set(names)
    assert sum(d["default_input"] for d in devices) == 1 and sum(d["default_output"] for d in devices) == 1
    assert set(devices[0]) >= {
        "index",
        "name",
        "host_api",
        "input_channels",
        "output_channels",
        "default_samplerate",
    }

    table = voiceloop("devices", env=pulse.client_env())
    assert table.returncode == 0 and LOOPBACK_MIC in table.stdout
    assert "input + output" in table.stdout  # the default, marked


def test_with_no_sound_server_the_error_says_how_to_check(tmp_path: Path):
    if Path("/proc/asound/cards").exists() and "no soundcards" not in Path("/proc/asound/cards").read_text():
        pytest.skip("this machine has a sound card: PortAudio always sees a device here")
    env = {
        "PATH": "/usr/bin:/bin",
        "PULSE_SERVER": f"unix:{tmp_path}/nobody-listens",
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    result = voiceloop("devices", env=env)
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "sees no audio device at all" in message and "pactl info" in message


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_misspelt_device_name_lists_the_close_matches(on_pulse: PulseServer, backend: str):
    with pytest.raises(AudioDeviceError) as caught:
        open_device(backend, input_device="vl_loopbak")
    message = str(caught.value)
    assert "no input device matches 'vl_loopbak'" in message
    assert f"close matches: '{LOOPBACK_MIC}'" in message

    with pytest.raises(AudioDeviceError, match=r"no output device matches 'spekaer'.*'vl_speaker'"):
        open_device(backend, output_device="spekaer")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_device_that_refuses_a_rate_says_which_rates_it_takes(on_pulse: PulseServer, backend: str):
    if not has_fixed_rate_device():
        pytest.skip("ALSA's a52 plugin (the 48 kHz-only device) is not installed (libasound2-plugins)")
    with pytest.raises(AudioDeviceError) as caught:
        open_device(backend, output_device=FIXED_48K_DEVICE, sample_rate=16_000)
    message = str(caught.value)
    assert f"'{FIXED_48K_DEVICE}'" in message and "refuses 16000 Hz" in message
    assert "it accepts 48000 Hz" in message and "audio.sample_rate" in message


# -- the loopback ---------------------------------------------------------------------------------


TONE = slice(SAMPLE_RATE // 5, SAMPLE_RATE // 5 + SAMPLE_RATE)  # where the tone is played
SPEECH_FROM = TONE.stop + SAMPLE_RATE // 5


def tone_then_speech() -> np.ndarray:
    from voiceloop.tts.espeak import render

    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = 0.25 * np.sin(2 * np.pi * 440 * t)
    speech = render(
        "The quick brown fox jumps over the lazy dog. Then it runs off into the woods.", "en-us", 175
    )
    speech *= 0.5
    gap = np.zeros(SAMPLE_RATE // 5)
    return np.concatenate([gap, tone, gap, speech]).astype(np.float32)


def spectral_peak_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.fft.rfftfreq(audio.size, 1 / SAMPLE_RATE)[np.argmax(spectrum)])


async def record_with_references(
    device: DeviceDuplex, signal: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Plays `signal`; also keeps what the canceller gets (reference, mic) from the moment the
    device has found its delay in the echo."""
    references: list[np.ndarray] = []
    mics: list[np.ndarray] = []
    original = device._pair

    def pair(mic_frame: np.ndarray) -> DuplexFrame:
        frame = original(mic_frame)
        if device.delay_source == "echo":
            references.append(frame.reference_frame)
            mics.append(frame.mic_frame)
        return frame

    device._pair = pair  # type: ignore[method-assign]
    played, recorded = await play_and_record(device, signal, tail_s=1.0)
    return played, recorded, references, mics


@pytest.mark.parametrize("backend", BACKENDS)
def test_what_the_speaker_plays_comes_back_and_the_reference_leads_its_echo(
    on_pulse: PulseServer, backend: str
):
    signal = tone_then_speech()
    for _attempt in range(2):  # one retry: a loaded machine may glitch a stream
        device = open_device(backend)
        played, recorded, references, mics = asyncio.run(record_with_references(device, signal))
        # The speech, on its own: sounddevice's full-duplex stream on PulseAudio slips a
        # sample now and then, enough to turn a 440 Hz tone's correlation negative.
        found = estimate_delay(played[SPEECH_FROM:], recorded[SPEECH_FROM:], SAMPLE_RATE // 2)
        if found.clear and found.correlation > 0.5:
            break
    assert found.clear and found.correlation > 0.5, f"nothing clear came back: {found}"
    device_delay_ms = found.delay_ms - device.own_s * 1000
    assert 0 < device_delay_ms < 300  # a null sink and its monitor, plus PortAudio's buffers

    tone_back = recorded[TONE.start + found.lag_samples : TONE.stop + found.lag_samples]
    assert abs(spectral_peak_hz(tone_back) - 440) < 5

    # Uncalibrated, the device found its delay in the echo: the canceller's reference arrives
    # ahead of the echo (by about the configured lead), never after it.
    assert device.delay_source == "echo" and len(references) > 100
    lead = estimate_delay(np.concatenate(references), np.concatenate(mics), SAMPLE_RATE // 4)
    assert lead.clear and 0 < lead.delay_ms < 2 * device.lead_s * 1000
    assert device.stats.callbacks > 0 and device.stats.input_overruns == 0


def test_a_full_duplex_stream_brings_the_signal_back_too(on_pulse: PulseServer):
    """sounddevice's one-stream mode: through ALSA's pulse plugin it slips samples (the echo
    delay wanders), so only the tone is checked here, wherever it comes back."""
    signal = tone_then_speech()
    for _attempt in range(2):
        device = open_device("sounddevice", duplex="full")
        _, recorded = asyncio.run(play_and_record(device, signal, tail_s=1.0))
        window = SAMPLE_RATE // 2
        loudest = max(
            range(0, recorded.size - window, window // 4),
            key=lambda i: float(np.sum(recorded[i : i + window] ** 2)),
        )
        if abs(spectral_peak_hz(recorded[loudest : loudest + window]) - 440) < 5:
            break
    assert abs(spectral_peak_hz(recorded[loudest : loudest + window]) - 440) < 5
    assert device.plan is not None and device.plan.input_rate == device.plan.output_rate


def test_calibrate_measures_a_plausible_delay_and_the_loop_reads_it_back(
    pulse: PulseServer, monkeypatch: pytest.MonkeyPatch
):
    result = voiceloop(
        "calibrate", "--json", "--input", LOOPBACK_MIC, "--output", SPEAKER_DEVICE, env=pulse.client_env()
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert set(measured) == {"delay_ms", "echo_level_db", "input", "output", "sample_rate"}
    assert (measured["input"], measured["output"]) == (LOOPBACK_MIC, SPEAKER_DEVICE)
    assert 0 < measured["delay_ms"] < 300
    assert abs(measured["echo_level_db"]) < 3  # the monitor returns the sink's signal at full level
    assert measured["sample_rate"] >= 8000

    monkeypatch.setenv("XDG_CONFIG_HOME", str(pulse.config_home))
    monkeypatch.delenv("VOICELOOP_CALIBRATION", raising=False)
    assert read_calibration() == pytest.approx(measured["delay_ms"])
    real = apply_user_calibration(device_settings("sounddevice"))
    assert real.aec.delay_ms == pytest.approx(measured["delay_ms"])
    room = apply_user_calibration(load_settings("offline"))  # the virtual room keeps its own
    assert room.aec.delay_ms is None


def test_calibrate_with_a_drift_sweep_measures_one_clock_and_the_loop_starts_from_it(
    pulse: PulseServer, monkeypatch: pytest.MonkeyPatch
):
    # A null sink and its monitor share PulseAudio's clock: the drift is ~0, and saved.
    result = voiceloop(
        "calibrate",
        "--json",
        "--drift-s",
        "8",
        "--input",
        LOOPBACK_MIC,
        "--output",
        SPEAKER_DEVICE,
        env=pulse.client_env(),
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert abs(measured["drift_ppm"]) < 20
    monkeypatch.setenv("XDG_CONFIG_HOME", str(pulse.config_home))
    monkeypatch.delenv("VOICELOOP_CALIBRATION", raising=False)
    assert read_calibration(key="drift_ppm") == pytest.approx(measured["drift_ppm"])
    assert apply_user_calibration(device_settings("sounddevice")).aec.drift_ppm == pytest.approx(
        measured["drift_ppm"]
    )


# -- stopping -------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stream_cancelled_as_the_mic_wakes_it_stops_reading(on_pulse: PulseServer, backend: str):
    """Stopping a session cancels the task reading the device, whenever that lands. On Python
    3.11, asyncio.wait_for returned normally when the cancel came in the same loop step as the
    mic's wake, and the stream read on: `serve`'s Ctrl-C then waited for its kiosk session for
    ever (tests/test_serve_kiosk.py, about 1 run in 10 under load)."""
    from voiceloop.audio.playback import PlaybackQueue

    device = open_device(backend)

    async def run() -> bool:
        frames = 0

        async def read() -> None:
            nonlocal frames
            async for _ in device.frames(PlaybackQueue()):
                frames += 1

        reader = asyncio.create_task(read())
        while frames < 20 and not reader.done():
            await asyncio.sleep(0.01)
        assert device._wake is not None and not reader.done()
        device._wake.set()  # the mic's wake and the cancel in one loop step
        reader.cancel()
        await asyncio.wait({reader}, timeout=3)
        stopped = reader.cancelled()
        await device.aclose()
        return stopped

    assert asyncio.run(run()), "the stream read on after its task was cancelled"


# -- a device that goes away ----------------------------------------------------------------------


def stream_then(
    backend: str, event: Callable[[], None], frames_after: int = 150, in_loop: bool = False
) -> tuple[int, DeviceDuplex]:
    """Runs the loopback device and does `event` after 30 frames (in a worker thread, or in
    the loop itself); returns the frames seen after it, up to `frames_after`, and the device."""
    from voiceloop.audio.playback import PlaybackQueue

    device = open_device(backend, stall_timeout_s=1.0)

    async def run() -> int:
        frames = after = 0
        async for _ in device.frames(PlaybackQueue()):
            frames += 1
            if frames == 30:
                if in_loop:
                    event()
                else:
                    await asyncio.to_thread(event)
            elif frames > 30:
                after += 1
                if after == frames_after:
                    await device.aclose()
        return after

    return asyncio.run(asyncio.wait_for(run(), 20)), device


def paused_for(seconds: float, from_inside: bool) -> None:
    """Stops this whole process, audio threads and all, as a paused virtual machine or a
    suspend would: now (from inside, mid-frame), or a moment later from outside (the loop is
    then most likely waiting for the mic)."""
    pid = os.getpid()
    if from_inside:
        subprocess.Popen(["sh", "-c", f"sleep {seconds}; kill -CONT {pid}"])
        os.kill(pid, signal.SIGSTOP)
    else:
        subprocess.Popen(["sh", "-c", f"sleep 0.3; kill -STOP {pid}; sleep {seconds}; kill -CONT {pid}"])


@pytest.mark.parametrize("from_inside", [True, False], ids=["mid-frame", "waiting"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_process_paused_with_its_audio_goes_on_when_it_wakes(
    on_pulse: PulseServer, backend: str, from_inside: bool
):
    """The device was fine all along: this process was not running. CI once stopped here with
    "no sound from the input for 31.8 s" from a 2 s wait; the stream then was not gone."""
    after, device = stream_then(backend, lambda: paused_for(3.0, from_inside), frames_after=400, in_loop=True)
    assert after == 400
    assert device.stats.process_freezes == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sound_server_that_goes_away_mid_stream_stops_it_with_a_clear_error(backend: str):
    if (reason := missing_parts()) is not None:
        pytest.skip(f"no PulseAudio to stand in for a sound card: {reason}")
    with private_pulse() as server, server.activate(), pytest.raises(AudioDeviceError) as caught:
        stream_then(backend, server.go_away)  # its own server: this one dies
    message = str(caught.value)
    assert message.startswith("audio stopped:") and "unplugged or the sound server went away" in message
    assert LOOPBACK_MIC in message and SPEAKER_DEVICE in message


def test_a_sink_unplugged_under_pulseaudio_moves_the_stream_and_audio_goes_on():
    """PulseAudio moves a removed sink's streams to the default one; PortAudio never hears of
    it, so there is nothing to stop: the loop carries on (on the other device)."""
    if (reason := missing_parts()) is not None:
        pytest.skip(f"no PulseAudio to stand in for a sound card: {reason}")
    with private_pulse() as server, server.activate():
        assert stream_then("sounddevice", lambda: server.unplug(SPEAKER_SINK))[0] == 150
