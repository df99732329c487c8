"""The ``openai`` backend: any OpenAI-compatible chat endpoint (OpenAI, Gemini, ``vllm serve``, the test server).

It uses the official ``AsyncOpenAI`` client over its aiohttp transport and the client's own retries (429/5xx with
``Retry-After``, timeouts, connection errors). A 200 answer whose body is not a valid completion is retried here,
``max_retries`` times. Every request gets a :class:`ModelResponse`; a failure is a response with ``error`` set, never
an exception out of :meth:`OpenAIModel.generate`. All calls pass one AIMD limiter (see :mod:`.limits`).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any, Literal, Sequence
from urllib.parse import urlsplit, urlunsplit

import openai
import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .base import ModelRequest, ModelResponse, SentImage
from .config import ModelConfig, ModelConfigError, PricePerMillion, redact
from .images import EncodedImage, ImageFormat, ImageReadError, capped_size, encode_image, image_size
from .limits import AdaptiveLimiter, MinuteBudget
from .offline import check_endpoint, endpoint_host, is_loopback

log = logging.getLogger(__name__)

#: the body of a 200 answer could not be read as a chat completion
MALFORMED_ERRORS = (json.JSONDecodeError, openai.APIResponseValidationError, pydantic.ValidationError)
ESTIMATED_TOKENS_PER_IMAGE = 85


class OpenAIOptions(BaseModel):
    """The ``openai`` backend's options, at the top level of a model YAML file."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(description="the endpoint, e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1")
    model: str = Field(description="the provider's model id sent with every request")
    api_key_env: str | None = Field(
        None, description="environment variable holding the API key (never the key itself); none for local servers")
    timeout: float = Field(60.0, gt=0, description="seconds without an answer before an attempt is abandoned")
    max_retries: int = Field(
        2, ge=0, description="retries of a failed attempt (429/5xx/timeouts by the client, malformed 200 bodies here)")
    max_concurrency: int = Field(16, ge=1, description="most requests in flight at once (the AIMD limiter's cap)")
    requests_per_minute: float | None = Field(None, gt=0, description="optional provider request budget")
    tokens_per_minute: float | None = Field(
        None, gt=0, description="optional provider token budget (estimated prompt tokens + max_tokens per call)")
    price_per_million: PricePerMillion = Field(default_factory=PricePerMillion, description="USD per 1M tokens")
    image_max_side: int | None = Field(512, ge=16, description="long side cap in pixels for sent images (none: as is)")
    image_format: ImageFormat = Field("png", description="encoding of sent images: png or jpeg")
    max_data_url_bytes: int = Field(
        20_000_000, gt=0, description="provider limit on one image data URL; larger images are refused before sending")
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = Field(
        "max_tokens", description="name of the output length parameter (OpenAI's gpt-5 models need "
                                  "max_completion_tokens)")
    omit_params: list[Literal["temperature", "top_p", "seed"]] = Field(
        default_factory=list, description="generation parameters this provider rejects and that are not sent")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra JSON fields sent with each request")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or not endpoint_host(value):
            raise ValueError(f"base_url must be an http(s) URL with a host, got {redact(value)!r}")
        return value

    def sent_image(self, path: str) -> SentImage:
        """The size and format :func:`~wafersage.models.images.encode_image` sends with these options."""
        return capped_size(image_size(path), self.image_max_side), self.image_format


class MalformedResponse(ValueError):
    """A 200 answer that is not a usable chat completion."""


class _Message(BaseModel):
    content: str | None = None
    refusal: str | None = None


class _Choice(BaseModel):
    message: _Message


class _Usage(BaseModel):
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0


class _Completion(BaseModel):
    """The part of a chat completion we read, validated (a 200 body that does not fit is malformed)."""

    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


