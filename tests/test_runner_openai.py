"""The runner with the openai backend against the real test server: faults, cache, resume, repeats, kill -9."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from bench_factory import make_bench
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.harness.run.estimate import price_table
from wafersage.harness.run.folder import SAMPLES, load_run, read_samples
from wafersage.harness.run.runner import run_eval
from wafersage.models.config import ModelConfigError, load_config_file
from wafersage.models.testing.server import ChatCompletionsServer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    return make_bench(tmp_path_factory.mktemp("bench"))


@pytest.fixture
def server():
    with ChatCompletionsServer(retry_after_s=0, hang_s=3) as srv:
        yield srv


def model_yaml(folder: Path, url: str, **options) -> Path:
    config = {"name": "test-vlm", "backend": "openai", "base_url": url, "model": "wafersage-test",
              "timeout": 0.5, "max_retries": 1, "price_per_million": {"input": 1.0, "output": 2.0}, **options}
    path = folder / "test-vlm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def units(run_dir: Path) -> list[tuple[str, int]]:
    samples, torn = read_samples(run_dir / SAMPLES)
    assert not torn
    return [(s.item_id, s.repeat) for s in samples]


def test_answers_tokens_cost_and_sent_image_are_recorded(bench_dir, tmp_path, server):
    spec = str(model_yaml(tmp_path, server.url))
    info = run_eval(bench_dir, spec, out_dir=tmp_path / "run", image_max_side=64, image_format="jpeg",
                    progress=False)
    assert info.n_ok == info.n_items == server.counts["ok"] and info.deployment == "local"
    sample = load_run(tmp_path / "run").samples[0]
    assert sample.response.text.startswith("echo: ") and sample.response.cost_usd > 0
    assert max(sample.request.image_size) == 64 and sample.request.image_format == "jpeg"
    assert sample.response.image_bytes_sent > 0 and server.counts["images"] == info.n_items


def test_rerunning_a_finished_run_makes_no_calls(bench_dir, tmp_path, server):
    spec = str(model_yaml(tmp_path, server.url))
    run_eval(bench_dir, spec, out_dir=tmp_path / "run", progress=False)
    calls = server.chat_requests
    info = run_eval(bench_dir, spec, out_dir=tmp_path / "run", progress=False)
    assert server.chat_requests == calls and info.n_ok == info.n_items
    # a new folder on the same cache answers from the cache, marked as such
    other = run_eval(bench_dir, spec, out_dir=tmp_path / "copy", progress=False)
    assert server.chat_requests == calls and other.n_ok == info.n_items
    assert all(s.cached for s in load_run(tmp_path / "copy").samples)


def test_faults_end_ok_or_failed_with_reason_and_exit_1(bench_dir, tmp_path):
    with ChatCompletionsServer(fault_rate=0.6, retry_after_s=0, hang_s=3, seed=3) as srv:
        spec = str(model_yaml(tmp_path, srv.url))
        result = CliRunner().invoke(main, ["eval", "--bench", str(bench_dir), "--model", spec, "--out",
                                           str(tmp_path / "run"), "--concurrency", "4", "--no-progress"])
        assert sum(srv.counts[k] for k in ("rate_limit", "server_error", "hang", "truncated")) > 0
    run = load_run(tmp_path / "run")
    assert len(run.samples) == run.info.n_items and len(set(units(tmp_path / "run"))) == run.info.n_items
    for sample in run.samples:
        assert (sample.ok and sample.response.text) or (sample.response.error and not sample.response.text)
    assert run.failed, "seed 3 at a 60% fault rate fails some items"
    assert result.exit_code == 1 and f"{len(run.failed)} failed" in result.output


def test_errors_are_never_cached_and_rerun_retries_only_them(bench_dir, tmp_path, server):
    spec = str(model_yaml(tmp_path, server.url))
    server.script(["server_error", "server_error"])  # the first item's two attempts (concurrency 1)
    first = run_eval(bench_dir, spec, out_dir=tmp_path / "run", concurrency=1, progress=False)
    assert (first.n_ok, first.n_failed) == (first.n_items - 1, 1)
    failed = load_run(tmp_path / "run").failed
    assert len(failed) == 1 and "HTTP 500" in failed[0].response.error
    calls = server.chat_requests
    again = run_eval(bench_dir, spec, out_dir=tmp_path / "run", progress=False)
    assert server.chat_requests == calls + 1 and again.n_failed == 0
    assert len(units(tmp_path / "run")) == again.n_items  # the failed sample was superseded, not duplicated


def test_retry_errors_reruns_only_failed_items(bench_dir, tmp_path, server):
    spec = str(model_yaml(tmp_path, server.url))
    server.script(["server_error", "server_error"])
    run_eval(bench_dir, spec, out_dir=tmp_path / "run", limit=3, concurrency=1, progress=False)
    calls = server.chat_requests
    info = run_eval(bench_dir, spec, out_dir=tmp_path / "run", retry_errors=True, progress=False)
    assert server.chat_requests == calls + 1  # only the failed one, not the 6 items never run
    assert len(units(tmp_path / "run")) == 3 and info.n_ok == 3 and info.n_failed == info.n_items - 3


def test_repeats_are_separate_calls_with_their_own_cache_keys(bench_dir, tmp_path, server):
    spec = str(model_yaml(tmp_path, server.url))
    info = run_eval(bench_dir, spec, out_dir=tmp_path / "run", repeats=3, progress=False)
    assert server.chat_requests == 3 * info.n_items == info.n_ok
    assert sorted({p["seed"] for p in server.payloads}) == [0, 1, 2]
    run_eval(bench_dir, spec, out_dir=tmp_path / "run", repeats=3, progress=False)
    assert server.chat_requests == 3 * info.n_items


def test_dry_run_makes_no_calls(bench_dir, tmp_path, server, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = str(model_yaml(tmp_path, server.url))
    result = CliRunner().invoke(main, ["eval", "--bench", str(bench_dir), "--model", spec, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert server.chat_requests == 0 and not (tmp_path / "runs").exists()
    assert "nothing was called" in result.output and "cost           ~$0.00" in result.output


def test_a_price_table_reads_the_same_in_dry_run_and_eval(bench_dir, tmp_path, server):
    spec = str(model_yaml(tmp_path, server.url, price_per_million={"input": 0.5}))  # no output price: it costs 0
    estimate = run_eval(bench_dir, spec, dry_run=True)
    assert estimate.price_per_million == {"input": 0.5, "output": 0.0} and server.chat_requests == 0
    assert estimate.cost_usd == estimate.cost_usd_max == pytest.approx(0.5 * estimate.input_tokens / 1e6)
    run_eval(bench_dir, spec, out_dir=tmp_path / "run", progress=False)
    responses = [s.response for s in load_run(tmp_path / "run").samples]
    assert all(r.cost_usd == pytest.approx(0.5 * r.input_tokens / 1e6) and r.output_tokens for r in responses)

    bad = str(model_yaml(tmp_path, server.url, price_per_million={"input": "cheap"}))
    for price in (lambda: run_eval(bench_dir, bad, dry_run=True),
                  lambda: price_table(load_config_file(bad))):  # the estimate's own check, for any caller
        with pytest.raises(ModelConfigError, match=r"'test-vlm'.*price_per_million.*\{input: USD, output: USD\}"):
            price()
    result = CliRunner().invoke(main, ["eval", "--bench", str(bench_dir), "--model", bad, "--dry-run"])
    assert result.exit_code == 2 and "price_per_million" in result.output


def test_offline_refuses_a_remote_endpoint_before_any_traffic(bench_dir, tmp_path):
    spec = str(model_yaml(tmp_path, "http://api.example.com/v1"))
    result = CliRunner().invoke(main, ["eval", "--bench", str(bench_dir), "--model", spec, "--offline",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "offline mode refuses endpoint" in result.output
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_missing_api_key_is_a_usage_error_naming_the_variable(bench_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("WAFERSAGE_TEST_KEY", raising=False)
    spec = str(model_yaml(tmp_path, "http://127.0.0.1:9/v1", api_key_env="WAFERSAGE_TEST_KEY"))
    result = CliRunner().invoke(main, ["eval", "--bench", str(bench_dir), "--model", spec,
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "WAFERSAGE_TEST_KEY" in result.output


def _eval_process(bench: Path, spec: str, out: Path) -> subprocess.Popen:
    command = [sys.executable, "-c", "from wafersage.cli import main; main()", "eval", "--bench", str(bench),
               "--model", spec, "--out", str(out), "--concurrency", "4", "--no-progress"]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_loses_and_duplicates_nothing(tmp_path):
    bench = make_bench(tmp_path / "bench", n_wafers=16)
    out = tmp_path / "run"
    with ChatCompletionsServer(latency_ms=150) as srv:
        spec = str(model_yaml(tmp_path, srv.url, timeout=5))
        process = _eval_process(bench, spec, out)
        deadline = time.monotonic() + 60
        while _lines(out / SAMPLES) < 8 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
        written = _lines(out / SAMPLES)
        rerun = _eval_process(bench, spec, out)
        output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, output
    run = load_run(out)
    expected = {(f"w{w:03d}-q{q}", 0) for w in range(1, 16) for q in range(3)}
    assert sorted(units(out)) == sorted(expected)  # every item exactly once
    assert all(s.ok for s in run.samples) and run.info.finished_at and written < len(expected)
