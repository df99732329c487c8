"""Options, API keys and the shipped model configs of the openai backend."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from wafersage.models.base import ChatMessage, ModelRequest
from wafersage.models.config import ModelConfig, ModelConfigError, load_config_file
from wafersage.models.openai_backend import OpenAIModel
from wafersage.models.registry import load_model, resolve

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-test-0123456789-secret"


async def generate_once(model: OpenAIModel):
    try:
        return await model.generate([ModelRequest(messages=[ChatMessage(role="user", content="hi")])])
    finally:
        await model.aclose()


def write_config(tmp_path: Path, url: str, **extra) -> Path:
    lines = ["name: keyed", "backend: openai", f"base_url: {url}", "model: served-model",
             "api_key_env: WAFERSAGE_TEST_KEY", *(f"{k}: {v}" for k, v in extra.items())]
    path = tmp_path / "keyed.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_missing_key_names_the_variable_and_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("WAFERSAGE_TEST_KEY", raising=False)
    path = write_config(tmp_path, "https://api.example.com/v1")
    with pytest.raises(ModelConfigError) as caught:
        load_model(str(path))
    message = str(caught.value)
    assert "WAFERSAGE_TEST_KEY" in message and str(path) in message and "export WAFERSAGE_TEST_KEY=" in message


@pytest.mark.parametrize("transport,logger", [("aiohttp", "wafersage.models.transport"),
                                              ("openai", "openai._base_client")])
def test_key_never_leaks(tmp_path, monkeypatch, chat_server, caplog, transport, logger):
    caplog.set_level(logging.DEBUG)  # the HTTP stack's debug log and ours
    monkeypatch.setenv("WAFERSAGE_TEST_KEY", SECRET)
    config = load_config_file(write_config(tmp_path, chat_server.url, transport=transport))
    model = OpenAIModel(config)
    assert SECRET not in repr(model) and SECRET not in str(config.public()) and SECRET not in repr(config)
    assert SECRET not in str(model.options.model_dump())
    # a provider that echoes the key in its error message (some do, half-masked): the recorded error redacts it
    original = chat_server._error
    monkeypatch.setattr(chat_server, "_error",
                        lambda status, message, kind, headers=None: original(status, f"bad key {SECRET}", kind))
    chat_server.script(["server_error"] * 3)
    (response,) = asyncio.run(generate_once(model))
    assert response.error == "HTTP 500: bad key ***"
    assert chat_server.last_headers["Authorization"] == f"Bearer {SECRET}"  # the key travels only there
    assert all(SECRET not in str(payload) for payload in chat_server.payloads)
    assert logger in caplog.text and SECRET not in caplog.text


def test_local_server_needs_no_key(chat_server):
    model = OpenAIModel(ModelConfig(name="local", backend="openai", base_url=chat_server.url, model="m"))
    (response,) = asyncio.run(generate_once(model))
    assert response.ok and chat_server.last_headers["Authorization"] == "Bearer not-needed"


def test_unknown_option_is_a_clear_error(tmp_path):
    path = write_config(tmp_path, "http://127.0.0.1:9/v1", max_concurency=4)
    with pytest.raises(ModelConfigError, match=r"keyed.*max_concurency: Extra inputs are not permitted"):
        OpenAIModel(load_config_file(path))


def test_base_url_must_be_http():
    config = ModelConfig(name="x", backend="openai", base_url="127.0.0.1:8000", model="m")
    with pytest.raises(ModelConfigError, match="base_url must be an http"):
        OpenAIModel(config)


def test_deployment_local_or_api(monkeypatch):
    monkeypatch.setenv("WAFERSAGE_TEST_KEY", SECRET)
    local = OpenAIModel(ModelConfig(name="l", backend="openai", base_url="http://localhost:8000/v1", model="m"))
    remote = OpenAIModel(ModelConfig(name="r", backend="openai", base_url="https://api.openai.com/v1", model="m",
                                     api_key_env="WAFERSAGE_TEST_KEY"))
    assert (local.deployment, remote.deployment) == ("local", "api")
    assert local.max_concurrency == 16 and local.current_concurrency == 16


@pytest.mark.parametrize("name,variable", [("gemini-3-flash", "GEMINI_API_KEY"), ("gpt-5-mini", "OPENAI_API_KEY"),
                                           ("qwen3-vl-vllm", None)])
def test_shipped_configs_are_valid(name, variable, monkeypatch):
    monkeypatch.setenv("WAFERSAGE_MODELS_DIR", str(REPO / "configs" / "models"))
    if variable:
        monkeypatch.setenv(variable, SECRET)
    config = resolve(name)
    model = load_model(config)
    assert isinstance(model, OpenAIModel) and model.name == name
    assert model.options.price_per_million.input >= 0 and model.options.image_max_side == 512
    assert model.deployment == ("local" if variable is None else "api")
