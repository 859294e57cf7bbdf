"""What the Edge-TTS service sends, for the loopback stand-in (`edge_server.py`): the request
as SSML, the speech as MP3 with word timings, and the framing of its websocket messages (text
messages with headers, binary audio messages with a 2-byte header length)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import numpy as np

from voiceloop.text.scripts import UNSPACED
from voiceloop.tts.mp3 import encode_mp3

MP3_RATE = 24_000
MP3_BITRATE = 48_000
TICKS_PER_SECOND = 10_000_000
_SSML_NS = "{http://www.w3.org/2001/10/synthesis}"
_WORD = re.compile(rf"[{UNSPACED}]|(?:(?![{UNSPACED}])\w)+(?:['’](?:(?![{UNSPACED}])\w)+)*")


@dataclass
class EdgeRequest:
    """One synthesis request as the service saw it."""

    query: dict[str, str]
    headers: dict[str, str]
    voice: str = ""
    rate: str = ""
    volume: str = ""
    pitch: str = ""
    text: str = ""
    word_boundaries: bool = False
    output_format: str = ""
    audio_messages: int = 0
    completed: bool = False  # turn.end sent


@dataclass
class Rendered:
    mp3: bytes
    seconds: float
    words: list[tuple[str, float, float]]  # (text, offset_s, duration_s)


# -- speech and its MP3 ---------------------------------------------------------------------------


def render_speech(
    text: str, voice: str, word_boundaries: bool, render: Callable[[str, str], np.ndarray] | None
) -> Rendered:
    from voiceloop.audio.frames import resample

    if render is None:
        from voiceloop.tts.espeak import render as espeak_render

        speech = espeak_render(text, voice)
    else:
        speech = render(text, voice)
    pcm = resample(speech, 16_000, MP3_RATE)
    seconds = pcm.size / MP3_RATE
    voiced = np.flatnonzero(np.abs(pcm) > 0.02)
    start_s, end_s = (voiced[0] / MP3_RATE, voiced[-1] / MP3_RATE) if voiced.size else (0.0, seconds)
    tokens = _WORD.findall(text) if word_boundaries else [text.strip()]
    return Rendered(encode_mp3(pcm), seconds, spread(tokens, start_s, end_s))


def spread(tokens: list[str], start_s: float, end_s: float) -> list[tuple[str, float, float]]:
    """Word timings over the voiced span, in proportion to each word's length."""
    weights = [len(token) + 1 for token in tokens]
    total = sum(weights) or 1
    span = max(end_s - start_s, 0.0)
    words, at = [], start_s
    for token, weight in zip(tokens, weights, strict=True):
        duration = span * weight / total
        words.append((token, at, duration * 0.9))
        at += duration
    return words


# -- the service's framing ----------------------------------------------------------------------


def parse_text_message(message: str | bytes) -> tuple[dict[str, str], str]:
    if isinstance(message, bytes):
        raise TypeError("expected a text message")
    head, _, body = message.partition("\r\n\r\n")
    headers = dict(line.split(":", 1) for line in head.split("\r\n") if ":" in line)
    return headers, body


def read_ssml(body: str, request: EdgeRequest) -> None:
    root = ElementTree.fromstring(body)
    voice = root.find(f"{_SSML_NS}voice")
    prosody = voice.find(f"{_SSML_NS}prosody") if voice is not None else None
    if voice is None or prosody is None:
        raise ValueError("SSML without voice/prosody")
    request.voice = voice.get("name", "")
    request.rate, request.volume, request.pitch = (prosody.get(k, "") for k in ("rate", "volume", "pitch"))
    request.text = "".join(prosody.itertext())


def text_message(path: str, body: str, request_id: str) -> str:
    return (
        f"X-RequestId:{request_id}\r\n"
        "Content-Type:application/json; charset=utf-8\r\n"
        f"Path:{path}\r\n\r\n{body}"
    )


def audio_message(data: bytes, request_id: str) -> bytes:
    """2-byte header length, headers (Path last: the client skips the length bytes by
    parsing them into the first header's name), then the MP3 bytes."""
    content_type = "Content-Type:audio/mpeg\r\n" if data else ""
    headers = f"X-RequestId:{request_id}\r\n{content_type}X-StreamId:{request_id[:8]}\r\nPath:audio\r\n"
    encoded = headers.encode()
    return len(encoded).to_bytes(2, "big") + encoded + data


def metadata_message(
    word: str, offset_s: float, duration_s: float, request: EdgeRequest, request_id: str
) -> str:
    kind = "WordBoundary" if request.word_boundaries else "SentenceBoundary"
    escaped = escape(word)  # the service echoes the SSML's escaped text; the client unescapes
    data = {
        "Offset": round(offset_s * TICKS_PER_SECOND),
        "Duration": round(duration_s * TICKS_PER_SECOND),
        "text": {"Text": escaped, "Length": len(escaped), "BoundaryType": kind},
    }
    return text_message(
        "audio.metadata", json.dumps({"Metadata": [{"Type": kind, "Data": data}]}), request_id
    )
