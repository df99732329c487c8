"""The openai backend against the real test server: answers, usage, cost, images, retries and failure states."""
from __future__ import annotations

import asyncio
import base64
import io
import json

import pytest
from PIL import Image

from wafersage.models.base import ChatMessage, GenerationParams, ModelRequest, ModelResponse
from wafersage.models.config import ModelConfig
from wafersage.models.openai_backend import OpenAIModel
from wafersage.models.testing.server import ChatCompletionsServer


def make_model(url: str, **options) -> OpenAIModel:
    options = {"timeout": 5, "max_retries": 2, **options}
    return OpenAIModel(ModelConfig(name="test-model", backend="openai", base_url=url, model="served-model",
                                   **options))


def ask(text: str = "Which pattern is this?", images: list[str] | None = None, **params) -> ModelRequest:
    return ModelRequest(messages=[ChatMessage(role="system", content="Be brief."),
                                  ChatMessage(role="user", content=text)],
                        images=images or [], params=GenerationParams(**params))


def generate(model: OpenAIModel, requests: list[ModelRequest]) -> list[ModelResponse]:
    async def go() -> list[ModelResponse]:
        try:
            return await model.generate(requests)
        finally:
            await model.aclose()
    return asyncio.run(go())


@pytest.fixture
def wafer_png(tmp_path):
    path = tmp_path / "wafer.png"
    Image.new("RGB", (1000, 500), (80, 170, 80)).save(path)
    return str(path)


def test_answer_tokens_and_cost(chat_server):
    model = make_model(chat_server.url, price_per_million={"input": 2.0, "output": 10.0})
    (response,) = generate(model, [ask("Is there a scratch")])
    assert response.ok and response.text == "echo: Is there a scratch"
    # the server counts whitespace words: system (2) + user (4) in, reply (5) out
    assert (response.input_tokens, response.output_tokens) == (6, 5)
    assert response.cost_usd == pytest.approx((6 * 2.0 + 5 * 10.0) / 1e6)
    assert response.latency_s > 0 and response.image_bytes_sent == 0
    payload = chat_server.payloads[-1]
    assert payload["model"] == "served-model" and payload["max_tokens"] == 512 and payload["temperature"] == 0.0


def test_image_sent_as_capped_decodable_data_url(chat_server, wafer_png):
    model = make_model(chat_server.url, image_max_side=256)
    (response,) = generate(model, [ask(images=[wafer_png])])
    assert response.ok
    content = chat_server.payloads[-1]["messages"][-1]["content"]
    image_part, text_part = content
    assert text_part == {"type": "text", "text": "Which pattern is this?"}
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,") and response.image_bytes_sent == len(url)
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.format == "PNG" and sent.size == (256, 128)
    assert model.encode(wafer_png).width == 256


def test_jpeg_encoding(chat_server, wafer_png):
    (response,) = generate(make_model(chat_server.url, image_format="jpeg"), [ask(images=[wafer_png])])
    url = chat_server.payloads[-1]["messages"][-1]["content"][0]["image_url"]["url"]
    assert response.ok and url.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (512, 256)


def test_oversize_data_url_refused_before_sending(chat_server, wafer_png):
    model = make_model(chat_server.url, max_data_url_bytes=100)
    (response,) = generate(model, [ask(images=[wafer_png])])
    assert not response.ok and "max_data_url_bytes=100" in response.error and "not sent" in response.error
    assert chat_server.chat_requests == 0 and response.image_bytes_sent == 0 and response.latency_s == 0


def test_unreadable_image_is_a_failed_response(chat_server, tmp_path):
    missing = str(tmp_path / "missing.png")
    responses = generate(make_model(chat_server.url), [ask(images=[missing]), ask("fine")])
    assert not responses[0].ok and missing in responses[0].error
    assert responses[1].ok and chat_server.chat_requests == 1


