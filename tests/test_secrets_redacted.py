"""Secrets in a model config (a key in base_url's query or user:password, headers and tokens in extra_body, the
API key variable) never reach a file or the terminal: eval, resume, score with a judge, calibrate, report, compare
and both exports run against the real test server, and every file they write is searched for each secret."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from bench_factory import make_bench
from click.testing import CliRunner

from judge_server import judge_reply
from wafersage.cli import main
from wafersage.harness.run.cache import config_fingerprint
from wafersage.models.config import REDACTED, ModelConfig, redact
from wafersage.models.registry import load_model
from wafersage.models.testing.server import ChatCompletionsServer

SECRETS = {
    "query": "sk-query-1f2e3d4c5b6a", "header": "sk-header-99aa88bb77cc", "x_api_key": "sk-xapi-0a1b2c3d4e5f",
    "nested_token": "tok-nested-5e6f7a8b9c0d", "judge_query": "sk-judge-7c6b5a4d3e2f", "env": "sk-env-a1b2c3d4e5f6",
    "password": "pw-in-url-1a2b3c4d",
}


def write_config(path: Path, name: str, url: str, *, query: str, header: str) -> str:
    config = {"name": name, "backend": "openai", "base_url": f"{url}?key={query}&alt=json", "model": "m",
              "api_key_env": "WAFERSAGE_TEST_SECRET_KEY", "max_retries": 0, "timeout": 10,
              "extra_body": {"metadata": {"headers": {"Authorization": f"Bearer {header}",
                                                      "x-api-key": SECRETS["x_api_key"]},
                                          "session": {"accessToken": SECRETS["nested_token"]}}}}
    path.write_text(yaml.safe_dump(config))
    return str(path)


def cli(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code in (0, 1), result.output  # 1: the gate's verdict
    return result.output


def test_redact_covers_urls_headers_and_nested_fields():
    config = {"base_url": f"https://user:{SECRETS['password']}@api.example.com/v1?key={SECRETS['query']}&v=2",
              "api_key_env": "GEMINI_API_KEY", "max_tokens": 5,
              "extra_body": {"headers": {"X-Goog-Api-Key": SECRETS["header"]}, "items": [{"apiKey": "s"}],
                             "note": f"sent as Bearer {SECRETS['nested_token']}", "budget_tokens": 100}}
    redacted = redact(config)
    assert redacted["base_url"] == f"https://{REDACTED}@api.example.com/v1?key={REDACTED}&v=2"
    assert redacted["extra_body"] == {"headers": {"X-Goog-Api-Key": REDACTED}, "items": [{"apiKey": REDACTED}],
                                      "note": f"sent as Bearer {REDACTED}", "budget_tokens": 100}
    assert redacted["api_key_env"] == "GEMINI_API_KEY" and redact(redacted) == redacted
    assert redact({"base_url": "http://127.0.0.1:8000/v1?"}) == {"base_url": "http://127.0.0.1:8000/v1?"}
    rotated = ModelConfig(name="m", backend="openai", **(config | {"base_url": config["base_url"].replace("sk", "k")}))
    assert config_fingerprint(ModelConfig(name="m", backend="openai", **config)) == config_fingerprint(rotated)


def test_reprs_and_offline_refusals_show_no_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("WAFERSAGE_TEST_SECRET_KEY", SECRETS["env"])
    url = f"https://user:{SECRETS['password']}@api.example.com/v1"
    spec = write_config(tmp_path / "m.yaml", "remote", url, query=SECRETS["query"], header=SECRETS["header"])
    assert not [s for s in SECRETS.values() if s in repr(load_model(spec))]
    bench = make_bench(tmp_path / "bench")
    result = CliRunner().invoke(main, ["eval", "--bench", str(bench), "--model", spec, "--offline",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "offline mode refuses endpoint" in result.output
    assert not [s for s in SECRETS.values() if s in result.output]


@pytest.mark.slow
def test_no_file_written_by_eval_score_report_or_export_holds_a_secret(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WAFERSAGE_TEST_SECRET_KEY", SECRETS["env"])
    bench = make_bench(tmp_path / "bench", n_wafers=8)
    runs = tmp_path / "runs"
    outputs = []
    with ChatCompletionsServer() as model_server, ChatCompletionsServer(reply=judge_reply) as judge_server:
        model = write_config(tmp_path / "model.yaml", "keyed-vlm", model_server.url, query=SECRETS["query"],
                             header=SECRETS["header"])
        judge = write_config(tmp_path / "judge.yaml", "keyed-judge", judge_server.url,
                             query=SECRETS["judge_query"], header=SECRETS["header"])
        for spec, out in ((model, "keyed"), ("oracle", "oracle"), ("random", "random")):
            outputs.append(cli("eval", "--bench", bench, "--model", spec, "--out", runs / out, "--no-progress"))
        assert model_server.counts["ok"] > 0 and model_server.payloads[-1]["metadata"]["headers"]
        resumed = CliRunner().invoke(main, ["eval", "--bench", str(bench), "--model", model, "--out",
                                            str(runs / "keyed"), "--no-progress"])
        assert resumed.exit_code == 0, resumed.output  # the redacted run.json still matches the config
        outputs.append(resumed.output)
        for run in ("keyed", "oracle", "random"):
            outputs.append(cli("score", runs / run, "--judge", judge))
        outputs.append(cli("calibrate", "--run", runs / "keyed", "--run", runs / "oracle", "--run", runs / "random",
                           "--judge", judge, "--folds", "2", "--iters", "2", "--screen", "20",
                           "--out", tmp_path / "calibration.json"))
        for run in ("keyed", "oracle", "random"):
            outputs.append(cli("score", runs / run, "--judge", judge, "--calibration", tmp_path / "calibration.json"))
    assert judge_server.counts["ok"] > 0
    outputs.append(cli("report", runs / "keyed", runs / "oracle", runs / "random", "--out", tmp_path / "board.html",
                       "--csv", tmp_path / "board.csv", "--json", tmp_path / "board.json", "--markdown",
                       tmp_path / "board.md", "--calibration", tmp_path / "calibration.json"))
    outputs.append(cli("compare", runs / "oracle", runs / "keyed", "--junit", tmp_path / "gate.xml",
                       "--markdown", tmp_path / "gate.md"))
    outputs.append(cli("export", "lm-eval", "--bench", bench, "--out", tmp_path / "lm",
                       "--calibration", tmp_path / "calibration.json"))
    outputs.append(cli("export", "hf", "--bench", bench, "--out", tmp_path / "hf"))

    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name not in ("model.yaml", "judge.yaml")]
    assert {"run.json", "summary.json", "calibration.json", "board.html", "wafersage_task.json"} <= \
        {p.name for p in written}
    leaks = [(p.relative_to(tmp_path), name) for p in written for name, secret in SECRETS.items()
             if secret.encode() in p.read_bytes()]
    leaks += [("terminal", name) for text in outputs for name, secret in SECRETS.items() if secret in text]
    assert not leaks
    assert (runs / "keyed" / "run.json").read_text().count(f"key={REDACTED}") == 1
