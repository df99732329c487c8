"""`wafersage demo` end to end through the CLI: benchmark with a train split, the baselines plus a model found by its
API key (served by the real OpenAI-compatible test server on 127.0.0.1), scores, the HTML leaderboard and exports;
a rerun reuses everything (no new model calls)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from wafersage.cli import main
from wafersage.demo import STEPS
from wafersage.harness.scoring.score_run import Summary
from wafersage.models.testing.server import ChatCompletionsServer
from wafersage.reports.leaderboard import Leaderboard
from wafersage.tasks.bench.folder import Benchmark

REPO = Path(__file__).resolve().parents[1]
ANSWER = "The failing dies cluster in the center of the wafer."


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    models = root / "models"
    models.mkdir()
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("WAFERSAGE_MODELS_DIR", str(models))
    monkeypatch.setenv("WAFERSAGE_TEST_DEMO_KEY", "sk-test")
    monkeypatch.delenv("WAFERSAGE_TEST_ABSENT_KEY", raising=False)
    args = ["demo", "--config", str(REPO / "configs" / "synth" / "demo.yaml"), "--work", str(root / "work"),
            "--out", str(root / "leaderboard.html")]
    with ChatCompletionsServer(reply_text=ANSWER) as server:
        (models / "local-vlm.yaml").write_text(
            f"name: local-vlm\nbackend: openai\nbase_url: {server.url}\nmodel: m\n"
            "api_key_env: WAFERSAGE_TEST_DEMO_KEY\nmax_retries: 1\ntimeout: 10\n")
        (models / "paid-api.yaml").write_text(
            "name: paid-api\nbackend: openai\nbase_url: https://api.example.com/v1\nmodel: m\n"
            "api_key_env: WAFERSAGE_TEST_ABSENT_KEY\n")
        first = CliRunner().invoke(main, args, catch_exceptions=False)
        calls = server.chat_requests
        second = CliRunner().invoke(main, args, catch_exceptions=False)
        calls_again = server.chat_requests - calls
    monkeypatch.undo()
    return root, first, second, calls, calls_again


def test_demo_builds_evaluates_scores_and_writes_the_leaderboard(demo):
    root, first, _, calls, _ = demo
    assert first.exit_code == 0, first.output
    for number, (title, _) in enumerate(STEPS, 1):
        assert f"[{number}/{len(STEPS)}] {title}" in first.output
    bench = Benchmark.load(root / "work" / "bench")
    assert sum(1 for _ in bench.wafers("train")) > 0 and bench.items("test")  # the specialist has maps to learn
    n_test = len(bench.items("test"))
    assert calls == n_test  # the key-detected model answered every test question over HTTP
    board = Leaderboard.model_validate_json((root / "work" / "leaderboard.json").read_text())
    ranked = [row.model for row in board.rows]
    assert set(ranked) == {"oracle", "specialist", "blind-question", "blind-prior", "random", "constant",
                           "local-vlm"} and ranked[0] == "oracle"
    assert all(row.n_items == n_test and row.n_failed == 0 for row in board.rows)
    deployment = {row.model: row.deployment for row in board.rows}
    assert deployment["local-vlm"] == "local" and deployment["oracle"] == "baseline"
    assert ranked.index("specialist") < ranked.index("random")
    assert ranked.index("specialist") < min(ranked.index("blind-prior"), ranked.index("blind-question"))
    html = (root / "leaderboard.html").read_text()
    assert "local-vlm" in html and "specialist" in html and "data:image/png;base64," in html
    for name in ranked:
        summary = Summary.model_validate_json(
            (root / "work" / "runs" / bench.hash[:12] / name / "summary.json").read_text())
        assert summary.split == "test" and summary.bench_hash == bench.hash
    assert (root / "work" / "leaderboard.md").read_text().count("\n| ") >= 6
    assert (root / "work" / "leaderboard.csv").read_text().startswith("rank,")
    with Image.open(root / "work" / "maps.png") as sheet:
        assert sheet.width > 500
    output = " ".join(first.output.split())
    assert "paid-api: set WAFERSAGE_TEST_ABSENT_KEY to include it" in output
    assert "vllm serve" in output and "--judge" in output and "wafersage compare" in output
    assert "Leaderboard:" in output and "demo took" in output


def test_demo_rerun_reuses_the_benchmark_and_answers(demo):
    root, first, second, _, calls_again = demo
    assert second.exit_code == 0, second.output
    assert "unchanged, reused" in second.output and calls_again == 0
    again = json.loads((root / "work" / "leaderboard.json").read_text())
    assert [r["model"] for r in again["rows"]]  # written again from the same runs


def test_demo_score_step_uses_the_judge(tmp_path, monkeypatch):
    from judge_server import judge_reply, judge_yaml
    from report_factory import make_runs
    from rich.console import Console

    from wafersage.demo import DemoContext, step_leaderboard, step_score

    runs = make_runs(tmp_path / "data")
    monkeypatch.setenv("WAFERSAGE_TEST_JUDGE_KEY", "sk-test")
    with ChatCompletionsServer(reply=judge_reply) as server:
        ctx = DemoContext(work=tmp_path / "work", out=tmp_path / "board.html", config_path=tmp_path / "unused.yaml",
                          console=Console(file=io.StringIO()),
                          judge=judge_yaml(tmp_path, server.url))
        ctx.runs = {name: runs[name] for name in ("oracle", "constant")}
        assert "with judge" in step_score(ctx)
        assert server.chat_requests > 0  # identical prompts (the tiny bench repeats its questions) are cached
    for folder in ctx.runs.values():
        summary = Summary.model_validate_json((folder / "summary.json").read_text())
        assert summary.judge.n == 24 and summary.n_judge_unscored == 0
    step_leaderboard(ctx)
    assert ctx.board.score_kind == "judge" and [r.model for r in ctx.board.rows] == ["oracle", "constant"]
