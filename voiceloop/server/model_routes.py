"""`GET /v1/models`: what this server answers with, in OpenAI's model-list shape.

OpenAI clients list models to check a server and to fill their pickers. Entries are the
recogniser (the model behind /v1/audio/transcriptions), the voice engine (/v1/audio/speech) and
the voices it can speak; each also says which of those it is (`kind`, an extension OpenAI's
clients keep but do not read). The `model` a request names is accepted whatever it is: one
recogniser and one voice engine answer every request.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from voiceloop.server.errors import ApiError
from voiceloop.server.state import ServerState, state

router = APIRouter()
OWNER = "voiceloop"


def model_entries(server: ServerState) -> list[dict[str, Any]]:
    created = int(time.time() - (time.monotonic() - server.started))  # when the server started
    entries = [(server.recognizer.name, "transcription"), (server.speech.name, "speech")]
    entries += [(voice, "voice") for voice in server.speech.voices()]
    seen: set[str] = set()
    out = []
    for model_id, kind in entries:
        if model_id not in seen:
            seen.add(model_id)
            out.append(
                {"id": model_id, "object": "model", "created": created, "owned_by": OWNER, "kind": kind}
            )
    return out


@router.get("/v1/models", tags=["models"], summary="The recogniser, the voice engine and its voices")
async def list_models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": model_entries(state(request))}


@router.get("/v1/models/{model_id:path}", tags=["models"], summary="One entry of /v1/models")
async def retrieve_model(request: Request, model_id: str) -> dict[str, Any]:
    for entry in model_entries(state(request)):
        if entry["id"] == model_id:
            return entry
    raise ApiError(404, f"no model '{model_id[:80]}' here: GET /v1/models lists them", "model_not_found")
