"""microWakeWord through pymicro-wakeword: the models its wheel ships, on its bundled TFLite C
library, no download and no torch.

One feature frontend serves every word (the features are the same audio's), and each word's
model sees each feature; the model runs once per stride (30 ms), so most frames cost only the
frontend: 25-35 µs per 10 ms frame here. Which shipped models accept espeak voices is in the
shared NOTES: okay_nabu, alexa and hey_mycroft do, hey_jarvis does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceloop.audio.frames import FRAME_SAMPLES, SAMPLE_RATE, to_int16_into
from voiceloop.wake.base import WakeDetection, WakeWordError
from voiceloop.wake.options import MicroWakeOptions

if TYPE_CHECKING:
    from pymicro_wakeword import MicroWakeWord

FEATURE_STEP_S = 0.010  # one feature per 10 ms of audio
FRAME_BYTES = FRAME_SAMPLES * 2  # what the frontend reads per call: 10 ms of int16


def _models_dir() -> Path:
    try:
        import pymicro_wakeword
    except ImportError:
        raise WakeWordError(
            "the wake-word provider 'micro' needs pymicro-wakeword: pip install 'voiceloop[wake]'"
        ) from None
    return Path(pymicro_wakeword.__file__).parent / "models"


def available_words() -> list[str]:
    """The words whose models pymicro-wakeword's wheel ships (each a .json beside a .tflite)."""
    return sorted(path.stem for path in _models_dir().glob("*.json"))


def _load(word: str) -> MicroWakeWord:
    from pymicro_wakeword import MicroWakeWord

    custom = Path(word)
    if custom.suffix == ".json":  # a model of one's own: its config beside its .tflite
        if not custom.exists():
            raise WakeWordError(f"wake-word model config not found: {custom}")
        return MicroWakeWord.from_config(custom)
    known = available_words()
    if word not in known:
        raise WakeWordError(
            f"no wake-word model '{word}' (available: {', '.join(known)}); "
            "set loop.wake (or --wake) to one of them, or to a model's .json config"
        )
    return MicroWakeWord.from_config(_models_dir() / f"{word}.json")


class MicroWakeDetector:
    name = "micro"

    def __init__(self, words: list[str] | tuple[str, ...], options: MicroWakeOptions | None = None) -> None:
        from pymicro_features import MicroFrontend

        if not words:
            raise WakeWordError('no wake word given: set loop.wake, e.g. loop.wake = "okay_nabu"')
        self.options = options or MicroWakeOptions()
        self.words = tuple(words)
        self._models = [_load(word) for word in self.words]
        self._cutoffs = [
            self.options.probability_cutoff or model.probability_cutoff for model in self._models
        ]
        self._frontend = MicroFrontend()
        self._pending = b""  # samples the frontend has not read yet (it reads 10 ms at a time)
        self._scratch = np.empty(FRAME_SAMPLES, dtype=np.float32)
        self._pcm = np.empty(FRAME_SAMPLES, dtype=np.int16)
        self._deaf_for = [0] * len(self._models)  # features left in each word's refractory time
        self._refractory = round(self.options.refractory_s / FEATURE_STEP_S)

    def process(self, frame: np.ndarray) -> list[WakeDetection]:
        heard: list[WakeDetection] = []
        for features in self._features_of(frame):
            for index, model in enumerate(self._models):
                probability = model.process_streaming_prob(features)
                if self._deaf_for[index]:
                    self._deaf_for[index] -= 1
                    continue
                if probability is not None and probability > self._cutoffs[index]:
                    self._deaf_for[index] = self._refractory
                    heard.append(WakeDetection(self.words[index], round(float(probability), 3)))
        return heard

    def _features_of(self, frame: np.ndarray) -> list[np.ndarray]:
        """The frontend's features for this frame (one per 10 ms once its window is full);
        pymicro-wakeword's own feature loop, without its per-call buffer copies."""
        if frame.dtype == np.int16:
            pcm = frame.tobytes()
        elif frame.size == FRAME_SAMPLES:
            to_int16_into(frame, self._scratch, self._pcm)
            pcm = self._pcm.tobytes()
        else:
            pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()
        pending = self._pending + pcm if self._pending else pcm
        found: list[np.ndarray] = []
        offset = 0
        while offset + FRAME_BYTES <= len(pending):
            result = self._frontend.process_samples(pending[offset : offset + FRAME_BYTES])
            offset += result.samples_read * 2
            if result.features:
                found.append(np.array(result.features, dtype=np.float32).reshape(1, 1, -1))
            if not result.samples_read:
                break
        self._pending = pending[offset:]
        return found

    def reset(self) -> None:
        self._frontend.reset()
        self._pending = b""
        for model in self._models:
            model.reset()
        self._deaf_for = [0] * len(self._models)

    def close(self) -> None:
        for model in self._models:
            model.close()


def create(
    options: MicroWakeOptions, shared: Any, *, words: list[str] | tuple[str, ...], **_: Any
) -> MicroWakeDetector:
    assert SAMPLE_RATE == 16_000  # the models' rate: frames reach here at it, never resampled
    return MicroWakeDetector(words, options)
