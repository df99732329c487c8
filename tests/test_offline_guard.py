"""The offline guard: only loopback or allow_hosts endpoints, refused at construction before any traffic."""
from __future__ import annotations

import asyncio
import socket

import pytest

from wafersage.models.base import ChatMessage, ModelRequest
from wafersage.models.config import ModelConfig
from wafersage.models.offline import OfflineError, check_endpoint, is_loopback
from wafersage.models.openai_backend import OpenAIModel
from wafersage.models.registry import load_model, resolve
from wafersage.models.testing.server import ChatCompletionsServer


def config(url: str, **common) -> ModelConfig:
    return ModelConfig(name="guarded", backend="openai", base_url=url, model="m", source="guarded.yaml", **common)


def ask_once(model: OpenAIModel):
    async def go():
        try:
            return (await model.generate([ModelRequest(messages=[ChatMessage(role="user", content="hi")])]))[0]
        finally:
            await model.aclose()
    return asyncio.run(go())


def local_non_loopback_address() -> str:
    """This machine's address on its default route (a UDP connect sends nothing); skip where there is none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
        except OSError:
            address = ""
    if not address or is_loopback(address):
        pytest.skip("this machine has no non-loopback IPv4 address to serve on")
    return address


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]", "::ffff:127.0.0.1",
                                  "LOCALHOST"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["example.com", "10.0.0.1", "192.168.1.5", "0.0.0.0", "localhost.evil.com",
                                  "128.0.0.1", "::2", ""])
def test_non_loopback_hosts(host):
    assert not is_loopback(host)


def test_loopback_endpoint_allowed_offline(chat_server):
    model = OpenAIModel(config(chat_server.url, offline=True))
    assert ask_once(model).ok and chat_server.chat_requests == 1


def test_ipv6_loopback_url_allowed():
    check_endpoint("http://[::1]:8000/v1", allow_hosts=[], where="m")


def test_remote_endpoint_refused_with_the_fix():
    with pytest.raises(OfflineError) as caught:
        OpenAIModel(config("https://api.openai.com/v1", offline=True))
    message = str(caught.value)
    assert "guarded.yaml" in message and "api.openai.com" in message
    assert "allow_hosts: [api.openai.com]" in message and "Nothing was sent" in message


def test_allow_hosts_lets_a_named_host_through():
    model = OpenAIModel(config("https://inference.fab.internal/v1", offline=True,
                               allow_hosts=["inference.fab.internal"]))
    assert model.deployment == "api"
    with pytest.raises(OfflineError):
        OpenAIModel(config("https://other.fab.internal/v1", offline=True, allow_hosts=["inference.fab.internal"]))


def test_registry_override_turns_the_guard_on(tmp_path):
    path = tmp_path / "remote.yaml"
    path.write_text("name: remote\nbackend: openai\nbase_url: https://api.example.com/v1\nmodel: m\n")
    assert load_model(str(path)).deployment == "api"  # not offline: allowed
    with pytest.raises(OfflineError, match="remote.yaml"):
        load_model(resolve(str(path), offline=True))


def test_reachable_remote_server_gets_no_traffic_when_offline():
    """A server on this machine's network address answers normally, and offline mode still never reaches it."""
    address = local_non_loopback_address()
    with ChatCompletionsServer(host=address) as server:
        assert ask_once(OpenAIModel(config(server.url))).ok and server.chat_requests == 1
        with pytest.raises(OfflineError):
            OpenAIModel(config(server.url, offline=True))
        assert server.chat_requests == 1
        assert ask_once(OpenAIModel(config(server.url, offline=True, allow_hosts=[address]))).ok
        assert server.chat_requests == 2


def test_a_proxy_from_the_environment_is_used_online_and_ignored_offline(monkeypatch):
    with ChatCompletionsServer() as proxy:  # aiohttp serves the absolute-form request a client sends a proxy
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        online = ask_once(OpenAIModel(config("http://api.invalid:9/v1", max_retries=0)))
        assert online.text == "echo: hi" and proxy.counts["ok"] == 1
        offline = ask_once(OpenAIModel(config("http://api.invalid:9/v1", max_retries=0, offline=True,
                                              allow_hosts=["api.invalid"])))
        assert offline.error.startswith("connection error") and proxy.counts["ok"] == 1  # no proxy offline
