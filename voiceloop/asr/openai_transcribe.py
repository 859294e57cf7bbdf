"""The `openai` recogniser: any OpenAI-compatible `/v1/audio/transcriptions` server.

This is how a fleet of kiosks shares one GPU box: FunASR's own server (`funasr-server`), vLLM,
or OpenAI itself. Audio goes up as 16 kHz 16-bit WAV (half the bytes of float, lossless for a
microphone signal).

Servers differ, so before the first transcription the adapter learns what this one has
(`server_probe.py`: its models, and FunASR's loaded model), and it remembers how the server
answers: OpenAI's gpt-4o models and some proxies refuse `verbose_json` (no word timestamps
there), so the first refusal switches this client to plain `json` for good.
Hotwords travel as the `prompt`, the API's standard way to bias spelling; unknown extra form
fields are not sent, since OpenAI rejects them. As in the chat adapter, the SDK's retries are
off (the loop decides what to do) and error messages use our own words, never the server's body
(servers echo API keys back).

Timeouts: a request may take `timeout_s` plus the audio's own length (a slow shared box
answers in real time at worst); the first request to a server, and the questions asked of it
before, get `first_request_timeout_s` (a server may import or load its model on first use).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceloop.asr.base import AsrError, Transcription, iso_language
from voiceloop.asr.qwen3_languages import CODES
from voiceloop.asr.server_probe import ServerFacts, probe
from voiceloop.audio.frames import SAMPLE_RATE

if TYPE_CHECKING:
    from voiceloop.asr.options import OpenAITranscribeOptions
    from voiceloop.config.settings import AsrSettings


class OpenAITranscriber:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str | None = None,
        api_key: str = "not-needed",
        language: str | None = None,
        hotwords: Sequence[str] = (),
        timeout_s: float = 30.0,
        connect_timeout_s: float = 3.0,
        first_request_timeout_s: float = 120.0,
    ) -> None:
        import openai

        from voiceloop.llm.openai_chat import without_credentials

        self.configured_model = model or None  # None: the model the server serves
        self.language = iso_language(language)  # None: the server detects it
        self.hotwords = [w.strip() for w in hotwords if w.strip()]
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.first_request_timeout_s = first_request_timeout_s
        self.base_url = base_url
        self.api_key = api_key or "not-needed"
        self.shown_url = without_credentials(base_url)
        self._facts: ServerFacts | None = None
        self._model: str | None = None
        self._answered = False  # the server has answered one transcription
        self._lock = threading.Lock()
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=self.api_key,
            max_retries=0,
            timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
        )

    @property
    def model(self) -> str:
        """The model asked for: known once the server has been asked what it has."""
        return self._model or self.configured_model or "(not yet asked)"

    @property
    def description(self) -> str:
        return f"openai {self.model} at {self.shown_url}"

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
        facts = self._server()
        response = self._request(facts, wav_bytes(audio), words, audio_s)
        text, timestamps, heard = _parse(response)
        elapsed_s = time.perf_counter() - start
        return Transcription(text.strip(), audio_s, elapsed_s, timestamps, language=heard or self.language)

    def transcribe_batch(
        self, audios: Sequence[np.ndarray], hotwords: list[str] | None = None
    ) -> list[Transcription]:
        """Clips sent concurrently where the server takes them so (a GPU server batches
        requests it has in flight); one by one to a server that queues them anyway."""
        parallel = min(self._server().parallel, len(audios))
        if parallel < 2:
            return [self.transcribe(a, hotwords) for a in audios]
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            return list(pool.map(lambda a: self.transcribe(a, hotwords), audios))

    def _server(self) -> ServerFacts:
        """What the server has, asked once (a batch's threads wait for the one asking)."""
        with self._lock:
            if self._facts is None:
                try:
                    facts = probe(self._client, self.base_url, self.api_key, self.first_request_timeout_s)
                except Exception as exc:
                    raise AsrError(self.explain(exc)) from None
                try:
                    self._model = facts.choose_model(self.configured_model)
                except LookupError as listed:
                    where = f"the transcription server at {self.shown_url}"
                    raise AsrError(
                        f"{where} has no model '{self.configured_model}' (it lists: {listed}); "
                        "set asr.openai.model to one of those, or leave it unset to use the server's"
                    ) from None
                self._facts = facts
            return self._facts

    def _request(self, facts: ServerFacts, body: bytes, hotwords: list[str], audio_s: float) -> Any:
        import openai

        limit_s = (self.timeout_s if self._answered else self.first_request_timeout_s) + audio_s
        params: dict[str, Any] = {
            "file": ("audio.wav", body, "audio/wav"),
            "model": self._model,
            "timeout": openai.Timeout(limit_s, connect=self.connect_timeout_s),
        }
        if self.language:
            params["language"] = self.language
        if hotwords:
            params["prompt"] = " ".join(hotwords)
        create = self._client.audio.transcriptions.create
        try:
            if not facts.verbose_json:
                answer = create(**params, response_format="json")
            else:
                try:
                    answer = create(
                        **params, response_format="verbose_json", timestamp_granularities=["word"]
                    )
                except openai.BadRequestError:
                    answer = create(**params, response_format="json")
                    facts.verbose_json = False  # plain json works where verbose_json did not
        except Exception as exc:
            if isinstance(exc, openai.NotFoundError):
                with self._lock:
                    self._facts = None  # the server changed under us: ask it again next time
            raise AsrError(self.explain(exc)) from None
        self._answered = True
        return answer

    def explain(self, exc: Exception) -> str:
        """One line from our own words only (see module doc)."""
        import openai

        where = f"the transcription server at {self.shown_url}"
        if isinstance(exc, openai.APITimeoutError):
            return f"{where} did not answer in time (asr.openai.timeout_s, first_request_timeout_s)"
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


def _parse(response: Any) -> tuple[str, list[tuple[str, float, float]], str | None]:
    """Text, word timestamps and the language from a json / verbose_json answer (or a bare
    string). verbose_json names the language as a code ("zh") or a word ("english", vLLM's
    Qwen3-ASR "Chinese"): both come back as the code."""
    if isinstance(response, str):
        return response, [], None
    data = response.model_dump() if hasattr(response, "model_dump") else dict(response)
    words = data.get("words") or [w for s in data.get("segments") or [] for w in (s.get("words") or [])]
    stamps = []
    for word in words:
        if isinstance(word, dict) and {"word", "start", "end"} <= word.keys():
            stamps.append((str(word["word"]).strip(), float(word["start"]), float(word["end"])))
    named = str(data.get("language") or "").strip().lower()
    return str(data.get("text") or ""), stamps, iso_language(CODES.get(named, named)) if named else None


def create(options: OpenAITranscribeOptions, asr: AsrSettings, **kwargs: Any) -> OpenAITranscriber:
    """From `[asr.openai]`, with the shared language and hotwords; keyword arguments override."""
    settings: dict[str, Any] = {
        "base_url": options.base_url,
        "model": options.model,
        "api_key": options.api_key.get_secret_value(),
        "language": asr.language,
        "hotwords": list(asr.hotwords),
        "timeout_s": options.timeout_s,
        "connect_timeout_s": options.connect_timeout_s,
        "first_request_timeout_s": options.first_request_timeout_s,
    }
    return OpenAITranscriber(**{**settings, **kwargs})
