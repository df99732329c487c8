"""The OpenAI-compatible test server itself: routes, determinism, fault mix, JSON mode and its command line."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections import Counter

import pytest
from pydantic import ValidationError

from wafersage.models.testing.server import ChatCompletionsServer, ServerSettings


def post(url: str, body: dict | bytes) -> tuple[int, bytes, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/chat/completions", data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def chat(text: str, **extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def kinds_for(server: ChatCompletionsServer, n: int) -> list[str]:
    seen = []
    for i in range(n):
        before = Counter(server.counts)
        post(server.url, chat(f"q{i}"))
        seen.append(next(k for k, v in (Counter(server.counts) - before).items() if k != "images" and v))
    return seen


def test_completion_shape_and_models_route(chat_server):
    status, body, _ = post(chat_server.url, chat("two words"))
    data = json.loads(body)
    assert status == 200 and data["choices"][0]["message"]["content"] == "echo: two words"
    assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    with urllib.request.urlopen(f"{chat_server.url}/models", timeout=10) as response:
        assert json.loads(response.read())["data"][0]["id"] == "wafersage-test"
    with urllib.request.urlopen(chat_server.url.removesuffix("/v1") + "/stats", timeout=10) as response:
        assert json.loads(response.read())["counts"]["ok"] == 1


def test_bad_request_is_a_400(chat_server):
    status, body, _ = post(chat_server.url, b"{not json")
    assert status == 400 and "invalid request" in json.loads(body)["error"]["message"]
    assert chat_server.counts["bad_request"] == 1 and chat_server.chat_requests == 0


def test_scripted_faults_in_order(chat_server):
    chat_server.script(["rate_limit", "server_error", "truncated"])
    status, _, headers = post(chat_server.url, chat("a"))
    assert status == 429 and headers["Retry-After"] == "0.2"
    assert post(chat_server.url, chat("b"))[0] == 500
    status, body, _ = post(chat_server.url, chat("c"))
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    assert post(chat_server.url, chat("d"))[0] == 200


def test_faults_are_deterministic_for_a_seed_and_follow_the_mix():
    settings = ServerSettings(fault_rate=0.5, seed=11, fault_mix={"rate_limit": 3, "server_error": 1})
    with ChatCompletionsServer(settings) as first, ChatCompletionsServer(settings) as second:
        kinds = kinds_for(first, 60)
        assert kinds == kinds_for(second, 60)
    counts = Counter(kinds)
    assert set(counts) == {"ok", "rate_limit", "server_error"} and counts["rate_limit"] > counts["server_error"]
    with ChatCompletionsServer(settings.model_copy(update={"seed": 12})) as other:
        assert kinds_for(other, 60) != kinds


def test_retry_of_the_same_body_gets_a_fresh_draw():
    with ChatCompletionsServer(fault_rate=0.5, seed=0, fault_mix={"server_error": 1}) as server:
        statuses = [post(server.url, chat("same question"))[0] for _ in range(30)]
    assert set(statuses) == {200, 500}


def test_reply_function_and_json_mode():
    with ChatCompletionsServer(reply=lambda payload: {"score": len(payload["messages"])}) as server:
        body = json.loads(post(server.url, chat("x"))[1])
        assert json.loads(body["choices"][0]["message"]["content"]) == {"score": 1}
    with ChatCompletionsServer() as server:
        body = json.loads(post(server.url, chat("x", response_format={"type": "json_object"}))[1])
        assert json.loads(body["choices"][0]["message"]["content"]) == {"echo": "x"}
    with ChatCompletionsServer(reply_text="Center defect.") as server:
        body = json.loads(post(server.url, chat("x"))[1])
        assert body["choices"][0]["message"]["content"] == "Center defect."


def test_settings_are_checked():
    with pytest.raises(ValidationError):
        ChatCompletionsServer(fault_rate=1.5)
    with pytest.raises(ValidationError):
        ServerSettings(fault_mix={"explode": 1.0})


def test_command_line_prints_its_url_and_serves():
    process = subprocess.Popen([sys.executable, "-m", "wafersage.models.testing.server", "--port", "0",
                                "--latency-ms", "5", "--reply-text", "Edge-Ring."], stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        body = json.loads(post(url, chat("x"))[1])
        assert body["choices"][0]["message"]["content"] == "Edge-Ring."
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
