"""The ``openai`` backend: any OpenAI-compatible chat endpoint (OpenAI, Gemini, ``vllm serve``, the test server).

``base_url`` names one endpoint or a list of replicas of the same model; every attempt goes to the replica with the
fewest requests in flight, each with its own concurrency limit, 429 back-off and health (:mod:`.endpoints`).
Attempts go through a lean aiohttp sender by default (``transport: openai`` uses the official client's HTTP stack
instead; :mod:`.transport`), with the official client's retry rules: 429/5xx/408/409 and timeouts are retried
(Retry-After honoured), as are 200 answers whose body is not a valid completion; a request whose replica cannot be
reached is re-sent to another at once. Every request gets a :class:`ModelResponse`; a failure is a response with
``error`` set, never an exception out of :meth:`OpenAIModel.generate`.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import time
from typing import Any, Literal, Sequence
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .base import ModelRequest, ModelResponse, SentImage
from .config import ModelConfig, ModelConfigError, PricePerMillion, redact
from .endpoints import Endpoint, EndpointPool
from .images import EncodedImage, ImageFormat, ImageReadError, capped_size, encode_image, image_size
from .limits import MinuteBudget
from .offline import check_endpoint, endpoint_host, is_loopback
from .transport import AiohttpSender, Attempt, OpenAISender, Sender, Transport, retry_delay, should_retry

log = logging.getLogger(__name__)

ESTIMATED_TOKENS_PER_IMAGE = 85


class OpenAIOptions(BaseModel):
    """The ``openai`` backend's options, at the top level of a model YAML file."""

    model_config = ConfigDict(extra="forbid")
    base_url: str | list[str] = Field(
        description="the endpoint, e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1, or a list of replicas "
                    "serving the same model (each attempt goes to the one with the fewest requests in flight)")
    model: str = Field(description="the provider's model id sent with every request")
    api_key_env: str | None = Field(
        None, description="environment variable holding the API key (never the key itself); none for local servers")
    timeout: float = Field(60.0, gt=0, description="seconds without an answer before an attempt is abandoned")
    max_retries: int = Field(
        2, ge=0, description="retries of a failed attempt (429/5xx/408/409, timeouts, malformed 200 bodies); a "
                             "request whose replica cannot be reached is re-sent to another without counting one")
    max_concurrency: int = Field(
        16, ge=1, description="most requests in flight at once per endpoint (the cap of its AIMD limit, which halves "
                              "on a 429 and grows by one per success)")
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
    transport: Transport = Field(
        "aiohttp", description="HTTP stack of the attempts: aiohttp (lean; the default) or openai (the official "
                               "client's, about 1 ms more CPU per request; benchmarks/bench_endpoints.py)")

    @field_validator("base_url")
    @classmethod
    def _http_urls(cls, value: str | list[str]) -> str | list[str]:
        urls = [value] if isinstance(value, str) else value
        if not urls:
            raise ValueError("base_url is an empty list; give one URL or the list of replicas of the model")
        for url in urls:
            if not url.startswith(("http://", "https://")) or not endpoint_host(url):
                raise ValueError(f"base_url must be an http(s) URL with a host, got {redact(url)!r}")
            if urls.count(url) > 1:
                raise ValueError(f"base_url lists {redact(url)!r} twice; list each replica once")
        return value

    @property
    def base_urls(self) -> list[str]:
        """The endpoints: ``base_url`` itself, or its list of replicas."""
        return [self.base_url] if isinstance(self.base_url, str) else list(self.base_url)

    def sent_image(self, path: str) -> SentImage:
        """The size and format :func:`~wafersage.models.images.encode_image` sends with these options."""
        return capped_size(image_size(path), self.image_max_side), self.image_format


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

    batch_size = 1  # concurrency comes from the runner's workers and the endpoints' limits, not from batches

    def __init__(self, config: ModelConfig):
        self.config = config
        self.name = config.name
        self.options: OpenAIOptions = config.parse_options(OpenAIOptions)  # type: ignore[assignment]
        where = f"model {config.name!r} ({config.source or 'no config file'})"
        urls = self.options.base_urls
        if config.offline:
            for url in urls:
                check_endpoint(url, allow_hosts=config.allow_hosts, where=where)
        self.deployment = "local" if all(is_loopback(endpoint_host(url)) for url in urls) else "api"
        self.max_concurrency = self.options.max_concurrency * len(urls)
        self._api_key = self._read_key(where)
        self.pool = EndpointPool(urls, self.options.max_concurrency, name=config.name)
        rpm, tpm = self.options.requests_per_minute, self.options.tokens_per_minute
        self._request_budget = MinuteBudget(rpm) if rpm else None
        self._token_budget = MinuteBudget(tpm) if tpm else None
        trust_env = not config.offline  # offline: no proxy from the environment either
        self._sender: Sender
        if self.options.transport == "openai":
            first = urlsplit(urls[0])  # attempts post to absolute URLs; the client only needs a valid base
            self._sender = OpenAISender(self._api_key, self.options.timeout, trust_env,
                                        urlunsplit(first._replace(query="", fragment="")))
        else:
            self._sender = AiohttpSender(self._api_key, self.options.timeout, trust_env)

    def _read_key(self, where: str) -> str:
        variable = self.options.api_key_env
        if variable is None:
            return "not-needed"  # local servers ignore it; some gateways want the header all the same
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
        """The sum of the endpoints' current AIMD limits, for progress logs."""
        return self.pool.limit

    def encode(self, path: str) -> EncodedImage:
        """The image exactly as this backend sends it."""
        return encode_image(path, self.options.image_max_side, self.options.image_format)

    def sent_image(self, path: str) -> SentImage:
        return self.options.sent_image(path)

    async def aclose(self) -> None:
        if len(self.pool.endpoints) > 1:
            log.info("%s: %s", self.name, "; ".join(f"{e.label}: {e.completed} answers of {e.sent} attempts"
                                                    for e in self.pool.endpoints))
        await self._sender.aclose()

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
        try:
            messages, image_bytes = self._messages(request)
            payload = self._arguments(request, messages)
            await self._take_budgets(request)
        except (ImageReadError, ValueError) as exc:
            return ModelResponse(error=self._redact(str(exc)[:300]))
        try:
            response = await self._send(payload)
        except Exception as exc:  # noqa: BLE001 - every request gets a response, never an exception
            log.exception("%s: unexpected failure", self.name)
            return ModelResponse(error=self._redact(f"{type(exc).__name__}: {exc}"[:300]))
        response.image_bytes_sent = image_bytes
        return response

    async def _send(self, payload: dict[str, Any]) -> ModelResponse:
        """Attempts until a completion or a final error; ``latency_s`` runs from the first attempt's start (after
        the budgets and a free endpoint slot) to the parsed answer, retries included."""
        pool, attempts = self.pool, self.options.max_retries + 1
        failovers = len(pool.endpoints) - 1  # re-sends after an endpoint is lost that count no attempt
        tries, avoid, started = 0, None, None
        while True:
            endpoint = await pool.acquire(avoid)
            if started is None:
                started = time.perf_counter()
            sent_at = time.monotonic()
            try:
                attempt = await self._sender.post(endpoint.chat_url, payload)
            except BaseException:
                pool.finish(endpoint, "answered", sent_at=sent_at)  # cancelled: the slot is free, health unknown
                raise
            tries += 1
            outcome = self._judge(endpoint, attempt, sent_at)
            if isinstance(outcome, ModelResponse):
                outcome.latency_s = time.perf_counter() - started
                return outcome
            final, reason = outcome
            # an endpoint that cannot be reached, or one taken out while this request waited on it, loses nothing:
            # the request is re-sent elsewhere at once, counting no attempt
            lost = attempt.failure == "connection" or (attempt.failure == "timeout" and endpoint.down)
            if lost and failovers and pool.in_service(besides=endpoint):
                failovers, tries, avoid = failovers - 1, tries - 1, endpoint
                continue
            if final or tries >= attempts:
                return ModelResponse(error=self._redact(reason[:300]), latency_s=time.perf_counter() - started)
            # a 429 rests its endpoint instead, and a malformed body is asked again at once
            backoff = attempt.status == 0 or (attempt.status >= 300 and attempt.status != 429)
            if backoff and not pool.in_service(besides=endpoint):  # no other endpoint to try meanwhile
                await asyncio.sleep(retry_delay(tries - 1, attempt.headers))
            avoid = endpoint

    def _judge(self, endpoint: Endpoint, attempt: Attempt, sent_at: float) -> ModelResponse | tuple[bool, str]:
        """Tell the pool how the attempt went; returns the answer, or (whether the error is final, its reason)."""
        attempts = self.options.max_retries + 1
        finish = functools.partial(self.pool.finish, endpoint, sent_at=sent_at)
        if 200 <= attempt.status < 300:
            try:
                completion = _Completion.model_validate(json.loads(attempt.body))
            except ValueError as exc:  # JSON or validation errors: a 200 body that is not a completion
                finish("answered")
                reason = f"{type(exc).__name__}: {exc}"[:160]
                log.info("%s: malformed 200 answer from %s: %s", self.name, endpoint.label, reason)
                return False, f"malformed response after {attempts} attempts ({reason})"
            finish("ok")
            return self._parse(completion)
        if attempt.status:
            retry = should_retry(attempt)
            if attempt.status == 429:
                finish("rate_limited", retry_delay(0, attempt.headers))
                if not retry:
                    return True, "rate limited: HTTP 429, not retried (Retry-After over 2 minutes, or x-should-retry)"
                return False, f"rate limited: HTTP 429 after {attempts} attempts"
            finish("failed" if retry else "answered")
            return not retry, f"HTTP {attempt.status}: {_error_detail(attempt.body)}"
        if attempt.failure == "timeout":
            finish("failed")
            return False, f"timeout: no answer within {self.options.timeout:g} s ({attempts} attempts)"
        finish("unreachable")
        return False, f"connection error: {attempt.detail}"

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

    def _redact(self, text: str) -> str:
        return redact(text.replace(self._api_key, "***") if self._api_key else text)


def _error_detail(body: bytes) -> str:
    """The message of an error answer (``{"error": {"message": ...}}`` as OpenAI sends it), else its text."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
    return body[:200].decode(errors="replace").strip() or "no detail"
