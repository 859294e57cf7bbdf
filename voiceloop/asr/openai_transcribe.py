"""The `openai` recogniser: any OpenAI-compatible `/v1/audio/transcriptions` server.

This is how a fleet of kiosks shares one GPU box: FunASR's own server (`funasr-server`,
model "paraformer" = SeACo-Paraformer + fsmn-vad + ct-punc), vLLM, or OpenAI itself. Audio goes
up as 16 kHz 16-bit WAV (half the bytes of float, lossless for a microphone signal).

Servers differ: OpenAI's gpt-4o models and some proxies refuse `verbose_json` (no word
timestamps there), so the first refusal switches this client to plain `json` for good.
Hotwords travel as the `prompt`, the API's standard way to bias spelling; unknown extra form
fields are not sent, since OpenAI rejects them. As in the chat adapter, the SDK's retries are
off (the loop decides what to do) and error messages use our own words, never the server's body
(servers echo API keys back).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceloop.asr.base import AsrError, Transcription
from voiceloop.asr.qwen3_languages import CODES
from voiceloop.audio.frames import SAMPLE_RATE

if TYPE_CHECKING:
    from voiceloop.asr.options import OpenAITranscribeOptions
    from voiceloop.config.settings import AsrSettings

DEFAULT_MODEL = "paraformer"  # FunASR's server name for SeACo-Paraformer + VAD + punctuation
MAX_PARALLEL = 4  # concurrent requests from transcribe_batch: enough to keep a GPU server busy


class OpenAITranscriber:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str = DEFAULT_MODEL,
        api_key: str = "not-needed",
        language: str | None = None,
        hotwords: Sequence[str] = (),
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
    ) -> None:
        import openai

        from voiceloop.llm.openai_chat import without_credentials

        self.model = model
        self.language = _iso_language(language)
        self.hotwords = [w.strip() for w in hotwords if w.strip()]
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.shown_url = without_credentials(base_url)
        self.description = f"openai {model} at {self.shown_url}"
        self._verbose = True  # until the server refuses verbose_json
        self._lock = threading.Lock()
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            max_retries=0,
            timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
        )

    def warm_up(self) -> None:
        """Half a second of quiet noise: proves the server, the model name and the key work
        before the first turn, instead of failing in the middle of one."""
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE // 2).astype(np.float32) * 0.003
        self.transcribe(noise)

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcription:
        """`hotwords=None` uses the configured ones; `[]` means none for this call."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        audio_s = len(audio) / SAMPLE_RATE
        words = self.hotwords if hotwords is None else [w.strip() for w in hotwords if w.strip()]
        start = time.perf_counter()
        body = wav_bytes(audio)
        response = self._request(body, words, audio_s)
        text, timestamps, heard = _parse(response)
        return Transcription(text.strip(), audio_s, time.perf_counter() - start, timestamps, language=heard)

    def transcribe_batch(
        self, audios: Sequence[np.ndarray], hotwords: list[str] | None = None
    ) -> list[Transcription]:
        """Clips sent concurrently (a GPU server batches requests it has in flight)."""
        if len(audios) < 2:
            return [self.transcribe(a, hotwords) for a in audios]
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(audios))) as pool:
            return list(pool.map(lambda a: self.transcribe(a, hotwords), audios))

    def _request(self, body: bytes, hotwords: list[str], audio_s: float) -> Any:
        import openai

        params: dict[str, Any] = {
            "file": ("audio.wav", body, "audio/wav"),
            "model": self.model,
            # A slow server still answers within real time plus the configured margin.
            "timeout": openai.Timeout(self.timeout_s + audio_s, connect=self.connect_timeout_s),
        }
        if self.language:
            params["language"] = self.language
        if hotwords:
            params["prompt"] = " ".join(hotwords)
        create = self._client.audio.transcriptions.create
        try:
            if not self._verbose:
                return create(**params, response_format="json")
            try:
                return create(**params, response_format="verbose_json", timestamp_granularities=["word"])
            except openai.BadRequestError:
                answer = create(**params, response_format="json")
                with self._lock:
                    self._verbose = False  # plain json works where verbose_json did not
                return answer
        except Exception as exc:
            raise AsrError(self.explain(exc)) from None

    def explain(self, exc: Exception) -> str:
        """One line from our own words only (see module doc)."""
        import openai

        where = f"the transcription server at {self.shown_url}"
        if isinstance(exc, openai.APITimeoutError):
            return f"{where} did not answer in time"
        if isinstance(exc, openai.APIConnectionError):
            return f"cannot reach {where}"
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status == 401:
                return f"{where} rejected the API key (check VOICELOOP_ASR__OPENAI__API_KEY or asr.openai.api_key)"
            if status == 404:
                return f"{where} has no model '{self.model}' (or no /audio/transcriptions)"
            if status == 429:
                return f"{where} is rate limited (HTTP 429)"
            if status >= 500:
                return f"{where} failed (HTTP {status})"
            return f"{where} refused the request (HTTP {status})"
        return f"transcription request failed ({type(exc).__name__})"

    def close(self) -> None:
        self._client.close()


def wav_bytes(audio: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _iso_language(language: str | None) -> str | None:
    """'zh', 'en-US' → ISO-639-1 ('zh', 'en'); 'auto' or empty → let the server detect."""
    if not language or language.lower() == "auto":
        return None
    return language.replace("_", "-").split("-", 1)[0].lower()


def _parse(response: Any) -> tuple[str, list[tuple[str, float, float]], str]:
    """Text, word timestamps and the language from a json / verbose_json answer (or a bare
    string). verbose_json names the language as a code ("zh") or a word ("english", vLLM's
    Qwen3-ASR "Chinese"): both come back as the code."""
    if isinstance(response, str):
        return response, [], ""
    data = response.model_dump() if hasattr(response, "model_dump") else dict(response)
    words = data.get("words") or [w for s in data.get("segments") or [] for w in (s.get("words") or [])]
    stamps = []
    for word in words:
        if isinstance(word, dict) and {"word", "start", "end"} <= word.keys():
            stamps.append((str(word["word"]).strip(), float(word["start"]), float(word["end"])))
    named = str(data.get("language") or "").strip().lower()
    return str(data.get("text") or ""), stamps, CODES.get(named, named)


def create(options: OpenAITranscribeOptions, asr: AsrSettings, **kwargs: Any) -> OpenAITranscriber:
    """From `[asr.openai]`, with the shared language, hotwords and timeout; keyword arguments override."""
    settings: dict[str, Any] = {
        "base_url": options.base_url,
        "model": options.model or DEFAULT_MODEL,
        "api_key": options.api_key.get_secret_value(),
        "language": asr.language,
        "hotwords": list(asr.hotwords),
        "timeout_s": asr.timeout_s,
    }
    return OpenAITranscriber(**{**settings, **kwargs})
