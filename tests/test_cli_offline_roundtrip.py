"""What a newcomer tries first, offline: `voiceloop say` into a file, then `voiceloop transcribe`
on it with the offline profile, in the formats real encoders write (a streamed FLAC included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

from voiceloop.cli.app import app

ENV = {"COLUMNS": "200", "VOICELOOP_CONFIG": ""}
# Phrases from voiceloop/configs/offline.toml's [asr.pocketsphinx] list; "what time is it" came back empty
# while "hello there" worked (issue 20): espeak's files begin and end in digital silence.
PHRASES = ["what time is it", "hello there", "tell me a joke", "set a timer for five minutes", "goodbye"]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_what_say_writes_transcribe_hears_for_the_offline_phrases(tmp_path: Path) -> None:
    files = []
    for number, phrase in enumerate(PHRASES):
        path = tmp_path / f"{number}.wav"
        code, _, err = invoke("say", phrase, "--tts", "espeak", "-c", "offline", "-o", str(path))
        assert code == 0, err
        files.append(path)
    code, out, err = invoke("transcribe", "-c", "offline", *map(str, files))
    assert code == 0, err
    heard = dict(line.split(": ", 1) for line in out.splitlines())
    assert heard == {str(path): phrase for path, phrase in zip(files, PHRASES, strict=True)}


class _Pipe:
    """A write-only, unseekable output (a pipe to stdout), as streaming encoders write to."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> int:
        self.data += bytes(chunk)
        return len(chunk)

    def seekable(self) -> bool:
        return False


def streamed_flac(audio: np.ndarray, rate: int) -> bytes:
    """FLAC encoded block by block by FFmpeg (PyAV) into a pipe: the header cannot be rewritten
    at the end, so STREAMINFO's total-samples field stays 0 (length unknown)."""
    import av

    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    pipe = _Pipe()
    with av.open(pipe, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate)
        stream.layout = "mono"
        for start in range(0, len(pcm), 1600):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + 1600], format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return bytes(pipe.data)


def test_a_streamed_flac_of_unknown_length_is_transcribed(tmp_path: Path) -> None:
    spoken = tmp_path / "spoken.wav"
    assert invoke("say", "what time is it", "--tts", "espeak", "-c", "offline", "-o", str(spoken))[0] == 0
    audio, rate = sf.read(spoken, dtype="float32")
    audio = np.concatenate([audio, np.zeros(3 * rate, np.float32)])  # past the encoder's own buffer
    flac = tmp_path / "stream.flac"
    flac.write_bytes(streamed_flac(audio, rate))
    header = flac.read_bytes()
    assert header[21] & 0x0F == 0 and header[22:26] == bytes(4)  # total samples: 0, unknown
    assert sf.info(str(flac)).frames > 10**15  # what libsndfile then reports

    code, out, err = invoke("transcribe", "-c", "offline", str(flac))
    assert code == 0, err
    assert out.strip() == "what time is it"
