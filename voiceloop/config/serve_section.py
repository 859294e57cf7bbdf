"""`[serve]`: the limits and trust rules of `voiceloop serve`, apart from the loop's sections."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from voiceloop.config.section import Section

AUDIO_UPLOAD_FORMATS = ("wav", "flac", "mp3", "ogg", "oga", "opus", "m4a", "aac", "mp4", "webm", "amr")


class ServeSettings(Section):
    """`voiceloop serve`: limits that keep one shared model answering under load."""

    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    # Required to bind beyond localhost; checked on every request and websocket when set.
    token: SecretStr | None = None
    # Names the server answers to besides the address it is bound to (and, on a loopback or
    # wildcard bind, this machine's own names): a Host header naming anything else is refused,
    # which is what stops DNS rebinding. "*" allows any.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Pages on other origins allowed to call the API and open its websockets (e.g.
    # "https://kiosk.example"); the server's own page is always allowed. "*" allows any.
    allowed_origins: list[str] = Field(default_factory=list)
    # How long an idle keep-alive connection stays open. It must outlast the clients' own idle
    # expiry (httpx and the openai client: 5 s, aiohttp: 15 s): when both are equal, a client
    # reusing a connection just as the server closes it gets a dropped request.
    keep_alive_s: float = Field(75.0, gt=0, le=3600)
    allowed_dir: Path | None = Field(None, description="POST /asr {filename}: only files under here")
    max_upload_mb: float = Field(50.0, gt=0)
    max_audio_s: float = Field(600.0, gt=0)
    formats: list[str] = Field(default_factory=lambda: list(AUDIO_UPLOAD_FORMATS))
    workers: int = Field(1, ge=1, le=16, description="recognitions run at once on the shared model")
    batch_max: int = Field(8, ge=1, le=64, description="queued requests recognised in one batch")
    queue: int = Field(64, ge=0, description="requests that may wait; beyond that: 503")
    tts_concurrency: int = Field(2, ge=1, le=32)

    @field_validator("token")
    @classmethod
    def _token_not_blank(cls, token: SecretStr | None) -> SecretStr | None:
        # An empty VOICELOOP_SERVE__TOKEN= must not read as "no token": that would turn the
        # gate off on exactly the machine where someone meant to turn it on.
        if token is not None and not token.get_secret_value().strip():
            raise ValueError("is empty: set a real token (16+ characters) or remove the key")
        if token is not None and token.get_secret_value() != token.get_secret_value().strip():
            raise ValueError("has spaces around it: remove them")
        return token
