"""Settings: one model, nested sections, TOML profiles, `VOICELOOP_...` overrides.

Unknown keys are errors (`extra="forbid"`), because a typo'd key that silently does nothing
is the worst kind of config bug in a program you talk to. `load_settings` turns pydantic's
validation errors into one line per key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RoomSettings(Section):
    """The virtual room: how the assistant's own voice gets back into the mic."""

    echo_delay_ms: float = Field(30.0, ge=0, le=500)
    # Echo level at the mic relative to the user's voice (both voices play at the same
    # level, so 0 = the assistant is heard as loud as the user, +6 = louder, as in a kiosk).
    echo_gain_db: float = Field(-6.0, ge=-60, le=12)
    # The output-to-input delay the device reports to the echo canceller; None = the true
    # echo delay (a calibrated device). Set it wrong to model an uncalibrated one.
    reported_delay_ms: float | None = Field(None, ge=0, le=500)
    rt60_s: float = Field(0.3, ge=0, le=2.0)
    noise_dbfs: float = Field(-55.0, le=0)
    soft_clip: bool = False
    speed: float = Field(1.0, gt=0, description="1.0 = real time; >1 runs faster")
    seed: int = 7


class AudioSettings(Section):
    backend: str = "virtual"  # virtual | sounddevice | pyaudio
    # A device by index or by (part of) its name, as `voiceloop devices` lists it; None = the
    # system default.
    input_device: str | int | None = None
    output_device: str | int | None = None
    # Real devices open at their own rate (many refuse 16 kHz) and are resampled with soxr;
    # set a rate only to force one.
    sample_rate: int | None = Field(None, ge=8000, le=384_000, description="None = the device's own rate")
    block_ms: int = Field(10, ge=5, le=40, description="audio callback period")
    # sounddevice: an input and an output stream, or one full-duplex stream (PyAudio: always
    # separate). On PulseAudio the full-duplex stream slipped samples (its echo delay moved by
    # 6-9 ms in its first seconds; speex 8-16 dB) while separate streams held it to 0.1 ms over
    # 60 s (speex 21-43 dB): scripts/bench_audio.py measures both. "full" suits raw ALSA cards.
    duplex: Literal["separate", "full"] = "separate"
    # PortAudio's suggested latency: "high" is what PulseAudio/PipeWire run reliably in full
    # duplex; "low" or seconds for a card you trust.
    latency: Literal["low", "high"] | float = "high"
    # Speaker audio queued ahead of the callback. Callbacks arrive in bursts (a sound server
    # hands over several blocks at once), so this must cover a burst or the speaker underruns;
    # it adds to the reply latency and to how long a barge-in takes to silence the speaker.
    buffer_ms: int = Field(60, ge=10, le=1000)
    # soxr quality: LQ is flat to 6 kHz of the 16 kHz pipeline and adds ~6 ms each way; HQ is
    # flat to 7.6 kHz and adds ~21 ms each way, in bursts of 30 ms.
    resample_quality: Literal["LQ", "MQ", "HQ", "VHQ"] = "LQ"
    # The echo canceller's reference is sent this much ahead of the measured delay: a device's
    # delay wanders by ~±10 ms between runs, and speex fails outright when the reference is late
    # but tolerates it early by up to about filter length - 100 ms.
    reference_lead_ms: float = Field(25.0, ge=0, le=200)
    stall_timeout_s: float = Field(2.0, gt=0, description="no audio for this long = the device is gone")
    room: RoomSettings = RoomSettings()


class AecSettings(Section):
    name: str = "none"  # none | speex | webrtc
    # 256 ms covers the reverberant tail of living rooms (RT60 0.45-0.6 s): with 128 ms the
    # unmodelled tail at the end of each reply was loud enough to sound like a barge-in.
    filter_ms: int = Field(256, ge=16, le=1000)
    delay_ms: float | None = None  # output-to-input delay; None = from the audio backend
    # speex: the linear filter alone leaves echo that VAD still hears, so a suppressor follows
    # it; these cap its attenuation (dB). Noise and residual echo share one gain floor: 0 dB of
    # noise suppression also weakens echo suppression (see voiceloop/aec/speex.py).
    echo_suppress_db: int = Field(-40, ge=-90, le=0, description="residual echo, user silent")
    echo_suppress_active_db: int = Field(-15, ge=-90, le=0, description="residual echo in double talk")
    noise_suppress_db: int = Field(-25, ge=-90, le=0)
    # webrtc (AEC3) suppresses residual echo without it; noise suppression cleans the user's
    # voice for VAD and ASR at the cost of 6 ms more output delay. (No high-pass switch: with
    # echo cancellation on, WebRTC runs its high-pass filter whatever it is told.)
    webrtc_noise_suppression: bool = True
    # speex: resample the reference onto the mic's clock (voiceloop/aec/drift.py): separate
    # speaker and mic crystals 20-120 ppm apart otherwise let the echo slide past the filter.
    drift_compensation: bool = False


