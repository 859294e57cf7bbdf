"""What a transcription server supports, learned once, before its first transcription.

OpenAI-compatible transcription servers differ in ways a request cannot see until it fails, and
some failures are slow. FunASR's own server (`funasr-server`, 1.4.16) is the one that made this
module: it lists every model it *could* load on /v1/models, but serves only the one it loaded
(`models_loaded` on its /health; "custom" when started with --model-path). Asked for another
name ("paraformer", our old default) it starts loading that model with its hub's VAD and
punctuation models: offline that takes ~20 s and ends in a 500, on every request. It also runs
inference inside its event loop, one request at a time, so requests sent in parallel only queue
there and time out.

So the adapter asks once: GET /v1/models (every OpenAI-compatible server has it; 404 means
"no list"), and GET /health for FunASR's `models_loaded`. The model name then comes from what
the server says it has, and a name it does not have is a clear error before any audio goes up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("voiceloop.asr")

PREFERRED_MODELS = ("paraformer", "whisper-1")  # when a server lists many and none is chosen
MAX_PARALLEL = 4  # concurrent requests from a batch: enough to keep a GPU server busy


@dataclass
class ServerFacts:
    # /v1/models' ids; None when the server has no list (404).
    models: tuple[str, ...] | None
    # FunASR's server: the models it has loaded (/health); None for any other server.
    loaded: tuple[str, ...] | None
    # Until the server refuses verbose_json (OpenAI's gpt-4o models do, with a 400).
    verbose_json: bool = True

    @property
    def funasr(self) -> bool:
        return self.loaded is not None

    @property
    def parallel(self) -> int:
        """FunASR's server recognises one request at a time: more in flight only wait there."""
        return 1 if self.funasr else MAX_PARALLEL

    def choose_model(self, configured: str | None) -> str:
        """The configured model, if the server has it; otherwise (None) the one it serves.
        Raises LookupError naming what the server has when the configured one is not there."""
        if configured:
            if self.models and configured not in self.models and configured not in (self.loaded or ()):
                raise LookupError(", ".join(self.models[:12]) + (", ..." if len(self.models) > 12 else ""))
            if self.loaded and configured not in self.loaded:
                log.warning(
                    "FunASR's server has loaded %s; asking it for '%s' makes it load that model too "
                    "(from its hub) on the first request. Leave asr.openai.model unset to use the loaded one.",
                    ", ".join(self.loaded),
                    configured,
                )
            return configured
        if self.loaded:
            return self.loaded[0]
        if self.models and len(self.models) == 1:
            return self.models[0]
        for name in PREFERRED_MODELS:
            if self.models is None or name in self.models:
                return name
        assert self.models  # None and empty were handled above
        return self.models[0]


def probe(client: Any, base_url: str, api_key: str, timeout_s: float) -> ServerFacts:
    """Raises the openai client's errors for an unreachable server or a rejected key."""
    import openai

    try:
        models: tuple[str, ...] | None = tuple(m.id for m in client.models.list(timeout=timeout_s).data)
    except openai.APIStatusError as exc:
        if exc.status_code in (401, 403):
            raise
        models = None  # no list here (404), or one the server cannot give: learn by asking
    return ServerFacts(models or None, funasr_loaded(base_url, api_key, timeout_s))


def funasr_loaded(base_url: str, api_key: str, timeout_s: float) -> tuple[str, ...] | None:
    """FunASR's /health lists `models_loaded`; other servers have no /health, an empty one,
    or one without that key."""
    import httpx

    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        response = httpx.get(
            f"{root}/health", headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s
        )
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    loaded = body.get("models_loaded") if isinstance(body, dict) else None
    if not isinstance(loaded, list) or not all(isinstance(name, str) for name in loaded):
        return None
    return tuple(name.split(" (", 1)[0] for name in loaded)  # "fun-asr-nano (vLLM)"