def test_rate_limit_retry_after_honoured_then_success():
    with ChatCompletionsServer(retry_after_s=1) as server:
        server.script(["rate_limit"])
        model = make_model(server.url, max_concurrency=8)
        (response,) = generate(model, [ask()])
        assert response.ok and server.counts["rate_limit"] == 1 and server.counts["ok"] == 1
        assert response.latency_s >= 1.0  # waited the server's Retry-After, not the client's 0.5 s backoff
        assert model.current_concurrency == 5  # halved to 4 on the 429, +1 for the success


def test_server_error_retried_then_success(chat_server):
    chat_server.script(["server_error", "server_error"])
    (response,) = generate(make_model(chat_server.url), [ask()])
    assert response.ok and chat_server.counts["server_error"] == 2 and chat_server.counts["ok"] == 1


def test_server_error_exhausted_is_recorded(chat_server):
    chat_server.script(["server_error"] * 3)
    (response,) = generate(make_model(chat_server.url, max_retries=1), [ask()])
    assert response.error == "HTTP 500: internal error (injected)" and response.text == ""
    assert chat_server.chat_requests == 2


def test_timeout_recorded(chat_server):
    chat_server.script(["hang", "hang"])
    (response,) = generate(make_model(chat_server.url, timeout=0.3, max_retries=1), [ask()])
    assert response.error == "timeout: no answer within 0.3 s (2 attempts)"


def test_truncated_body_retried_then_success(chat_server):
    chat_server.script(["truncated"])
    (response,) = generate(make_model(chat_server.url), [ask()])
    assert response.ok and chat_server.counts["truncated"] == 1 and chat_server.counts["ok"] == 1


def test_truncated_body_every_time_is_an_error(chat_server):
    chat_server.script(["truncated"] * 3)
    (response,) = generate(make_model(chat_server.url, max_retries=2), [ask()])
    assert response.error.startswith("malformed response after 3 attempts (JSONDecodeError")
    assert chat_server.counts["truncated"] == 3


def test_valid_json_that_is_not_a_completion_is_malformed():
    with ChatCompletionsServer(reply=lambda payload: "unused") as server:
        server._completion = lambda payload: {"object": "chat.completion", "choices": []}
        (response,) = generate(make_model(server.url, max_retries=1), [ask()])
        assert response.error.startswith("malformed response after 2 attempts (ValidationError")


def test_json_mode_reply_and_request_options():
    def judge(payload):
        return {"score": 4, "model": payload["model"]}

    with ChatCompletionsServer(reply=judge) as server:
        model = make_model(server.url, max_tokens_field="max_completion_tokens", omit_params=["temperature"],
                           extra_body={"reasoning_effort": "low"})
        (response,) = generate(model, [ask(response_format={"type": "json_object"}, max_tokens=32, top_p=0.5)])
        assert json.loads(response.text) == {"score": 4, "model": "served-model"}
        payload = server.payloads[-1]
        assert payload["max_completion_tokens"] == 32 and "max_tokens" not in payload
        assert "temperature" not in payload and payload["top_p"] == 0.5 and payload["seed"] == 0
        assert payload["response_format"] == {"type": "json_object"} and payload["reasoning_effort"] == "low"


def test_every_request_gets_a_response_in_order():
    with ChatCompletionsServer(fault_rate=0.5, seed=1, retry_after_s=0.05, hang_s=5) as server:
        model = make_model(server.url, timeout=0.5, max_retries=1, max_concurrency=4)
        requests = [ask(f"question {i}") for i in range(24)]
        responses = generate(model, requests)
        assert len(responses) == 24
        for i, response in enumerate(responses):
            assert response.text == f"echo: question {i}" if response.ok else response.error
        assert any(not r.ok for r in responses) and any(r.ok for r in responses)
        assert server.max_in_flight <= 4


def test_connection_refused_is_a_failed_response():
    with ChatCompletionsServer() as server:
        url = server.url
    (response,) = generate(make_model(url, max_retries=0), [ask()])
    assert response.error.startswith("connection error")


def test_model_reusable_after_aclose_in_a_new_event_loop(chat_server):
    model = make_model(chat_server.url)
    first = generate(model, [ask("one")])
    second = generate(model, [ask("two")])
    assert first[0].text == "echo: one" and second[0].text == "echo: two"