class VadSettings(Section):
    name: str = "silero"
    threshold: float = Field(0.5, gt=0, lt=1)
    neg_threshold: float = Field(0.35, gt=0, lt=1)
    start_ms: int = Field(64, ge=0, le=1000, description="voiced time before an onset counts")
    stop_ms: int = Field(200, ge=32, le=3000, description="silence that ends an utterance")
    speculate_ms: int = Field(
        100, ge=0, le=3000, description="start ASR after this much silence, inside the stop window; 0 = off"
    )
    preroll_ms: int = Field(300, ge=0, le=2000)
    max_utterance_s: float = Field(15.0, gt=1, le=120)


class AsrSettings(Section):
    name: str = "pocketsphinx"  # pocketsphinx | paraformer | openai
    language: str = "en"
    # paraformer: a model id ('paraformer-zh', 'iic/...') or a local dir; pocketsphinx: a model
    # dir; openai: the server's model name (default 'paraformer', FunASR's server name).
    model: str | None = None
    phrases: list[str] = []  # command-style use: restrict pocketsphinx to these phrases
    grammar: Path | None = None  # or a JSGF grammar file
    # paraformer (SeACo models) and openai: words to favour. An empty list means none.
    hotwords: list[str] = []
    device: str = "auto"  # paraformer: auto (first CUDA device, else CPU) | cpu | cuda | cuda:N
    timeout_s: float = Field(10.0, gt=0)
    # paraformer only. VAD splits long audio (needed for files over ~60 s; a voice turn is
    # already one utterance); punctuation restores ，。？ in Chinese and English text.
    vad_model: str | None = None  # e.g. "fsmn-vad"
    punc_model: str | None = None  # e.g. "ct-punc"
    ncpu: int | None = Field(
        None, ge=1, le=256, description="CPU threads; None = all cores but one, at most 4"
    )
    batch_size_s: int = Field(300, ge=1, description="seconds of audio per GPU batch (with a VAD)")
    fp16: bool | None = Field(None, description="half precision; None = on for CUDA, off on CPU")
    # openai: an OpenAI-compatible /v1/audio/transcriptions server (FunASR's, vLLM, OpenAI).
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: SecretStr = SecretStr("not-needed")


class BackendProfile(Section):
    """One named LLM backend (`[llm.backends.NAME]`); unset fields inherit from `[llm]`."""

    adapter: str | None = None  # openai | echo | a plugin's name; default: llm.name
    base_url: str | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(None, description="read the key from this environment variable")
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0)
    connect_timeout_s: float | None = Field(None, gt=0)
    first_token_timeout_s: float | None = Field(None, gt=0)
    timeout_s: float | None = Field(None, gt=0)
    extra_body: dict[str, Any] | None = None
    aliases: list[str] = []  # other names it answers to when switched by voice


class LlmSettings(Section):
    name: str = "openai"  # openai | echo
    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = "qwen2.5:3b"
    api_key: SecretStr = SecretStr("not-needed")
    api_key_env: str | None = Field(None, description="read the key from this environment variable")
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(256, gt=0)
    extra_body: dict[str, Any] = {}  # sent as-is with every request (e.g. vLLM's sampling options)
    retries: int = Field(2, ge=0, le=5, description="429/5xx retries, only before the first token")
    backends: dict[str, BackendProfile] = {}
    default: str | None = Field(None, description="the backend profile a session starts with")
    switch_phrases: list[str] = ["switch to {name}", "change to {name}", "切换到{name}", "换成{name}"]
    which_phrases: list[str] = ["which model are you", "what model are you", "你是什么模型", "你是哪个模型"]
    history_tokens: int = Field(1500, ge=0, description="rough token budget for past exchanges")
    system_prompt: str = (
        "You are a helpful voice assistant. Your replies are spoken aloud: answer in one to "
        "three short sentences of plain conversational text, with no markdown, lists, code or "
        "emoji. Reply in the language the user speaks."
    )
    history_turns: int = Field(8, ge=0, description="past user/assistant exchanges kept")
    connect_timeout_s: float = Field(3.0, gt=0)
    first_token_timeout_s: float = Field(15.0, gt=0)
    timeout_s: float = Field(60.0, gt=0, description="the whole reply")
    fallback_to_echo: bool = Field(
        True, description="demo only: use the echo backend when the endpoint is unreachable"
    )


