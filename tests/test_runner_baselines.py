"""The runner end to end with the built-in baselines: run folders, resume, torn lines, refusals, CLI exit codes."""
from __future__ import annotations

import json

import pytest
from bench_factory import make_bench
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.harness.run.estimate import CostEstimate
from wafersage.harness.run.folder import SAMPLES, RunFolderError, load_run, read_samples
from wafersage.harness.run.runner import EvalUsageError, run_eval
from wafersage.tasks.bench.folder import Benchmark, BenchmarkError


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    return make_bench(tmp_path_factory.mktemp("bench"))


def item_ids(run_dir) -> list[tuple[str, int]]:
    samples, _ = read_samples(run_dir / SAMPLES)
    return [(s.item_id, s.repeat) for s in samples]


def test_oracle_run_end_to_end(bench_dir, tmp_path):
    out = tmp_path / "runs" / "oracle"
    info = run_eval(bench_dir, "oracle", out_dir=out, progress=False)
    bench = Benchmark.load(bench_dir)
    test_items = bench.items("test")
    assert (info.n_items, info.n_ok, info.n_failed) == (len(test_items), len(test_items), 0)
    assert info.bench_hash == bench.hash and info.deployment == "baseline" and info.finished_at
    assert "wafersage" in info.packages and info.model["backend"] == "oracle"
    run = load_run(out)
    assert run.info == info
    by_id = {s.item_id: s for s in run.samples}
    assert {i.id: i.answer for i in test_items} == {k: s.response.text for k, s in by_id.items()}
    first = by_id[test_items[0].id]
    assert first.request.messages[0]["role"] == "system" and first.request.image == test_items[0].image
    assert first.request.image_size is None  # baselines never send the image


def test_resume_after_a_partial_run_adds_only_missing_items(bench_dir, tmp_path):
    out = tmp_path / "run"
    run_eval(bench_dir, "random", out_dir=out, limit=4, progress=False)
    before = (out / SAMPLES).read_text().splitlines()
    info = run_eval(bench_dir, "random", out_dir=out, progress=False)
    after = (out / SAMPLES).read_text().splitlines()
    assert after[:4] == before  # finished samples are kept as they were
    ids = item_ids(out)
    assert len(ids) == len(set(ids)) == info.n_items == info.n_ok


def test_a_torn_last_line_is_dropped_and_its_item_rerun(bench_dir, tmp_path):
    out = tmp_path / "run"
    info = run_eval(bench_dir, "oracle", out_dir=out, progress=False)
    lines = (out / SAMPLES).read_text().splitlines(keepends=True)
    torn = lines[-1][: len(lines[-1]) // 2]
    (out / SAMPLES).write_text("".join(lines[:-1]) + torn)
    samples, was_torn = read_samples(out / SAMPLES)
    assert was_torn and len(samples) == info.n_items - 1
    again = run_eval(bench_dir, "oracle", out_dir=out, progress=False)
    ids = item_ids(out)
    assert again.n_ok == info.n_items and len(ids) == len(set(ids)) == info.n_items
    assert (out / SAMPLES).read_text().endswith("\n")


def test_a_damaged_middle_line_names_the_file_and_line(bench_dir, tmp_path):
    out = tmp_path / "run"
    run_eval(bench_dir, "oracle", out_dir=out, progress=False)
    lines = (out / SAMPLES).read_text().splitlines(keepends=True)
    lines[1] = "{not json\n"
    (out / SAMPLES).write_text("".join(lines))
    with pytest.raises(RunFolderError, match=r"samples.jsonl:2: .*delete that line"):
        run_eval(bench_dir, "oracle", out_dir=out, progress=False)


def test_refuses_a_folder_of_another_model_benchmark_or_split(bench_dir, tmp_path):
    out = tmp_path / "run"
    run_eval(bench_dir, "constant", out_dir=out, limit=2, progress=False)
    with pytest.raises(EvalUsageError, match="different model config"):
        run_eval(bench_dir, "random", out_dir=out, progress=False)
    with pytest.raises(EvalUsageError, match="different model config"):
        run_eval(bench_dir, "constant", out_dir=out, progress=False, image_max_side=64)
    with pytest.raises(EvalUsageError, match="split 'test', not 'train'"):
        run_eval(bench_dir, "constant", out_dir=out, split="train", progress=False)
    other = make_bench(tmp_path / "other", n_wafers=2, name="other")
    with pytest.raises(EvalUsageError, match="made with benchmark tiny-bench"):
        run_eval(other, "constant", out_dir=out, progress=False)


def test_repeats_sample_each_item_n_times_and_extend_on_resume(bench_dir, tmp_path):
    out = tmp_path / "run"
    info = run_eval(bench_dir, "random", out_dir=out, repeats=2, progress=False)
    test_ids = [item.id for item in Benchmark.load(bench_dir).items("test")]
    assert sorted(item_ids(out)) == sorted((i, r) for i in test_ids for r in (0, 1))
    assert info.n_ok == 2 * info.n_items
    seeds = {(s.item_id, s.repeat): s.request.params["seed"] for s in load_run(out).samples}
    assert seeds[(test_ids[0], 0)] == 0 and seeds[(test_ids[0], 1)] == 1
    info = run_eval(bench_dir, "random", out_dir=out, repeats=3, progress=False)
    assert info.n_ok == 3 * info.n_items and len(item_ids(out)) == 3 * info.n_items


def test_dry_run_estimates_without_writing(bench_dir, tmp_path):
    out = tmp_path / "run"
    estimate = run_eval(bench_dir, "oracle", out_dir=out, dry_run=True)
    assert isinstance(estimate, CostEstimate) and not out.exists()
    assert estimate.n_requests == len(Benchmark.load(bench_dir).items("test"))
    assert estimate.image_tokens == 0 and estimate.cost_usd == 0.0  # baselines read no image and are free
    assert estimate.text_tokens > 0 and estimate.output_tokens_max == 512 * estimate.n_requests


def test_bad_options_are_usage_errors(bench_dir, tmp_path):
    with pytest.raises(EvalUsageError, match="unknown split"):
        run_eval(bench_dir, "oracle", split="dev", out_dir=tmp_path / "r")
    with pytest.raises(EvalUsageError, match="--concurrency"):
        run_eval(bench_dir, "oracle", concurrency=0, out_dir=tmp_path / "r")
    with pytest.raises(BenchmarkError, match="manifest"):
        run_eval(tmp_path, "oracle", out_dir=tmp_path / "r")


def test_cli_exit_codes_and_summary(bench_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = CliRunner()
    done = cli.invoke(main, ["eval", "--bench", str(bench_dir), "--model", "oracle", "--no-progress"])
    assert done.exit_code == 0, done.output
    assert "9 ok, 0 failed of 9" in done.output and "runs/tiny-bench/oracle" in done.output
    assert json.loads((tmp_path / "runs/tiny-bench/oracle/run.json").read_text())["n_ok"] == 9
    unknown = cli.invoke(main, ["eval", "--bench", str(bench_dir), "--model", "orakle"])
    assert unknown.exit_code == 2 and "Did you mean: oracle" in unknown.output
    no_bench = cli.invoke(main, ["eval", "--bench", str(tmp_path / "none"), "--model", "oracle"])
    assert no_bench.exit_code == 2 and "manifest.json" in no_bench.output
    dry = cli.invoke(main, ["eval", "--bench", str(bench_dir), "--model", "random", "--dry-run"])
    assert dry.exit_code == 0 and "nothing was called" in dry.output
    assert not (tmp_path / "runs/tiny-bench/random").exists()
