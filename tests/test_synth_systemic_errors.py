"""`wafersage synth` with a model behind the real OpenAI-compatible test server stops at the first systemic error
(credentials refused, endpoint unreachable, a bug in a stage) with a clear message, and exits 1 when more than
--max-failed-share of the wafers failed."""
from __future__ import annotations

import json
import socket

import pytest
import yaml
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.models.testing.server import ChatCompletionsServer
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.synth import vqa_model

CONFIG = {"name": "systemic", "seed": 5, "source": {"kind": "generated", "n": 5, "size": [30, 30],
                                                    "patterns": ["Center", "Scratch"], "mixtures": False},
          "cleaning": {"enabled": False}, "splits": {"train": 0.0, "val": 0.0, "test": 1.0}, "image_size": 64}
KEY_ENV = "WAFERSAGE_TEST_SYNTH_KEY"


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "synth.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def model_yaml(tmp_path, url: str, **extra) -> str:
    path = tmp_path / "vlm.yaml"
    path.write_text(yaml.safe_dump({"name": "vlm", "backend": "openai", "base_url": url, "model": "m", "timeout": 10,
                                    "max_retries": 0, **extra}))
    return str(path)


def synth(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["synth", *map(str, args), "--quiet"])
    return result.exit_code, " ".join(result.output.split())


def test_refused_credentials_stop_the_build_at_the_first_call(config_path, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    out = tmp_path / "bench"
    with ChatCompletionsServer(api_key="sk-right", reply_text="A ring.") as server:
        code, output = synth("--config", config_path, "--out", out, "--describe-model",
                             model_yaml(tmp_path, server.url, api_key_env=KEY_ENV))
    assert code == 1 and "stopped" in output and "HTTP 401" in output and "api_key_env" in output
    assert server.counts["unauthorized"] == 1 and server.chat_requests == 0  # one call, then nothing more
    assert not out.exists() and "sk-wrong" not in output


def test_an_unreachable_endpoint_stops_the_build(config_path, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "bench"
    code, output = synth("--config", config_path, "--out", out, "--writer-model",
                         model_yaml(tmp_path, f"http://127.0.0.1:{port}/v1"))
    assert code == 1 and "connection error" in output and "cannot be reached" in output and "base_url" in output
    assert not out.exists()


def test_a_bug_in_a_stage_stops_the_build_and_names_the_wafer(config_path, tmp_path, monkeypatch):
    def broken(data, rubric, **kwargs):
        raise KeyError("category")

    monkeypatch.setattr(vqa_model, "items_from_json", broken)
    out = tmp_path / "bench"
    with ChatCompletionsServer(reply_text="[]") as server:
        code, output = synth("--config", config_path, "--out", out, "--writer-model", model_yaml(tmp_path, server.url))
    assert code == 1 and "a bug" in output and "wafer gen-5-00000" in output and "KeyError: 'category'" in output
    assert "raised at" in output and "test_synth_systemic_errors.py" in output
    assert server.chat_requests == 1 and not out.exists()


def test_more_failed_wafers_than_allowed_exit_1_and_the_benchmark_keeps_them(config_path, tmp_path):
    out = tmp_path / "bench"
    with ChatCompletionsServer(fault_rate=1.0, fault_mix={"server_error": 1.0}) as server:
        model = model_yaml(tmp_path, server.url)
        code, output = synth("--config", config_path, "--out", out, "--describe-model", model)
        assert code == 1 and "5 of 5 wafers (100%) failed, more than --max-failed-share 0.1" in output
        failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
        assert len(failures) == 5 and {f["stage"] for f in failures} == {"describe"}
        assert all("HTTP 500" in f["reason"] for f in failures)
        code, output = synth("--config", config_path, "--out", out, "--describe-model", model, "--force",
                             "--max-failed-share", 1)
    assert code == 0, output
    assert Benchmark.load(out).manifest["counts"]["failed_wafers"] == 5
