"""The openai backend's two HTTP stacks (aiohttp, the default, and the official client's) behave alike against the
real test server, and the retry rules they share are the official client's."""
from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import pytest

from wafersage.models.base import ChatMessage, ModelRequest, ModelResponse
from wafersage.models.config import ModelConfig
from wafersage.models.openai_backend import OpenAIModel
from wafersage.models.testing.server import ChatCompletionsServer
from wafersage.models.transport import Attempt, retry_after, retry_delay, should_retry


def ask(model: OpenAIModel, text: str = "hi") -> ModelResponse:
    async def go() -> ModelResponse:
        try:
            return (await model.generate([ModelRequest(messages=[ChatMessage(role="user", content=text)])]))[0]
        finally:
            await model.aclose()
    return asyncio.run(go())


def model(url: str, transport: str, **options) -> OpenAIModel:
    options = {"timeout": 0.4, "max_retries": 1, **options}
    return OpenAIModel(ModelConfig(name="t", backend="openai", base_url=url, model="m", transport=transport,
                                   **options))


SCRIPTS = [  # (server script, expected error or None, chat requests the server sees)
    (["server_error", "ok"], None, 2),
    (["server_error", "server_error"], "HTTP 500: internal error (injected)", 2),
    (["rate_limit", "rate_limit"], "rate limited: HTTP 429 after 2 attempts", 2),
    (["hang", "hang"], "timeout: no answer within 0.4 s (2 attempts)", 2),
    (["truncated", "ok"], None, 2),
    (["truncated", "truncated"], "malformed response after 2 attempts (JSONDecodeError", 2),
]


@pytest.mark.parametrize("transport", ["aiohttp", "openai"])
@pytest.mark.parametrize("script,error,requests", SCRIPTS)
def test_both_transports_retry_alike(transport, script, error, requests):
    with ChatCompletionsServer(retry_after_s=0.05, hang_s=3) as server:
        server.script(script)
        response = ask(model(server.url, transport))
        assert server.chat_requests == requests
    if error is None:
        assert response.ok and response.text == "echo: hi"
    else:
        assert response.error.startswith(error)


@pytest.mark.parametrize("transport", ["aiohttp", "openai"])
def test_both_transports_report_a_refused_connection(transport):
    with ChatCompletionsServer() as server:
        url = server.url
    assert ask(model(url, transport, max_retries=0)).error.startswith("connection error: ")


def test_a_retry_after_beyond_two_minutes_is_not_waited_for():
    with ChatCompletionsServer(retry_after_s=600) as server:
        server.script(["rate_limit"])
        started = time.monotonic()
        response = ask(model(server.url, "aiohttp", max_retries=3))
        assert server.chat_requests == 1 and time.monotonic() - started < 5
    assert response.error.startswith("rate limited: HTTP 429, not retried")


def test_retry_rules():
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "2"}) == 2.0
    assert 8 < retry_after({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert retry_after({"retry-after": "soon"}) is None and retry_after(None) is None
    assert retry_delay(0, {"retry-after": "3"}) == 3.0
    assert 0.375 <= retry_delay(0) <= 0.5 and 6 <= retry_delay(10) <= 8  # doubling from 0.5 s, capped at 8 s
    assert [should_retry(Attempt(status)) for status in (400, 401, 404, 408, 409, 429, 500, 503)] == [
        False, False, False, True, True, True, True, True]
    assert should_retry(Attempt(400, headers={"x-should-retry": "true"}))
    assert not should_retry(Attempt(503, headers={"x-should-retry": "false"}))
    assert not should_retry(Attempt(429, headers={"retry-after": "121"}))
