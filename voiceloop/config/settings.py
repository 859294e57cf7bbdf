"""Settings: one model, nested sections, TOML profiles, `VOICELOOP_...` overrides.

Unknown keys are errors (`extra="forbid"`), because a typo'd key that silently does nothing
is the worst kind of config bug in a program you talk to. `load_settings` turns pydantic's
validation errors into one line per key.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from voiceloop.aec.options import SpeexOptions, WebRtcOptions
from voiceloop.asr.options import (
    OpenAITranscribeOptions,
    ParaformerOptions,
    PocketsphinxOptions,
    Qwen3Options,
)
from voiceloop.config.calibration_file import calibrated_aec, calibration_path
from voiceloop.config.errors import ConfigError, format_validation_error
from voiceloop.config.section import Section
from voiceloop.config.serve_section import AUDIO_UPLOAD_FORMATS, ServeSettings
from voiceloop.config.sources import Without, leaf_paths
from voiceloop.config.stage import StageSection
from voiceloop.config.turn_section import TurnSettings
from voiceloop.config.wake_section import WakeLoopKeys, WakeSettings
from voiceloop.tts.options import EdgeOptions, EspeakOptions

__all__ = [
    "AUDIO_UPLOAD_FORMATS",
    "ConfigError",
    "Section",
    "ServeSettings",
    "Settings",
    "StageSection",
    "format_validation_error",
    "load_settings",
]

# The profiles and scripts ship inside the package, so a plain (non-editable) install has them.
CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"


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
    # Our own voice at full scale on the mic is echo no linear canceller removes: where it clips
    # the mic (judged half a second into a reply and as it ends) the speaker plays this much
    # quieter, step by step (audio/headroom.py); 0 = never.
    headroom_step_db: float = Field(6.0, ge=0, le=20)
    min_volume_db: float = Field(-12.0, ge=-40, le=0, description="the quietest headroom goes")
    room: RoomSettings = RoomSettings()


class AecSettings(StageSection):
    kind: ClassVar[str] = "aec"
    moved: ClassVar[dict[str, tuple[str, ...]]] = {
        "filter_ms": ("speex.filter_ms",),
        "echo_suppress_db": ("speex.echo_suppress_db",),
        "echo_suppress_active_db": ("speex.echo_suppress_active_db",),
        "noise_suppress_db": ("speex.noise_suppress_db",),
        "webrtc_noise_suppression": ("webrtc.noise_suppression",),
    }

    name: str = "none"  # none | speex | webrtc | a plugin's name
    # The device's output-to-input delay, whatever the canceller: the audio backend aligns the
    # reference by it. None = measured from the echo (or saved by `voiceloop calibrate`).
    delay_ms: float | None = None
    # The speaker's clock against the mic's (ppm; `voiceloop calibrate --drift-s 30` saves it):
    # a drift-compensated canceller (`[aec.speex] drift_compensation`) starts from it, so the
    # first reply is cancelled as the later ones are. None = measured from the echo, ~2 s into
    # the first reply.
    drift_ppm: float | None = Field(None, ge=-1000, le=1000)
    speex: SpeexOptions = SpeexOptions()
    webrtc: WebRtcOptions = WebRtcOptions()

    def calibrated(self) -> dict[str, float | None]:
        """The values `voiceloop calibrate` measures, as configured (None: not set)."""
        return {"delay_ms": self.delay_ms, "drift_ppm": self.drift_ppm}


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


class AsrSettings(StageSection):
    kind: ClassVar[str] = "asr"
    moved: ClassVar[dict[str, tuple[str, ...]]] = {
        "model": ("paraformer.model", "pocketsphinx.model", "openai.model"),
        "phrases": ("pocketsphinx.phrases",),
        "grammar": ("pocketsphinx.grammar",),
        "device": ("paraformer.device",),
        "vad_model": ("paraformer.vad_model",),
        "punc_model": ("paraformer.punc_model",),
        "ncpu": ("paraformer.ncpu",),
        "batch_size_s": ("paraformer.batch_size_s",),
        "fp16": ("paraformer.fp16",),
        "base_url": ("openai.base_url",),
        "api_key": ("openai.api_key",),
    }

    name: str = (
        "pocketsphinx"  # pocketsphinx | paraformer | paraformer-onnx | qwen3 | openai | a plugin's name
    )
    language: str = "en"
    # Words to favour (paraformer's SeACo models, openai's prompt); empty = none.
    hotwords: list[str] = []
    timeout_s: float = Field(10.0, gt=0)
    # Live partial text while the user speaks ("2pass": voiceloop/engine/partials.py).
    streaming: bool = False
    streaming_model: str = "paraformer-zh-streaming"  # id or local dir of a streaming Paraformer
    streaming_ncpu: int = Field(1, ge=1, le=64)
    # pytorch: FunASR's model.pt; onnx (int8) / onnx-fp32: funasr-onnx's online model, exported
    # by `voiceloop models export paraformer-zh-streaming --int8` (several times less per chunk).
    streaming_runtime: Literal["pytorch", "onnx", "onnx-fp32"] = "pytorch"
    # The streaming model's chunk: a partial every 600 ms, or every 480 ms (earlier first
    # partial, a little more compute); FunASR's two published settings, [0,10,5] and [0,8,4].
    # Unset: 480 on the ONNX runtimes (the CPU path: with 600 the first partial and the gaps
    # after pauses passed 700 ms here, README), 600 (FunASR's) on PyTorch.
    streaming_chunk_ms: Literal[600, 480] | None = None
    pocketsphinx: PocketsphinxOptions = PocketsphinxOptions()
    paraformer: ParaformerOptions = ParaformerOptions()
    qwen3: Qwen3Options = Qwen3Options()
    openai: OpenAITranscribeOptions = OpenAITranscribeOptions()


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


class TtsSettings(StageSection):
    kind: ClassVar[str] = "tts"
    moved: ClassVar[dict[str, tuple[str, ...]]] = {
        "rate_wpm": ("espeak.rate_wpm",),
        "rate": ("edge.rate",),
        "volume": ("edge.volume",),
        "pitch": ("edge.pitch",),
        "boundary": ("edge.boundary",),
        "connect_timeout_s": ("edge.connect_timeout_s",),
        "first_audio_timeout_s": ("edge.first_audio_timeout_s",),
    }
    gone: ClassVar[dict[str, str]] = {
        "primary": "the first voice is tts.name, the second tts.fallback",
    }

    name: str = "espeak"  # espeak | edge | a plugin's name
    # espeak: a voice such as "en-us" or "cmn"; edge: a service voice such as
    # "zh-CN-XiaoxiaoNeural" (`voiceloop voices --lang zh`). Each maps the other's form.
    voice: str = "en-us"
    timeout_s: float = Field(10.0, gt=0, description="one piece, fallback included")
    # The voice that speaks when the first choice fails, around any voice (None, or the same
    # name as `name` = the piece fails instead).
    fallback: str | None = "espeak"
    fallback_voice: str | None = None  # None = derived from `voice` (zh-CN-… → cmn)
    fallback_retry_s: float = Field(
        60.0, ge=0, description="after a failure, how long the fallback speaks alone"
    )
    espeak: EspeakOptions = EspeakOptions()
    edge: EdgeOptions = EdgeOptions()

    @classmethod
    def check_value(cls, key: str, value: Any) -> str | None:
        if key == "name" and value == "fallback":
            return (
                "tts.name = 'fallback' is gone: name the first voice in tts.name and the second "
                "in tts.fallback (a fallback wraps any voice)"
            )
        return None


class LoopSettings(WakeLoopKeys, Section):
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
    turn: TurnSettings = TurnSettings()
    wake: WakeSettings = WakeSettings()
    loop: LoopSettings = LoopSettings()
    log: LogSettings = LogSettings()
    serve: ServeSettings = ServeSettings()

    # Set per load by `load_settings`; a class attribute because pydantic-settings asks the
    # class, not the instance, for its sources.
    _toml_files: ClassVar[list[Path]] = []
    # Keys (as paths) the environment and the profile do not supply for this load: what
    # `load_settings(replacing=...)` gives instead of merging into them.
    _replaced: ClassVar[list[tuple[str, ...]]] = []

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
        if not cls._replaced:
            return (init_settings, env_settings, toml)
        return (init_settings, Without(env_settings, cls._replaced), Without(toml, cls._replaced))  # type: ignore[return-value]  # a source in all but name

    def masked(self) -> dict[str, Any]:
        """The effective config as plain data, with every secret shown as '**********'."""
        return self.model_dump(mode="json")  # SecretStr dumps masked in json mode


def resolve_profile(config: str | Path | None) -> Path | None:
    """A path, or a profile name from `voiceloop/configs/` (`offline` → voiceloop/configs/offline.toml)."""
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


def load_settings(
    config: str | Path | None = None, *, replacing: dict[str, Any] | None = None, **overrides: Any
) -> Settings:
    """Loads a profile (plus environment overrides, plus a real device's saved calibration);
    raises ConfigError with one line per key.

    `overrides` are sections as dicts (`asr={"name": "openai"}`), merged over the profile
    and the environment: this is how a command's flags reach the settings, rather than
    assignments after loading. `replacing` is the same but its keys replace whatever the
    profile or the environment set, tables included (`{"llm": {"backends": {}}}` empties it)."""
    import tomllib

    path = resolve_profile(config)
    if path is not None:
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    Settings._toml_files = [path] if path is not None else []
    if replacing:
        Settings._replaced = leaf_paths(replacing)
        overrides = merged(overrides, replacing)
    try:
        settings = Settings(**overrides)
        # `voiceloop calibrate` saves the measured delay (and drift) for real devices; used unless set.
        saved = user_calibration(settings)
        if saved:
            settings = Settings(**merged(overrides, {"aec": saved}))
        return settings
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from None
    finally:
        Settings._toml_files = []
        Settings._replaced = []


def user_calibration(settings: Settings) -> dict[str, float]:
    """The calibration file's `[aec]` values this device should use (`calibrated_aec`), each
    held to the bounds the config's own is: a value out of them (a hand-edited or corrupt file)
    is ignored with a warning naming the file, rather than failing the profile it never was in."""
    usable = {}
    for key, value in calibrated_aec(settings.audio.backend, settings.aec.calibrated()).items():
        try:
            AecSettings(**{key: value})
        except ValidationError:
            logging.getLogger("voiceloop.config").warning(
                "ignoring %s = %s in the calibration file %s: out of range; run `voiceloop calibrate` again",
                key,
                value,
                calibration_path(),
            )
            continue
        usable[key] = value
    return usable


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base`, nested dicts merged key by key (overrides for `load_settings`)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