class TtsSettings(Section):
    name: str = "espeak"  # espeak | edge | fallback
    # espeak: a voice such as "en-us" or "cmn"; edge: a service voice such as
    # "zh-CN-XiaoxiaoNeural" (`voiceloop voices --lang zh`). Each maps the other's form.
    voice: str = "en-us"
    rate_wpm: int = Field(175, ge=80, le=450)  # espeak's speaking rate
    timeout_s: float = Field(10.0, gt=0, description="one piece, fallback included")
    # Edge-TTS prosody, in the service's own notation.
    rate: str = Field("+0%", pattern=r"^[+-]\d+%$")
    volume: str = Field("+0%", pattern=r"^[+-]\d+%$")
    pitch: str = Field("+0Hz", pattern=r"^[+-]\d+Hz$")
    boundary: Literal["word", "sentence"] = "word"  # timing events kept per piece (barge-in)
    connect_timeout_s: float = Field(3.0, gt=0, description="DNS + TCP + TLS to the service")
    first_audio_timeout_s: float = Field(
        3.0, gt=0, description="connected to first audio; also the longest gap mid-stream"
    )
    # The voice that speaks when the first choice fails (None = the piece fails instead).
    fallback: str | None = "espeak"
    fallback_voice: str | None = None  # None = derived from `voice` (zh-CN-… → cmn)
    fallback_retry_s: float = Field(
        60.0, ge=0, description="after a failure, how long the fallback speaks alone"
    )
    primary: str = "edge"  # name = "fallback": the first choice (the second is `fallback`)


class LoopSettings(Section):
    barge_in_min_ms: int = Field(250, ge=0, le=3000)
    barge_in_warmup_min_ms: int = Field(
        1500, ge=0, le=10_000, description="while the echo canceller is still converging"
    )
    greeting: str = Field("Hello, I am listening.", description="spoken at start; empty for none")
    half_duplex: bool = False
    watchdog_s: float = Field(30.0, gt=0, description="longest wait with no progress")
    first_piece_min_chars: int = Field(4, ge=1, description="first piece may end at a comma after this")
    first_piece_max_words: int = Field(8, ge=0, description="...or after this many words; 0 = never")
    speak_errors: bool = True


class LogSettings(Section):
    dir: Path = Path("runs")
    level: Literal["debug", "info", "warning", "error"] = "info"
    record_wav: bool = True


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VOICELOOP_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    audio: AudioSettings = AudioSettings()
    aec: AecSettings = AecSettings()
    vad: VadSettings = VadSettings()
    asr: AsrSettings = AsrSettings()
    llm: LlmSettings = LlmSettings()
    tts: TtsSettings = TtsSettings()
    loop: LoopSettings = LoopSettings()
    log: LogSettings = LogSettings()
    serve: ServeSettings = ServeSettings()

    # Set per load by `load_settings`; a class attribute because pydantic-settings asks the
    # class, not the instance, for its sources.
    _toml_files: ClassVar[list[Path]] = []

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Priority: explicit arguments, then environment, then the TOML profile(s).
        toml = TomlConfigSettingsSource(settings_cls, toml_file=list(cls._toml_files))
        return (init_settings, env_settings, toml)

    def masked(self) -> dict[str, Any]:
        """The effective config as plain data, with every secret shown as '**********'."""
        return self.model_dump(mode="json")  # SecretStr dumps masked in json mode


class ConfigError(ValueError):
    """A config file or value is wrong; str() is one line per problem, naming the key."""


def resolve_profile(config: str | Path | None) -> Path | None:
    """A path, or a profile name from `configs/` (`offline` → configs/offline.toml)."""
    if config is None:
        env = os.environ.get("VOICELOOP_CONFIG")
        if not env:
            return None
        config = env
    path = Path(config)
    if path.exists():
        return path
    named = CONFIGS_DIR / f"{config}.toml"
    if named.exists():
        return named
    raise ConfigError(f"config file not found: {config} (nor a profile named {named.name})")


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Loads a profile (plus environment overrides); raises ConfigError with one line per key."""
    import tomllib

    path = resolve_profile(config)
    if path is not None:
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    Settings._toml_files = [path] if path is not None else []
    try:
        from voiceloop.audio.calibration import apply_user_calibration

        # `voiceloop calibrate` saves the measured delay for real devices; used unless set.
        return apply_user_calibration(Settings(**overrides))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from None
    finally:
        Settings._toml_files = []


# Keys whose values are never echoed back in an error, even a wrong one.
SECRET_KEYS = frozenset({"token", "api_key"})


def format_validation_error(exc: ValidationError, path: Path | None) -> str:
    where = f"{path}: " if path else ""
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"{where}unknown config key '{key}'")
        else:
            given = error.get("input")
            secret = any(part in SECRET_KEYS for part in error["loc"])
            shown = "" if secret or isinstance(given, (dict, list)) or given is None else f" (got {given!r})"
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"{where}bad value for '{key}': {message}{shown}")
    return "\n".join(lines)
