"""The `openai` adapter: any OpenAI-compatible /chat/completions endpoint (OpenAI, Ollama,
llama.cpp, vLLM, LM Studio).

The SDK's retries are off: a voice turn cannot sit through back-off, and the engine decides
what to say instead. The SDK's read timeout applies per socket read, so a server that sends
headers and then stalls, or drips tokens forever, never trips it; the time-to-first-token and
whole-reply deadlines are therefore enforced here. Error messages are built from our own words
only, never from the exception or the server's body, because servers echo the API key back
(OpenAI's 401 message quotes part of it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import httpx2
import openai
import tenacity
from openai import AsyncStream
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from voiceloop.llm.base import ChatMessage, LlmError

if TYPE_CHECKING:
    from voiceloop.config.settings import LlmSettings

CHECK_TIMEOUT_S = 2.0

T = TypeVar("T")


class OpenAIChat:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str,
        temperature: float = 0.7,
        max_tokens: int = 256,
        connect_timeout_s: float = 3.0,
        first_token_timeout_s: float = 15.0,
        timeout_s: float = 60.0,
        extra_body: dict[str, Any] | None = None,
        retries: int = 2,
        key_hint: str = "VOICELOOP_LLM__API_KEY",
    ) -> None:
        self.model = model
        self.extra_body = extra_body or None
        self.retries = retries
        self.key_hint = key_hint
        self.shown_url = without_credentials(base_url)
        self.description = f"openai {model} at {self.shown_url}"
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.first_token_timeout_s = first_token_timeout_s
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",  # the SDK refuses an empty key; local servers need none
            max_retries=0,
            # openai.Timeout is the SDK's own httpx2.Timeout (openai 3.x no longer uses httpx).
            timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
        )

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        """Deltas of the reply; the deadlines run on wall time from the call, not per read."""
        now = asyncio.get_running_loop().time()
        reply_deadline = now + self.timeout_s
        first_deadline = min(now + self.first_token_timeout_s, reply_deadline)
        chunks = await self._guard(self._open_with_retries(messages), first_deadline)
        answered = False
        try:
            while True:
                deadline = reply_deadline if answered else first_deadline
                chunk = await self._guard(anext(chunks, None), deadline, reading=True, answered=answered)
                if chunk is None:
                    return
                delta = content_of(chunk)
                if delta:
                    answered = True
                    yield delta
        finally:
            await chunks.close()

    async def _open_with_retries(self, messages: list[ChatMessage]) -> AsyncStream[ChatCompletionChunk]:
        """429s and 5xx are retried with a short back-off, but only here, before the first
        token: once words have been spoken a retry would start the reply over. The caller's
        first-token deadline still bounds the whole attempt."""
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=tenacity.wait_exponential(multiplier=0.2, max=1.0),
            retry=tenacity.retry_if_exception(is_retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._open(messages)
        raise AssertionError("unreachable: tenacity reraises the last failure")

    def _open(self, messages: list[ChatMessage]) -> Awaitable[AsyncStream[ChatCompletionChunk]]:
        return self._client.chat.completions.create(
            model=self.model,
            messages=cast("list[ChatCompletionMessageParam]", [m.as_dict() for m in messages]),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stream=True,
            extra_body=self.extra_body,
        )

    async def _guard(
        self, step: Awaitable[T], deadline: float, *, reading: bool = False, answered: bool = False
    ) -> T:
        """Awaits one step of a request, turning every failure into a speakable LlmError.

        `reading`: the response has started, so a dropped connection means a cut-off reply.

        Only the await is under the deadline, never the consumer's code between deltas: a
        timeout scope around a `yield` would cancel whatever the consumer was doing.
        """
        try:
            async with asyncio.timeout_at(deadline):
                return await step
        except TimeoutError as exc:
            raise LlmError(self._timeout_message(answered)) from exc
        except Exception as exc:
            raise LlmError(self.explain(exc, reading=reading)) from exc

    def _timeout_message(self, answered: bool) -> str:
        if answered:
            return f"the language model did not finish its reply within {self.timeout_s:g} s"
        waited = min(self.first_token_timeout_s, self.timeout_s)
        return f"the language model did not answer within {waited:g} s"

    def explain(self, exc: Exception, *, reading: bool = False) -> str:
        """One speakable line for an SDK failure, from our own words only (see module doc)."""
        if isinstance(exc, openai.APITimeoutError):
            if isinstance(exc.__cause__, httpx2.ConnectTimeout):
                return f"cannot reach the language model at {self.shown_url}"
            return f"the language model did not answer within {self.timeout_s:g} s"
        if isinstance(exc, openai.APIConnectionError) and not reading:
            return f"cannot reach the language model at {self.shown_url}"
        if isinstance(exc, openai.APIStatusError):
            return self._status_message(exc.status_code)
        if isinstance(exc, (openai.APIError, json.JSONDecodeError)):
            return "the reply was cut off"
        return f"the language model call failed ({type(exc).__name__})"

    def _status_message(self, status: int) -> str:
        if status == 401:
            return f"the language model rejected the API key (check {self.key_hint})"
        if status == 404:
            return f"model '{self.model}' not found at {self.shown_url}"
        if status == 429:
            return "the language model is rate limited (HTTP 429); try again in a moment"
        if status >= 500:
            return f"the language model failed (HTTP {status})"
        return f"the language model refused the request (HTTP {status})"

    async def check(self) -> str | None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                # Keep the configured connect timeout, so a short one still says "cannot reach".
                timeout = openai.Timeout(CHECK_TIMEOUT_S, connect=self.connect_timeout_s)
                await self._client.models.list(timeout=timeout)
        except TimeoutError:
            return f"the language model did not answer within {CHECK_TIMEOUT_S:g} s"
        except openai.NotFoundError:
            return f"no OpenAI-compatible API at {self.shown_url} (GET /models: HTTP 404)"
        except Exception as exc:
            return self.explain(exc)
        return None

    async def aclose(self) -> None:
        await self._client.close()


def is_retryable(exc: BaseException) -> bool:
    """Rate limits and server errors pass; a bad key, a wrong model or a bad request do not."""
    return isinstance(exc, openai.APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500)


def content_of(chunk: ChatCompletionChunk) -> str | None:
    """The text in a chunk; role-only, finish and usage-only chunks have none."""
    return chunk.choices[0].delta.content if chunk.choices else None


def without_credentials(url: str) -> str:
    """The URL as safe to show or speak: any user:password@ part removed."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def create(options: object, llm: LlmSettings, **kwargs: Any) -> OpenAIChat:
    """Builds from an `[llm]` section (a backend profile already applied over it); keyword
    arguments override single options (tests, tools). `options` is the spec's (none: an
    OpenAI backend's options are the [llm] section itself)."""
    from_section: dict[str, Any] = {
        "base_url": llm.base_url,
        "model": llm.model,
        "api_key": llm.api_key.get_secret_value(),
        "temperature": llm.temperature,
        "max_tokens": llm.max_tokens,
        "connect_timeout_s": llm.connect_timeout_s,
        "first_token_timeout_s": llm.first_token_timeout_s,
        "timeout_s": llm.timeout_s,
        "extra_body": llm.extra_body,
        "retries": llm.retries,
        "key_hint": llm.api_key_env or "VOICELOOP_LLM__API_KEY or llm.api_key",
    }
    return OpenAIChat(**{**from_section, **kwargs})
