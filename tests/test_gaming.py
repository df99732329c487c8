"""The degenerate-answer suite and the corruption ladder on a benchmark built by build_benchmark."""
from __future__ import annotations

import numpy as np
import pytest

from wafersage.harness.gaming import STRATEGIES, corrupt, corruption_ladder, run_strategies
from wafersage.harness.rules import RuleScorer
from wafersage.tasks.benchmark import Benchmark


@pytest.fixture(scope="module")
def bench_and_scorer(scorer_bench):
    bench = Benchmark.load(scorer_bench)
    return bench, RuleScorer(bench.rubrics)


def test_every_degenerate_strategy_scores_at_most_15_percent_of_the_oracle(bench_and_scorer):
    bench, scorer = bench_and_scorer
    results = {r.strategy: r for r in run_strategies(bench.items(), scorer, seed=0)}
    assert results["oracle"].mean >= 9.0
    assert set(STRATEGIES) <= set(results)
    for name in STRATEGIES:
        assert results[name].share_of_oracle <= 0.15, (name, results[name])


def test_corruption_ladder_drops_strictly(bench_and_scorer):
    bench, scorer = bench_and_scorer
    ladder = corruption_ladder(bench.items(), scorer, max_facts=4)
    assert all(np.diff(ladder) < 0), ladder


def test_corrupt_replaces_facts(bench_and_scorer):
    bench, scorer = bench_and_scorer
    spatial = next(it for it in bench.items() if it.category == "spatial" and "o'clock" in it.answer)
    once = corrupt(spatial, scorer.rubric_for(spatial), spatial.answer, 1)
    assert once != spatial.answer
    consistency = next(it for it in bench.items() if it.category == "consistency")
    flipped = corrupt(consistency, scorer.rubric_for(consistency), consistency.answer, 1)
    assert flipped.split()[0].strip(".,").lower() != consistency.answer.split()[0].strip(".,").lower()
    assert scorer.score(consistency, flipped).score == 0.0
