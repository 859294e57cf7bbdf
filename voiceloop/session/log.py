"""The session log: `runs/<session-id>/session.jsonl` and `conversation.wav`.

One JSON line per event, flushed as written, so a crash loses nothing already said. The WAV
holds two channels, mic (what the loop heard, before echo cancellation) and speaker (what it
played), streamed to disk in blocks so a long session never piles up in memory.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from voiceloop.audio.frames import SAMPLE_RATE

WAV_BLOCK_FRAMES = 50  # 0.5 s per write


def new_session_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + f"{time.time_ns() % 1_000_000:06d}"


class SessionLog:
    def __init__(self, root: Path, session_id: str | None = None, record_wav: bool = True) -> None:
        self.session_id = session_id or new_session_id()
        self.dir = Path(root) / self.session_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.dir / "session.jsonl"
        self.wav_path = self.dir / "conversation.wav"
        self._jsonl = self.jsonl_path.open("a", encoding="utf-8")
        self._wav: Any = None
        self._block: list[np.ndarray] = []
        if record_wav:
            import soundfile as sf

            self._wav = sf.SoundFile(
                str(self.wav_path), "w", samplerate=SAMPLE_RATE, channels=2, subtype="PCM_16"
            )
        self.t0: float | None = None

    def start(self, t0: float, **fields: Any) -> None:
        self.t0 = t0
        self.write("session_start", wall_time=datetime.now().isoformat(timespec="seconds"), **fields)

    def write(self, event: str, at: float | None = None, **fields: Any) -> None:
        record: dict[str, Any] = {"event": event}
        if at is not None and self.t0 is not None:
            record["t"] = round(at - self.t0, 4)
        record.update(fields)
        self._jsonl.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._jsonl.flush()

    def write_audio(self, mic_frame: np.ndarray, speaker_frame: np.ndarray) -> None:
        if self._wav is None:
            return
        self._block.append(np.stack([mic_frame, speaker_frame], axis=1))
        if len(self._block) >= WAV_BLOCK_FRAMES:
            self._flush_audio()

    def _flush_audio(self) -> None:
        if self._block and self._wav is not None:
            self._wav.write(np.concatenate(self._block))
            self._block = []

    def close(self, **fields: Any) -> None:
        if self._jsonl.closed:
            return
        self._flush_audio()
        if self._wav is not None:
            self._wav.close()
        self.write("session_end", **fields)
        self._jsonl.close()


def read_session(path: Path) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
