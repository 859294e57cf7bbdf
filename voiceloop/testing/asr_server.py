"""A local OpenAI-compatible transcription server (`/v1/audio/transcriptions`) on 127.0.0.1.

It answers with a real recogniser (pocketsphinx, or Paraformer on tiny or real models), so the
`openai` ASR adapter is tested against real HTTP, real multipart uploads and the real SDK, with
transcripts that depend on the audio sent. It speaks the formats OpenAI, vLLM and FunASR's own
server do (`json`, `text`, `verbose_json` with word timestamps), and can play a server that has
no `verbose_json` (OpenAI's gpt-4o models) or fails (`fail_next(500)`).

    with AsrServer(PocketsphinxRecognizer(phrases=[...])) as server:
        client = OpenAI(base_url=server.base_url, api_key="x")

Standalone: `python -m voiceloop.testing.asr_server --asr pocketsphinx --port 8000`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from voiceloop.audio.frames import SAMPLE_RATE
from voiceloop.testing.llm_server import error_response
from voiceloop.testing.threaded import AppServer

HOST = "127.0.0.1"


@dataclass(frozen=True)
class TranscriptionRequest:
    """One request as received, so tests can assert what the client sent."""

    model: str
    filename: str
    audio_bytes: int
    fields: dict[str, list[str]]

    def field(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


def parse_multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, list[str]], dict[str, tuple[str, bytes]]]:
    """Form fields and files from a multipart/form-data body, with the stdlib's MIME parser
    (no python-multipart dependency for a test server)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
    )
    fields: dict[str, list[str]] = {}
    files: dict[str, tuple[str, bytes]] = {}
    if not message.is_multipart():
        return fields, files
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[str(name)] = (filename, payload)
        else:
            fields.setdefault(str(name), []).append(payload.decode("utf-8"))
    return fields, files


class AsrServer(AppServer):
    """Serves `recognizer` (anything with `transcribe(audio, hotwords)`) from a thread.

    `models` are the names it accepts (others get OpenAI's 404). Hotwords reach the recogniser
    from the request's `prompt` (space-separated), as the `openai` adapter sends them.
    """

    server_name = "test ASR server"

    def __init__(
        self,
        recognizer: Any,
        *,
        models: Sequence[str] = ("paraformer", "whisper-1"),
        verbose_json: bool = True,
        api_key: str | None = None,
        port: int = 0,
        delay_s: float = 0.0,
    ) -> None:
        self.recognizer = recognizer
        self.delay_s = delay_s  # added to every answer, as a busy shared GPU box's would be
        self.models = tuple(models)
        self.verbose_json = verbose_json
        # What verbose_json says was heard when the request names no language (as OpenAI's
        # detection would); None: "unknown", as FunASR's server says.
        self.detected_language: str | None = None
        self.api_key = api_key
        self.port = port
        self.requests: list[TranscriptionRequest] = []
        self.faults: deque[int] = deque()
        self.app = Starlette(
            routes=[
                Route("/v1/models", self._list_models, methods=["GET"]),
                Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"]),
            ]
        )

    @property
    def last_request(self) -> TranscriptionRequest:
        return self.requests[-1]

    def fail_next(self, *statuses: int) -> None:
        """The next requests answer these HTTP statuses, one each."""
        self.faults.extend(statuses)

    # -- endpoints -----------------------------------------------------------------------------

    async def _list_models(self, request: Request) -> Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "voiceloop"} for m in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def _transcribe(self, request: Request) -> Response:
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return error_response(401, "Incorrect API key provided.", code="invalid_api_key")
        fields, files = parse_multipart(request.headers.get("content-type", ""), await request.body())
        upload = files.get("file")
        model = (fields.get("model") or [""])[0]
        self.requests.append(
            TranscriptionRequest(model, upload[0] if upload else "", len(upload[1]) if upload else 0, fields)
        )
        if self.faults:
            return error_response(self.faults.popleft(), "Injected failure.", kind="server_error")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if upload is None:
            return error_response(400, "'file' is a required property.", param="file")
        if model not in self.models:
            return error_response(404, f"The model `{model}` does not exist.", code="model_not_found")
        response_format = (fields.get("response_format") or ["json"])[0]
        if response_format == "verbose_json" and not self.verbose_json:
            return error_response(
                400,
                f"response_format 'verbose_json' is not compatible with model '{model}'.",
                param="response_format",
            )
        try:
            audio = _decode(upload[1])
        except ValueError as exc:
            return error_response(400, f"Audio file might be corrupted or unsupported: {exc}", param="file")
        prompt = (fields.get("prompt") or [""])[0]
        try:
            result = await asyncio.to_thread(self.recognizer.transcribe, audio, prompt.split() or None)
        except Exception as exc:  # e.g. a hotword the model cannot use: the client's mistake
            return error_response(400, f"Transcription failed: {exc}")
        if response_format == "text":
            return PlainTextResponse(result.text + "\n")
        if response_format == "verbose_json":
            words = [{"word": w, "start": s, "end": e} for w, s, e in result.timestamps]
            return JSONResponse(
                {
                    "task": "transcribe",
                    "language": (fields.get("language") or [self.detected_language or "unknown"])[0],
                    "duration": result.audio_s,
                    "text": result.text,
                    "words": words,
                    "segments": [{"id": 0, "start": 0.0, "end": result.audio_s, "text": result.text}]
                    if result.text
                    else [],
                }
            )
        return JSONResponse({"text": result.text})


def _decode(data: bytes) -> Any:
    import soundfile as sf

    from voiceloop.audio.frames import resample

    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:
        raise ValueError(type(exc).__name__) from None
    return resample(audio.mean(axis=1), rate, SAMPLE_RATE)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local OpenAI-compatible transcription server.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--asr", default="pocketsphinx", help="a voiceloop ASR adapter name")
    parser.add_argument("--config", help="a voiceloop config (asr.paraformer.model, asr.hotwords, ...)")
    args = parser.parse_args(argv)
    from voiceloop.build import build_adapter
    from voiceloop.config import load_settings

    settings = load_settings(args.config)
    recognizer = build_adapter(settings, "asr", args.asr)
    recognizer.warm_up()
    server = AsrServer(recognizer, port=args.port)
    print(f"OpenAI-compatible transcription server at http://{HOST}:{args.port}/v1 ({args.asr})", flush=True)
    uvicorn.run(server.app, host=HOST, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
