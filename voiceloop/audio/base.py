"""The duplex-audio contract shared by the virtual room and real devices.

One stream both captures and plays: every mic frame comes with the speaker frame that is its
echo canceller's reference, so the two can never drift apart. The device pulls what it plays
from a `PlaybackQueue` the runtime fills, which is how playback stops within one frame.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from voiceloop.audio.playback import PlaybackQueue


@dataclass(frozen=True)
class DuplexFrame:
    mic_frame: np.ndarray  # 160 float32 samples, 16 kHz
    reference_frame: np.ndarray  # speaker samples aligned to this frame's echo
    captured_at: float  # device-clock time of the frame's first sample
    speaker_frame: np.ndarray  # what the speaker played during this frame (for the recording)


class AudioDeviceError(RuntimeError):
    """A device is missing, refuses a format, or went away; the message says what to do."""


@runtime_checkable
class DuplexAudio(Protocol):
    name: str

    def frames(self, playback: PlaybackQueue) -> AsyncIterator[DuplexFrame]:
        """Runs the stream: yields mic frames, plays what `playback` holds, until closed."""
        ...

    def now(self) -> float:
        """The device clock every event is stamped with (loop time, scaled in a fast room)."""
        ...

    def true_speech_end(self, before: float) -> float | None:
        """The exact end of the user's last utterance before `before`, where it is known
        (the virtual room); None on a real device, where VAD's estimate stands in."""
        ...

    async def aclose(self) -> None: ...
