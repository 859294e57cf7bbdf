"""Acoustic echo cancellation with WebRTC's AEC3, through the livekit package's prebuilt APM.

AEC3 estimates the echo delay itself (it finds the uncalibrated room's 150 ms, beyond a 128 ms
speex filter; a 256 ms one gets there in 2 s rather than 0.5) and suppresses its own residual
echo so hard that silero hears none after it (scripts/bench_aec.py: 40-53 dB ERLE). The price
is double talk: where the echo is about as loud as the user, its suppressor gates the user
too (in the +6 dB rooms silero heard only a quarter of the user's speech; speex kept 97%), so
barge-in over loud playback is where speex does better.

The output lags the mic, measured at 16 kHz by cross-correlating noise through it: 8 ms from
AEC3's block processing, plus 6 ms from noise suppression when that is on. With echo
cancellation on, WebRTC runs its high-pass filter whether asked or not (the output is
bit-identical either way), so it is simply always on here.

The reference should be fed as the room hands it out (aligned to within the reported delay);
AEC3 finds the residual delay on its own. `stream_delay_ms`, a hint, is passed on only when
given to the constructor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from voiceloop.aec.base import check_frames
from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE, to_int16_into

if TYPE_CHECKING:
    from voiceloop.aec.options import WebRtcOptions
    from voiceloop.config.settings import AecSettings

_MISSING = "the webrtc canceller needs the livekit package: pip install 'voiceloop[webrtc]'"

AEC_DELAY_SAMPLES = 128  # measured: AEC3's block framing
NOISE_SUPPRESSION_DELAY_SAMPLES = 96  # measured: the suppressor's analysis window


class WebRtcError(RuntimeError):
    pass


def _rtc() -> Any:
    """livekit is an optional extra, imported only when a canceller is built."""
    try:
        from livekit import rtc
    except ImportError:
        raise WebRtcError(_MISSING) from None
    return rtc


class WebRtcCanceller:
    """AEC3 (with its residual suppressor and high-pass filter) on 10 ms frames at 16 kHz."""

    name = "webrtc"
    # Measured in the virtual rooms (scripts/bench_aec.py's audio, 15 room seeds): from a cold
    # start, silero heard residual echo in isolated 32 ms chunks up to 1.8 s into the first
    # playback (kiosk-loud, living-room); after 0.5 s of room noise first, never.
    warmup_s = 2.0

    def __init__(self, noise_suppression: bool = True, stream_delay_ms: float | None = None) -> None:
        self._apm: Any = None
        self._rtc = _rtc()
        self.noise_suppression = noise_suppression
        self.stream_delay_ms = stream_delay_ms
        self.output_delay_samples = AEC_DELAY_SAMPLES + (
            NOISE_SUPPRESSION_DELAY_SAMPLES if noise_suppression else 0
        )
        # The APM works in place on int16 frames; these live as long as we do, and the numpy
        # views write straight into the bytes livekit hands to the native side.
        self._mic = self._rtc.AudioFrame.create(SAMPLE_RATE, 1, FRAME_SAMPLES)
        self._reference = self._rtc.AudioFrame.create(SAMPLE_RATE, 1, FRAME_SAMPLES)
        self._mic_samples = np.frombuffer(self._mic._data, dtype=np.int16)
        self._reference_samples = np.frombuffer(self._reference._data, dtype=np.int16)
        self._scaled = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        self._open()

    def _open(self) -> None:
        self._apm = self._rtc.AudioProcessingModule(
            echo_cancellation=True,
            noise_suppression=self.noise_suppression,
            high_pass_filter=True,
            auto_gain_control=False,  # AGC would pump the level VAD and ASR see
        )
        if self.stream_delay_ms is not None:
            self._apm.set_stream_delay_ms(round(self.stream_delay_ms))

    def _to_int16(self, frame: np.ndarray, out: np.ndarray) -> None:
        to_int16_into(frame, self._scaled, out)

    def process(self, mic_frame: np.ndarray, reference_frame: np.ndarray) -> np.ndarray:
        """Returns a new array: callers keep frames (pre-roll), so the buffer is not handed out."""
        if self._apm is None:
            raise WebRtcError("the webrtc canceller was closed: build a new one")
        check_frames(self.name, SAMPLE_RATE, mic_frame, reference_frame)
        self._to_int16(reference_frame, self._reference_samples)
        self._apm.process_reverse_stream(self._reference)
        self._to_int16(mic_frame, self._mic_samples)
        self._apm.process_stream(self._mic)
        return np.multiply(self._mic_samples, 1.0 / 32768.0, dtype=np.float32)

    def reset(self) -> None:
        """Forgets the room: the APM has no reset call, so a fresh one replaces it."""
        if self._apm is None:
            return
        self.close()
        self._open()

    def close(self) -> None:
        """Frees the native APM; safe to call twice.

        livekit has no close call: dropping the last reference disposes its handle at once.
        """
        self._apm = None


def create(options: WebRtcOptions, aec: AecSettings, **kwargs: Any) -> WebRtcCanceller:
    """From `[aec.webrtc]`. Not `aec.delay_ms` as the stream delay: the device already aligns
    the reference by it, so passing it again would count the delay twice; AEC3 estimates the
    rest itself."""
    return WebRtcCanceller(**{"noise_suppression": options.noise_suppression, **kwargs})
