"""The virtual room: a duplex audio device with no hardware.

It speaks a scripted user into the "mic" and sends the assistant's own playback back into it
through an echo path (bulk delay, a decaying room impulse response, gain, optional loudspeaker
clipping) plus noise — the situation that makes other assistants answer themselves. Because it
knows exactly when the user stopped talking, latencies measured here are true ones.

Timing: frame k covers room time [t0 + k·10 ms, t0 + (k+1)·10 ms). Its speaker samples are
pulled from the playback queue as it starts (so playback starts on a frame boundary, as from
a device buffer) and its mic samples are delivered when it ends (when they have been
"captured"). At speed 1 room time is loop time; at speed s it runs s times faster.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import numpy as np

from voiceloop.audio.base import DuplexFrame
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE, to_float32
from voiceloop.audio.room_echo import ChangingEchoPath, EchoConditions, loudspeaker_clip
from voiceloop.audio.script import ScriptTurn, UserScript
from voiceloop.audio.scripted_user import FRAME_S, ScriptedUser
from voiceloop.audio.spoken_line import SpokenLine, after_wake_word, render_pieces

if TYPE_CHECKING:
    from voiceloop.audio.ground_truth import GroundTruthLog
    from voiceloop.audio.playback import PlaybackQueue
    from voiceloop.config import Settings
    from voiceloop.config.settings import RoomSettings
    from voiceloop.session.log import SessionLog

# The reference must reach a canceller before its echo does: 10 ms late and speex gets
# nothing. Early by 5-25 ms speex reaches 30-33 dB; at 10 ms silero heard no echo at all
# after convergence in our rooms, while 20 and 30 ms let short bursts through at 0 dB echo.
REFERENCE_LEAD_MS = 10.0


# Both voices (the scripted user and the assistant's espeak) speak at about this active level,
# so the echo path's gain is directly the echo's level relative to the user.
VOICE_LEVEL_DBFS = -20.0


def room_impulse_response(rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """A direct path plus an exponentially decaying diffuse tail reaching -60 dB at rt60,
    scaled to unit energy so the echo gain alone sets the echo's level."""
    if rt60_s <= 0:
        return np.ones(1, dtype=np.float32)
    length = int(rt60_s * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.908 * t / rt60_s)
    tail[: int(0.003 * SAMPLE_RATE)] = 0.0  # first reflections arrive a few ms late
    tail *= 0.5 / max(np.sqrt(np.sum(tail**2)), 1e-9)  # diffuse energy below the direct path
    tail[0] = 1.0
    return (tail / np.sqrt(np.sum(tail**2))).astype(np.float32)


