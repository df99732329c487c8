"""``wafersage eval --workers N``: N processes answer one run; the result is the folder one process makes, shards a
stopped coordinator left behind are merged, and each worker asks with its share of the limits."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from bench_factory import make_bench
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.harness.run.folder import SAMPLES, RunFolderBusy, folder_lock, load_run, read_samples
from wafersage.harness.run.runner import EvalUsageError, run_eval
from wafersage.harness.run.workers import SHARDS, merge_shards, worker_config
from wafersage.models.config import ModelConfig
from wafersage.models.testing.server import ChatCompletionsServer


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    return make_bench(tmp_path_factory.mktemp("bench"), n_wafers=9)


def model_yaml(folder: Path, url: str) -> str:
    path = folder / "vlm.yaml"
    path.write_text(yaml.safe_dump({"name": "vlm", "backend": "openai", "base_url": url, "model": "wafersage-test",
                                    "max_concurrency": 4, "timeout": 10, "price_per_million": {"input": 1.0}}))
    return str(path)


def content(folder: Path) -> tuple[list[str], dict, dict]:
    """What a run folder says, without what differs between any two runs (times, latencies, the order of lines)."""
    run = load_run(folder)
    info = run.info.model_dump(exclude={"started_at", "finished_at", "git_commit"})
    samples = {}
    for sample in run.samples:
        record = sample.model_dump()
        record["response"]["latency_s"] = 0
        samples[sample.item_id, sample.repeat] = record
    return sorted(p.name for p in folder.iterdir()), info, samples


def test_two_workers_make_the_run_one_process_makes(bench_dir, tmp_path):
    with ChatCompletionsServer(latency_ms=5) as server:
        spec = model_yaml(tmp_path, server.url)
        one = run_eval(bench_dir, spec, out_dir=tmp_path / "one", repeats=2, concurrency=4, progress=False,
                       cache_path=tmp_path / "one.sqlite")
        calls = server.chat_requests
        result = CliRunner().invoke(main, ["eval", "--bench", str(bench_dir), "--model", spec, "--repeats", "2",
                                           "--out", str(tmp_path / "two"), "--workers", "2", "--concurrency", "4",
                                           "--cache", str(tmp_path / "two.sqlite"), "--no-progress"])
        assert result.exit_code == 0, result.output
        assert server.chat_requests == 2 * calls and server.max_in_flight <= 4  # each unit asked once, limits shared
    assert one.n_ok == one.n_items * 2 == 48
    assert content(tmp_path / "one") == content(tmp_path / "two")
    lines = read_samples(tmp_path / "two" / SAMPLES)[0]
    assert len(lines) == 48 and not (tmp_path / "two" / SHARDS).exists()


def test_shards_left_by_a_stopped_coordinator_are_merged_by_the_next_command(bench_dir, tmp_path):
    with ChatCompletionsServer() as server:
        spec = model_yaml(tmp_path, server.url)
        run_eval(bench_dir, spec, out_dir=tmp_path / "run", cache_path=tmp_path / "a.sqlite", progress=False)
        samples_path = tmp_path / "run" / SAMPLES
        lines = samples_path.read_bytes().splitlines(keepends=True)
        shard = tmp_path / "run" / SHARDS / "worker-1"
        shard.mkdir(parents=True)
        (shard / SAMPLES).write_bytes(b"".join(lines[3:]) + b'{"item_id": "torn')  # as a killed run leaves them
        samples_path.write_bytes(b"".join(lines[:3]))
        calls = server.chat_requests
        with folder_lock(shard), pytest.raises(RunFolderBusy, match="another wafersage process"):
            run_eval(bench_dir, spec, out_dir=tmp_path / "run", cache_path=tmp_path / "b.sqlite", progress=False)
        info = run_eval(bench_dir, spec, out_dir=tmp_path / "run", cache_path=tmp_path / "b.sqlite", progress=False)
        assert server.chat_requests == calls  # every answer was in the run folder or its shard
    assert info.n_ok == info.n_items == len(read_samples(samples_path)[0]) == len(lines)
    assert not (tmp_path / "run" / SHARDS).exists() and merge_shards(tmp_path / "run") == 0


def test_each_worker_gets_its_share_of_the_limits():
    config = ModelConfig(name="m", backend="openai", base_url="http://127.0.0.1:1/v1", model="m",
                         max_concurrency=5, requests_per_minute=600)
    shares = [worker_config(config, k, 2) for k in range(2)]
    assert [c.options["max_concurrency"] for c in shares] == [3, 2]
    assert [c.options["requests_per_minute"] for c in shares] == [300, 300]
    default = ModelConfig(name="m", backend="openai", base_url="http://127.0.0.1:1/v1", model="m")
    assert worker_config(default, 0, 3).options["max_concurrency"] == 6  # 16 by default, split 6/5/5
    assert "tokens_per_minute" not in worker_config(default, 0, 3).options
    assert worker_config(ModelConfig(name="o", backend="oracle"), 1, 2).options == {}


def test_workers_are_refused_for_backends_that_hold_the_weights(bench_dir, tmp_path):
    with pytest.raises(EvalUsageError, match="--workers 2 would load the hf model's weights once per process"):
        run_eval(bench_dir, ModelConfig(name="h", backend="hf", path=str(tmp_path)), workers=2,
                 out_dir=tmp_path / "run")
    result = CliRunner().invoke(main, ["eval", "--bench", str(bench_dir), "--model", "oracle", "--workers", "0",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "--workers must be at least 1" in result.output
    assert json.loads(json.dumps(worker_config(ModelConfig(name="o", backend="oracle"), 0, 2).public()))
