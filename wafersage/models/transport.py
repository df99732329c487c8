"""One HTTP attempt of the ``openai`` backend, and the retry policy around it.

A sender POSTs a JSON payload to a chat completions URL and reports an :class:`Attempt`: the status, body and
retry headers of an answer, or why no answer came (``timeout``, ``connection``). It never raises for network
trouble and never retries; the backend decides what an attempt means for the endpoint and the request.

Two senders do the same job: :class:`AiohttpSender` (the default) is one ``aiohttp`` session per event loop with
the headers set once; :class:`OpenAISender` goes through the official ``openai`` client's HTTP stack (its
generic ``post`` with its own retries off). ``benchmarks/bench_endpoints.py --transport both`` measures the CPU
each costs per request. The retry policy (:func:`retry_delay`, :func:`retry_after`, :func:`should_retry`) is the
official client's: Retry-After (or ``retry-after-ms``) honoured up to two minutes, else 0.5 s doubling to 8 s
with up to 25% jitter; 408, 409, 429 and 5xx are retried unless ``x-should-retry`` says otherwise.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Protocol

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from .config import redact

log = logging.getLogger(__name__)

Transport = Literal["aiohttp", "openai"]
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 120.0  # a longer Retry-After is not waited for: the attempt's error is final
RETRYABLE_STATUS = frozenset({408, 409, 429})


@dataclass(slots=True)
class Attempt:
    """What one POST gave: an HTTP answer (``status`` > 0) or a ``failure`` with its root cause."""

    status: int = 0
    body: bytes = b""
    headers: Mapping[str, str] | None = None
    failure: Literal["timeout", "connection"] | None = None
    detail: str = ""


class Sender(Protocol):
    async def post(self, url: str, payload: dict[str, Any]) -> Attempt: ...

    async def aclose(self) -> None: ...


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asks to wait (``retry-after-ms``, then ``retry-after`` as seconds or an HTTP date)."""
    if not headers:
        return None
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) / divisor
            except ValueError:
                pass
    parsed = email.utils.parsedate_tz(headers.get("retry-after") or "")
    return None if parsed is None else float(email.utils.mktime_tz(parsed) - time.time())


def should_retry(attempt: Attempt) -> bool:
    """Whether an HTTP answer that is not a 2xx is worth another attempt (the official client's rule)."""
    wait = retry_after(attempt.headers)
    if wait is not None and math.isfinite(wait) and wait > MAX_RETRY_AFTER:
        return False
    header = (attempt.headers or {}).get("x-should-retry")
    if header in ("true", "false"):
        return header == "true"
    return attempt.status in RETRYABLE_STATUS or attempt.status >= 500


def retry_delay(retries_done: int, headers: Mapping[str, str] | None = None) -> float:
    """Seconds before the next attempt: the server's Retry-After when sane, else exponential back-off with jitter."""
    wait = retry_after(headers)
    if wait is not None and math.isfinite(wait) and 0 < wait <= MAX_RETRY_AFTER:
        return wait
    return min(INITIAL_RETRY_DELAY * 2.0 ** min(retries_done, 60), MAX_RETRY_DELAY) * (1 - 0.25 * random.random())


def root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def encode_payload(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class AiohttpSender:
    """POSTs over one ``aiohttp`` session per event loop (no connection cap: the endpoint pool limits the load).

    Each URL is parsed and its proxy settings from the environment (``trust_env``) are read once, not by aiohttp on
    every request (which asks a worker thread for them twice per request); cookies are not kept."""

    def __init__(self, api_key: str, timeout: float, trust_env: bool):
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                         "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._trust_env = trust_env  # offline: no proxy from the environment either
        self._targets: dict[str, tuple[URL, URL | None, aiohttp.BasicAuth | None]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_for_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), headers=self._headers, timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar())
            self._loop = loop
        return self._session

    def _target(self, url: str) -> tuple[URL, URL | None, aiohttp.BasicAuth | None]:
        """The parsed URL, and the proxy (and its credentials) the environment names for it."""
        if url not in self._targets:
            parsed, proxy = URL(url), (None, None)
            if self._trust_env:
                try:
                    proxy = get_env_proxy_for_url(parsed)
                except LookupError:  # no proxy for it (none set, or NO_PROXY)
                    pass
            self._targets[url] = (parsed, *proxy)
        return self._targets[url]

    async def post(self, url: str, payload: dict[str, Any]) -> Attempt:
        target, proxy, proxy_auth = self._target(url)
        try:
            async with self._session_for_loop().post(target, data=encode_payload(payload), proxy=proxy,
                                                     proxy_auth=proxy_auth) as response:
                body = await response.read()
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("POST %s: HTTP %d, %d bytes", redact(url), response.status, len(body))
                return Attempt(response.status, body, response.headers)
        except TimeoutError:
            return Attempt(failure="timeout")
        except aiohttp.ClientError as exc:
            return Attempt(failure="connection", detail=str(root_cause(exc)) or type(exc).__name__)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()


class OpenAISender:
    """POSTs through the official ``openai`` client's HTTP stack (its aiohttp transport, its retries off)."""

    def __init__(self, api_key: str, timeout: float, trust_env: bool, base_url: str):
        self._api_key, self._timeout, self._trust_env, self._base_url = api_key, timeout, trust_env, base_url
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client_for_loop(self) -> Any:
        import openai  # only this sender needs it

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = openai.AsyncOpenAI(
                api_key=self._api_key, base_url=self._base_url, timeout=self._timeout, max_retries=0,
                http_client=openai.DefaultAioHttpClient(trust_env=self._trust_env))
            self._loop = loop
        return self._client

    async def post(self, url: str, payload: dict[str, Any]) -> Attempt:
        import openai

        try:
            body = await self._client_for_loop().post(url, body=payload, cast_to=bytes)
            return Attempt(200, body)
        except openai.APIStatusError as exc:
            return Attempt(exc.status_code, exc.response.content, exc.response.headers)
        except openai.APIConnectionError as exc:
            root = root_cause(exc)
            # its aiohttp transport reports a refused connection as a connect timeout: trust the root cause
            if isinstance(exc, openai.APITimeoutError) and isinstance(root, (TimeoutError, openai.APITimeoutError)):
                return Attempt(failure="timeout")
            return Attempt(failure="connection", detail=str(root) or type(root).__name__)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.close()