def at_voice_level(audio: np.ndarray) -> np.ndarray:
    """Scales speech so its active (voiced) level is VOICE_LEVEL_DBFS."""
    frames = audio[: audio.size // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    if frames.size == 0:
        return audio
    energy = np.mean(frames.astype(np.float64) ** 2, axis=1)
    active = energy[energy > energy.max() * 1e-3]
    level = 10 * np.log10(max(float(active.mean()), 1e-12))
    return (audio * 10 ** ((VOICE_LEVEL_DBFS - level) / 20)).astype(np.float32)


def trim_silence(audio: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Cuts a rendered line to its voiced part, so 'end of speech' means the last sound."""
    loud = np.flatnonzero(np.abs(audio) > threshold * max(float(np.max(np.abs(audio))), 1e-9))
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]


class EchoPath:
    """Streaming convolution of the speaker signal with the room, after a bulk delay."""

    def __init__(self, delay_ms: float, gain_db: float, rir: np.ndarray, soft_clip: bool) -> None:
        self.delay = int(round(delay_ms * SAMPLE_RATE / 1000))
        self.gain = float(10 ** (gain_db / 20))
        self.rir = rir
        self.soft_clip = soft_clip
        self._pending = np.zeros(self.delay + len(rir) + FRAME_SAMPLES, dtype=np.float32)

    def process(self, speaker_frame: np.ndarray) -> np.ndarray:
        if np.any(speaker_frame):
            played = loudspeaker_clip(speaker_frame) if self.soft_clip else speaker_frame
            wet = np.convolve(played, self.rir)
            self._pending[self.delay : self.delay + wet.size] += self.gain * wet
        out = self._pending[:FRAME_SAMPLES].copy()
        self._pending[:-FRAME_SAMPLES] = self._pending[FRAME_SAMPLES:]
        self._pending[-FRAME_SAMPLES:] = 0.0
        return out


def echo_path(
    room: RoomSettings, conditions: EchoConditions | None, rir: np.ndarray
) -> EchoPath | ChangingEchoPath:
    """The fixed path unless the conditions drift, change or overdrive it."""
    if conditions is None or not conditions.changes_echo:
        return EchoPath(room.echo_delay_ms, room.echo_gain_db, rir, room.soft_clip)
    return ChangingEchoPath(
        room.echo_delay_ms, room.echo_gain_db, rir, room.soft_clip, conditions, seed=room.seed
    )


def calibration_sweeps(
    room: RoomSettings, conditions: EchoConditions | None, drift_s: float = 30.0
) -> tuple[np.ndarray, np.ndarray, list[int], int]:
    """What `voiceloop calibrate --drift-s` plays and records in this room, offline: its sweeps
    through the room's echo path (the same impulse response, clocks, clipping and any path
    changes) over the room's noise; (played, recorded, sweep starts, sweep length)."""
    from voiceloop.audio.calibration import CHIRP_S, MAX_DELAY_S, chirp, sweeps

    sweep = chirp(CHIRP_S)
    signal, starts = sweeps(sweep, drift_s=drift_s)
    frames = -(-(signal.size + int(MAX_DELAY_S * SAMPLE_RATE)) // FRAME_SAMPLES)
    played = np.zeros(frames * FRAME_SAMPLES, np.float32)
    played[: signal.size] = signal
    path = echo_path(room, conditions, room_impulse_response(room.rt60_s, np.random.default_rng(room.seed)))
    echo = np.concatenate([path.process(frame) for frame in played.reshape(frames, FRAME_SAMPLES)])
    noise = np.random.default_rng(room.seed + 1).standard_normal(echo.size).astype(np.float32)
    recorded = echo + np.float32(10 ** (room.noise_dbfs / 20)) * noise
    return played, recorded, starts, sweep.size


def calibrated_drift_ppm(
    room: RoomSettings, conditions: EchoConditions | None, drift_s: float = 30.0
) -> float | None:
    """What `voiceloop calibrate --drift-s` would measure in this room: its sweeps
    (`calibration_sweeps`) found and fitted by calibrate's own code. Not in real time: the
    benches start a drifting room calibrated, as a user who ran it would."""
    from voiceloop.audio.calibration import sweep_drift_ppm

    return sweep_drift_ppm(*calibration_sweeps(room, conditions, drift_s))


class VirtualRoom:
    name = "virtual"

    def __init__(
        self,
        script: UserScript,
        room: RoomSettings,
        render: Callable[[str, str, int], np.ndarray] | None = None,
        conditions: EchoConditions | None = None,
    ) -> None:
        self.script = script
        self.room = room
        rng = np.random.default_rng(room.seed)
        self._noise_rng = np.random.default_rng(room.seed + 1)
        self.echo = echo_path(room, conditions, room_impulse_response(room.rt60_s, rng))
        reported = room.echo_delay_ms if room.reported_delay_ms is None else room.reported_delay_ms
        self.reference_delay = max(0, int(round((reported - REFERENCE_LEAD_MS) * SAMPLE_RATE / 1000)))
        self._reference_line = np.zeros(self.reference_delay + FRAME_SAMPLES, dtype=np.float32)
        rendered: dict[tuple[object, ...], SpokenLine] = {}  # a long script repeats its lines
        lines = []
        for turn in script.turns:
            key = (turn.say, turn.wav, turn.cough_ms, turn.noise_ms, turn.drop_ms, turn.clipped, turn.wake)
            if key not in rendered:
                rendered[key] = self._render(turn, render)
            lines.append(rendered[key])
        self.user = ScriptedUser(
            script,
            [line.audio for line in lines],
            [line.pauses for line in lines],
            [line.wake_end_s for line in lines],
        )
        self._truth: GroundTruthLog | None = None
        self._noise_amplitude = float(10 ** (room.noise_dbfs / 20))
        self._t0: float | None = None
        self._closed = False
        self.drops: list[tuple[float, float]] = []  # (when, seconds) the device was gone

    def _cough(self, duration_ms: int) -> np.ndarray:
        """Band-limited noise with a sharp attack and fast decay: what a cough gives a VAD."""
        rng = np.random.default_rng(self.room.seed + 99 + duration_ms)
        n = int(duration_ms * SAMPLE_RATE / 1000)
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        spectrum[(freqs < 300) | (freqs > 3500)] = 0
        burst = np.fft.irfft(spectrum, n) * np.exp(-np.arange(n) / (0.3 * n))
        burst[: n // 20] *= np.linspace(0, 1, n // 20)
        return at_voice_level(burst.astype(np.float32))

    def _render(self, turn: ScriptTurn, render: Callable[[str, str, int], np.ndarray] | None) -> SpokenLine:
        if turn.say is None:
            return SpokenLine(self._render_line(turn, render))
        spoken = self._spoken(turn, render)
        if turn.clipped:  # the same pauses, 20 dB too hot
            return SpokenLine(np.clip(spoken.audio * 10.0, -1.0, 1.0), spoken.pauses, spoken.wake_end_s)
        return spoken

    def _spoken(self, turn: ScriptTurn, render: Callable[[str, str, int], np.ndarray] | None) -> SpokenLine:
        """Text in the user's voice, each piece cut to its voiced part, pauses as silence."""
        if render is None:
            from voiceloop.tts.espeak import render as espeak_render

            render = espeak_render
        voice = render

        def voice_piece(text: str) -> np.ndarray:
            return trim_silence(to_float32(voice(text, self.script.voice, self.script.rate_wpm)))

        line = render_pieces(turn.text_parts, voice_piece)
        if turn.wake is not None:
            line = after_wake_word(voice_piece(turn.wake), turn.wake_pause_ms, line)
        return SpokenLine(at_voice_level(line.audio), line.pauses, line.wake_end_s)

    def _render_line(
        self, turn: ScriptTurn, render: Callable[[str, str, int], np.ndarray] | None
    ) -> np.ndarray:
        if turn.cough_ms is not None:
            return self._cough(turn.cough_ms)
        if turn.noise_ms is not None:
            rng = np.random.default_rng(self.room.seed + 7 + turn.noise_ms)
            return at_voice_level(rng.standard_normal(turn.noise_ms * SAMPLE_RATE // 1000).astype(np.float32))
        if turn.drop_ms is not None:
            return np.zeros(0, dtype=np.float32)  # no sound: the room stops delivering instead
        if turn.clipped:
            line = self._render_line(turn.model_copy(update={"clipped": False}), render)
            return np.clip(line * 10.0, -1.0, 1.0)
        if turn.wav is not None:
            from voiceloop.audio.files import read_audio

            return at_voice_level(trim_silence(read_audio(turn.wav)))
        return self._spoken(turn, render).audio

    def attach_log(self, session: SessionLog) -> None:
        """Each scripted line's true start and end (and inner pauses) go to the session log."""
        from voiceloop.audio.ground_truth import GroundTruthLog

        self._truth = GroundTruthLog(session, self.script)

    # -- DuplexAudio -------------------------------------------------------------------------

    def now(self) -> float:
        loop_now = asyncio.get_running_loop().time()
        if self._t0 is None:
            return loop_now
        return self._t0 + (loop_now - self._t0) * self.room.speed

    async def frames(self, playback: PlaybackQueue) -> AsyncIterator[DuplexFrame]:
        loop = asyncio.get_running_loop()
        self._t0 = t0 = loop.time()
        if self._truth is not None:  # the recorded tracks start here
            self._truth.room_started(t0, self.room.speed, FRAME_S * 1000)
        k = 0
        last_frame = int(self.script.max_session_s / FRAME_S)
        while not self._closed and not self.user.done and k < last_frame:
            frame_at = t0 + k * FRAME_S
            speaker_frame = playback.pull(FRAME_SAMPLES, at=frame_at)
            audible = bool(np.any(speaker_frame))
            mic_frame = self.user.frame(frame_at - t0, audible, playback.mid_reply) + self.echo.process(
                speaker_frame
            )
            if self._truth is not None:
                self._truth.advance(frame_at - t0 + FRAME_S, self.user.utterances)
            if self.user.drop_requested_ms:
                # The device vanishes: no frames, nothing played, then it is back with the
                # time that passed lost, as when a USB device is re-plugged.
                dropped = int(self.user.drop_requested_ms / 1000 / FRAME_S)
                self.user.drop_requested_ms = 0
                self.drops.append((frame_at, dropped * FRAME_S))
                await asyncio.sleep(dropped * FRAME_S / self.room.speed)
                k += dropped
                continue
            mic_frame += self._noise_amplitude * self._noise_rng.standard_normal(FRAME_SAMPLES).astype(
                np.float32
            )
            np.clip(mic_frame, -1.0, 1.0, out=mic_frame)
            reference_frame = self._delayed_reference(speaker_frame)
            captured_by = t0 + (k + 1) * FRAME_S / self.room.speed
            delay = captured_by - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif k % 20 == 0:
                await asyncio.sleep(0)  # behind schedule: still let other tasks run
            yield DuplexFrame(
                mic_frame=mic_frame,
                reference_frame=reference_frame,
                captured_at=frame_at,
                speaker_frame=speaker_frame,
            )
            k += 1
        if self._truth is not None:
            self._truth.close(self.user.utterances)

    def _delayed_reference(self, speaker_frame: np.ndarray) -> np.ndarray:
        self._reference_line[-FRAME_SAMPLES:] = speaker_frame
        out = self._reference_line[:FRAME_SAMPLES].copy()
        self._reference_line[:-FRAME_SAMPLES] = self._reference_line[FRAME_SAMPLES:]
        return out

    def true_speech_end(self, before: float) -> float | None:
        if self._t0 is None:
            return None
        ends = [self._t0 + u.end_at for u in self.user.utterances if self._t0 + u.end_at <= before]
        return max(ends) if ends else None

    def user_speech_intervals(self) -> list[tuple[float, float]]:
        """Loop-clock intervals when the scripted user was talking."""
        t0 = self._t0 or 0.0
        return [(t0 + u.start_at, t0 + u.end_at) for u in self.user.utterances]

    async def aclose(self) -> None:
        self._closed = True
        if self._truth is not None:
            self._truth.close(self.user.utterances)  # a line cut short by the end of the session


def create(options: object, settings: Settings, script: UserScript | None = None, **_: object) -> VirtualRoom:
    """A device reads `[audio]` and `[aec] delay_ms`: it gets the settings (it has no options)."""
    if script is None:
        from voiceloop.audio.script import load_script
        from voiceloop.config.settings import CONFIGS_DIR

        script = load_script(CONFIGS_DIR / "demo-script.toml")
    return VirtualRoom(script, room_as_configured(settings))


def room_as_configured(settings: Settings) -> RoomSettings:
    """The room, with `aec.delay_ms` (a delay set by hand) as the delay the device reports."""
    room = settings.audio.room
    if settings.aec.delay_ms is None:
        return room
    return room.model_copy(update={"reported_delay_ms": settings.aec.delay_ms})