class OpenAIModel:
    """A :class:`~wafersage.models.base.Model` over an OpenAI-compatible endpoint."""

    batch_size = 1  # concurrency comes from the runner's workers and the limiter, not from batches

    def __init__(self, config: ModelConfig):
        self.config = config
        self.name = config.name
        self.options: OpenAIOptions = config.parse_options(OpenAIOptions)  # type: ignore[assignment]
        where = f"model {config.name!r} ({config.source or 'no config file'})"
        if config.offline:
            check_endpoint(self.options.base_url, allow_hosts=config.allow_hosts, where=where)
        self.deployment = "local" if is_loopback(endpoint_host(self.options.base_url)) else "api"
        self.max_concurrency = self.options.max_concurrency
        self._api_key = self._read_key(where)
        self.limiter = AdaptiveLimiter(self.options.max_concurrency)
        rpm, tpm = self.options.requests_per_minute, self.options.tokens_per_minute
        self._request_budget = MinuteBudget(rpm) if rpm else None
        self._token_budget = MinuteBudget(tpm) if tpm else None
        self._client: openai.AsyncOpenAI | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._chat_url = ""  # the absolute chat completions URL, set with the client

    def _read_key(self, where: str) -> str:
        variable = self.options.api_key_env
        if variable is None:
            return "not-needed"  # local servers ignore it; the client requires a value
        key = os.environ.get(variable, "").strip()
        if not key:
            raise ModelConfigError(
                f"{where}: the API key variable {variable} named by api_key_env is not set; "
                f"export {variable}=<your key> before running (keys never go in config files)")
        return key

    def __repr__(self) -> str:
        return (f"OpenAIModel(name={self.name!r}, model={self.options.model!r}, "
                f"base_url={redact(self.options.base_url)!r}, "
                f"deployment={self.deployment!r})")

    @property
    def current_concurrency(self) -> int:
        """The AIMD limiter's current limit, for progress logs."""
        return self.limiter.limit

    def encode(self, path: str) -> EncodedImage:
        """The image exactly as this backend sends it."""
        return encode_image(path, self.options.image_max_side, self.options.image_format)

    def sent_image(self, path: str) -> SentImage:
        return self.options.sent_image(path)

    # ---- client ----------------------------------------------------------------------------------------------------
    def _client_for_loop(self) -> openai.AsyncOpenAI:
        """One client per event loop: the aiohttp session belongs to the loop that opened it."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            http_client = openai.DefaultAioHttpClient(
                event_hooks={"response": [self._on_response]},
                trust_env=not self.config.offline,  # offline: no proxy from the environment either
            )
            url = urlsplit(self.options.base_url)  # the client would append its path to a query string
            self._client = openai.AsyncOpenAI(
                api_key=self._api_key, base_url=urlunsplit(url._replace(query="", fragment="")),
                timeout=self.options.timeout, max_retries=self.options.max_retries, http_client=http_client)
            self._client_loop = loop
            # absolute, so the client does not merge it with base_url again on every attempt; keeps base_url's query
            self._chat_url = f"{self._client.base_url}chat/completions" + (f"?{url.query}" if url.query else "")
        return self._client

    async def _on_response(self, response: Any) -> None:
        """Sees every attempt, retried ones included, so each 429 reaches the limiter."""
        if response.status_code == 429:
            self.limiter.on_rate_limited()
            log.info("%s: HTTP 429, concurrency limit now %d", self.name, self.limiter.limit)

    async def aclose(self) -> None:
        if self._client is not None:
            try:
                if self._client_loop is asyncio.get_running_loop():
                    await self._client.close()
            finally:
                self._client = self._client_loop = None

    # ---- requests --------------------------------------------------------------------------------------------------
    async def generate(self, requests: Sequence[ModelRequest]) -> list[ModelResponse]:
        if len(requests) == 1:  # the runner's workers send one at a time: no task to spawn
            return [await self._generate_one(requests[0])]
        return list(await asyncio.gather(*(self._generate_one(request) for request in requests)))

    def _messages(self, request: ModelRequest) -> tuple[list[dict[str, Any]], int]:
        """Chat messages with the images as data URLs in the last user message; returns (messages, image bytes)."""
        messages: list[dict[str, Any]] = [m.model_dump() for m in request.messages]
        if not request.images:
            return messages, 0
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        if not users:
            raise ValueError("the request has images but no user message to attach them to")
        parts: list[dict[str, Any]] = []
        for path in request.images:
            image = self.encode(path)
            if image.nbytes > self.options.max_data_url_bytes:
                raise ValueError(
                    f"image {path} is {image.nbytes:,} bytes as a data URL, over max_data_url_bytes="
                    f"{self.options.max_data_url_bytes:,}; lower image_max_side or use image_format: jpeg (not sent)")
            parts.append({"type": "image_url", "image_url": {"url": image.data_url}})
        last = messages[users[-1]]
        last["content"] = [*parts, {"type": "text", "text": last["content"]}]
        return messages, sum(len(p["image_url"]["url"]) for p in parts)

    def _arguments(self, request: ModelRequest, messages: list[dict[str, Any]]) -> dict[str, Any]:
        params = request.params
        arguments: dict[str, Any] = {"model": self.options.model, "messages": messages,
                                     self.options.max_tokens_field: params.max_tokens}
        for name in ("temperature", "top_p", "seed"):
            value = getattr(params, name)
            if value is not None and name not in self.options.omit_params:
                arguments[name] = value
        if params.response_format is not None:
            arguments["response_format"] = params.response_format
        return {**arguments, **self.options.extra_body}

    async def _take_budgets(self, request: ModelRequest) -> None:
        if self._request_budget:
            await self._request_budget.take(1)
        if self._token_budget:
            text = sum(len(m.content) for m in request.messages) // 4
            await self._token_budget.take(
                text + ESTIMATED_TOKENS_PER_IMAGE * len(request.images) + request.params.max_tokens)

    async def _generate_one(self, request: ModelRequest) -> ModelResponse:
        """One request; ``latency_s`` runs from sending (after the limiter and budgets) to the parsed answer."""
        sent_at = None
        image_bytes = 0
        try:
            messages, image_bytes = self._messages(request)
            arguments = self._arguments(request, messages)
            async with self.limiter:
                await self._take_budgets(request)
                sent_at = time.perf_counter()
                response = await self._call(arguments)
                self.limiter.on_success()
            response.image_bytes_sent = image_bytes
        except (ImageReadError, ValueError, openai.APIError) as exc:
            response = ModelResponse(error=self._reason(exc), image_bytes_sent=image_bytes if sent_at else 0)
        except Exception as exc:  # noqa: BLE001 - every request gets a response, never an exception
            log.exception("%s: unexpected failure", self.name)
            response = ModelResponse(error=self._redact(f"{type(exc).__name__}: {exc}"[:300]))
        response.latency_s = time.perf_counter() - sent_at if sent_at else 0.0
        return response

    async def _call(self, arguments: dict[str, Any]) -> ModelResponse:
        """One request with the client's retries, plus our own retries of malformed 200 bodies."""
        client = self._client_for_loop()
        attempts = self.options.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                # the client's generic POST: the same transport, retries and errors as chat.completions.create,
                # without its TypedDict walk over the payload and its lenient model building (together ~2 ms of
                # CPU per request, the bottleneck at K >= 32); the raw body is parsed and validated here instead
                body = await client.post(self._chat_url, body=arguments, cast_to=bytes)
                completion = _Completion.model_validate(json.loads(body))
            except MALFORMED_ERRORS as exc:
                reason = f"{type(exc).__name__}: {exc}"[:160]
                log.info("%s: malformed 200 answer (attempt %d/%d): %s", self.name, attempt, attempts, reason)
                continue
            return self._parse(completion)
        raise MalformedResponse(f"malformed response after {attempts} attempts ({reason})")

    def _parse(self, completion: _Completion) -> ModelResponse:
        message = completion.choices[0].message
        usage = completion.usage
        input_tokens = (usage.prompt_tokens or 0) if usage else 0
        output_tokens = (usage.completion_tokens or 0) if usage else 0
        price = self.options.price_per_million
        return ModelResponse(
            text=message.content or message.refusal or "",
            input_tokens=input_tokens, output_tokens=output_tokens,
            cost_usd=(input_tokens * price.input + output_tokens * price.output) / 1e6)

    def _reason(self, exc: Exception) -> str:
        """A short, key-free reason for a failed request."""
        attempts = self.options.max_retries + 1
        root: BaseException = exc
        while root.__cause__ is not None:
            root = root.__cause__
        # the aiohttp transport reports a refused connection as a connect *timeout*: trust the root cause
        if isinstance(exc, openai.APITimeoutError) and isinstance(root, (TimeoutError, openai.APITimeoutError)):
            reason = f"timeout: no answer within {self.options.timeout:g} s ({attempts} attempts)"
        elif isinstance(exc, openai.RateLimitError):
            reason = f"rate limited: HTTP 429 after {attempts} attempts"
        elif isinstance(exc, openai.APIStatusError):
            detail = exc.body.get("message") if isinstance(exc.body, dict) else None
            reason = f"HTTP {exc.status_code}: {detail or exc.message}"
        elif isinstance(exc, openai.APIConnectionError):
            reason = f"connection error: {root}"
        else:
            reason = str(exc)
        return self._redact(reason[:300])

    def _redact(self, text: str) -> str:
        return redact(text.replace(self._api_key, "***") if self._api_key else text)
