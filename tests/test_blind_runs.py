"""Blind runs and blind baselines: what a model earns without seeing the map, beside what it earns with it."""
from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.harness.run.runner import EvalUsageError, run_eval
from wafersage.harness.scoring.score_run import score_run
from wafersage.models.blind import BlindQuestion, wording
from wafersage.models.testing.server import ChatCompletionsServer
from wafersage.reports.leaderboard import build_leaderboard
from wafersage.reports.results import load_results
from wafersage.tasks.bench.folder import Benchmark


def test_a_blind_run_sends_no_image_and_is_its_own_run(scorer_bench, tmp_path):
    """The same prompt without the image through a real OpenAI-compatible server; another cache key and folder."""
    with ChatCompletionsServer() as server:
        spec = tmp_path / "vlm.yaml"
        spec.write_text(yaml.safe_dump({"name": "vlm", "backend": "openai", "base_url": server.url,
                                        "model": "wafersage-test"}))
        seen = run_eval(scorer_bench, str(spec), out_dir=tmp_path / "sighted", limit=6, progress=False)
        blind = run_eval(scorer_bench, str(spec), out_dir=tmp_path / "blind", limit=6, progress=False,
                         no_image=True)
        images = server.counts["images"]
    assert blind.model_name == f"{seen.model_name} (no image)" and blind.model["no_image"] is True
    samples = [json.loads(line) for line in (tmp_path / "blind" / "samples.jsonl").read_text().splitlines()]
    assert all(s["request"]["image"] is None and s["request"]["image_size"] is None for s in samples)
    assert all(not s["cached"] for s in samples)  # the sighted answers were not reused: another request
    sighted = [json.loads(line) for line in (tmp_path / "sighted" / "samples.jsonl").read_text().splitlines()]
    order = sorted  # samples are written as answers arrive
    assert order((s["item_id"], s["request"]["messages"][1]["content"]) for s in samples) == \
        order((s["item_id"], s["request"]["messages"][1]["content"]) for s in sighted)
    assert images == 6  # the server saw images in the six sighted requests only


def test_baselines_that_read_the_map_have_no_blind_run(scorer_bench, tmp_path):
    for name in ("oracle", "specialist"):
        with pytest.raises(EvalUsageError, match="has no run without the image"):
            run_eval(scorer_bench, name, out_dir=tmp_path / name, limit=2, progress=False, no_image=True)


def test_the_leaderboard_pairs_a_blind_run_with_its_model(scorer_bench, tmp_path):
    runs = []
    for name, blind in (("random", False), ("random", True), ("oracle", False)):
        out = tmp_path / f"{name}{'-blind' if blind else ''}"
        run_eval(scorer_bench, name, out_dir=out, limit=40, progress=False, no_image=blind)
        score_run(out, progress=False)
        runs.append(out)
    board = build_leaderboard(load_results(runs))
    rows = {row.model: row for row in board.rows}
    assert set(rows) == {"random", "oracle"}  # the blind run is shown in its model's row, not ranked
    assert rows["oracle"].blind is None and rows["oracle"].vision_gain is None
    gain = rows["random"].vision_gain  # random answers alike with or without the image
    assert rows["random"].blind is not None and gain.mean_difference == pytest.approx(0.0)
    page = tmp_path / "board.html"
    result = CliRunner().invoke(main, ["report", *map(str, runs), "--out", str(page)])
    assert result.exit_code == 0, result.output
    assert "vision gain" in page.read_text() and "n/a" in page.read_text()


def test_blind_baselines_learn_from_the_train_split_only(scorer_bench, tmp_path):
    bench = Benchmark.load(scorer_bench)
    train = bench.items("train")
    learner = BlindQuestion(train)
    question = next(it for it in bench.items("test") if it.category == "spatial")
    expected = [it.answer for it in train if wording(it.question) == wording(question.question)]
    assert learner(question.category, question.question) in expected
    for name in ("blind-prior", "blind-question"):
        out = tmp_path / name
        info = run_eval(scorer_bench, name, out_dir=out, progress=False)
        assert info.n_ok == len(bench.items("test"))
        summary = score_run(out, progress=False)
        assert 0.5 < summary.rule.value < 6.0  # a floor: priors earn some, far from the oracle's 10
    with pytest.raises(ValueError, match="no train split"):
        BlindQuestion([])
