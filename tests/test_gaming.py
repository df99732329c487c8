"""The degenerate-answer suite, the blind adversaries fitted on the train split, and the corruption ladder, on the
demo benchmark built by build_benchmark."""
from __future__ import annotations

import numpy as np
import pytest

from wafersage.harness.scoring.gaming import FITTED_STRATEGIES, STRATEGIES, corrupt, corruption_ladder, run_strategies
from wafersage.harness.scoring.rules import RuleScorer
from wafersage.tasks.bench.folder import Benchmark

#: train wafers the blind adversaries learn from (a sample keeps the suite fast; more only helps them a little)
TRAIN_WAFERS = 60


@pytest.fixture(scope="module")
def bench_and_scorer(scorer_bench):
    bench = Benchmark.load(scorer_bench)
    return bench, RuleScorer(bench.rubrics)


@pytest.fixture(scope="module")
def results(bench_and_scorer):
    bench, scorer = bench_and_scorer
    train = bench.items("train")
    keep = set(sorted({it.wafer_id for it in train})[:TRAIN_WAFERS])
    found = run_strategies(bench.items("test"), scorer, seed=0, train_items=[it for it in train if it.wafer_id in keep])
    return {r.strategy: r for r in found}


def test_every_degenerate_strategy_scores_at_most_15_percent_of_the_oracle(results):
    assert results["oracle"].mean >= 9.0
    assert set(STRATEGIES) | set(FITTED_STRATEGIES) <= set(results)
    for name in STRATEGIES:
        assert results[name].share_of_oracle <= 0.15, (name, results[name])


def test_blind_adversaries_fitted_on_train_stay_far_below_the_oracle(results):
    # before exact matching, item targets and contradiction checks a blind policy reached ~66% of the oracle;
    # 0.55 since balanced yes/no premises put the verdict at the coin's 5/10 (the wording of premises with
    # thresholds from the wafer's own value misled the fitted verdict below it on this benchmark: 3.7)
    for name in FITTED_STRATEGIES:
        result = results[name]
        assert result.share_of_oracle <= 0.55, (name, result)
        # a coin-flip verdict (a bare right one earns 8, one backed by facts 10): about 4-5 on 600 wafers
        # (bench_blind.py); 6 leaves room for the ~42 yes/no items of this test split (standard error ~0.7)
        assert result.by_category["consistency"] <= 6.0, (name, result)
    # they are real adversaries: they beat the fixed sentence and the random geometry
    assert results["constant_per_category"].mean > 2 * results["random_type"].mean


@pytest.mark.xfail(strict=True, reason="the fitted adversaries earn ~35-41% of the oracle (benchmarks/bench_blind.py) "
                                       "and the judge 26-27% on demo v4 (benchmarks/panels/panel_j). Guessing each "
                                       "template's most common train value is exactly right on ~22% of the items "
                                       "(the chance floor), and the best template mix within the paper's item counts "
                                       "would still leave ~15-16.5%: with balanced yes/no items and 2-3 morphology "
                                       "questions per wafer, 15% is out of reach for any scorer that pays a right "
                                       "answer; see README 'The chance floor'")
def test_blind_adversaries_reach_the_15_percent_target(results):
    assert all(results[name].share_of_oracle <= 0.15 for name in FITTED_STRATEGIES)


def test_corruption_ladder_drops_strictly(bench_and_scorer):
    bench, scorer = bench_and_scorer
    ladder = corruption_ladder(bench.items("test"), scorer, max_facts=4)
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
