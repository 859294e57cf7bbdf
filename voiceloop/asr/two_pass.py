"""The offline recogniser with the streaming model in front, for clients that stream ("2pass").

`voiceloop serve` with `asr.streaming = true`: a `stream=true` transcription request then gets
real partial text, the streaming Paraformer's hypothesis after each 600 ms chunk of the upload,
and its final text is still the offline recogniser's (with punctuation), as in the loop. A
request that does not stream, and batches, go to the offline recogniser alone: partials cost a
second decode that only a watching client is worth.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voiceloop.asr.base import PartialCallback, SpeechRecognizer, StreamingRecognizer, Transcription


class TwoPassRecognizer:
    def __init__(self, offline: SpeechRecognizer, streamer: StreamingRecognizer) -> None:
        self.offline = offline
        self.streamer = streamer
        self.name = offline.name

    def __getattr__(self, attribute: str) -> Any:
        """Everything else (description, device, transcribe_batch, ...) is the offline one's."""
        return getattr(self.offline, attribute)

    def warm_up(self) -> None:
        self.offline.warm_up()
        self.streamer.warm_up()

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        return self.offline.transcribe(audio, hotwords)

    def transcribe_streaming(
        self, audio: np.ndarray, hotwords: list[str] | None, on_partial: PartialCallback
    ) -> Transcription:
        stream = self.streamer.start()
        chunk = self.streamer.chunk_samples
        audio = np.asarray(audio, np.float32).reshape(-1)
        for start in range(0, len(audio), chunk):
            if stream.feed(audio[start : start + chunk], final=start + chunk >= len(audio)) and stream.text:
                on_partial(stream.text)
        return self.offline.transcribe(audio, hotwords)

    def close(self) -> None:
        self.offline.close()
