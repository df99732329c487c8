"""Statistics: wafer-cluster bootstrap, paired comparisons, McNemar, Holm, breakdowns, detection rates."""
from __future__ import annotations

import numpy as np
import pytest

from wafersage.harness.scoring import stats


def clustered(n_wafers=60, per=8, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    wafers = np.repeat([f"w{i}" for i in range(n_wafers)], per)
    values = 5 + shift + np.repeat(rng.normal(0, 1.5, n_wafers), per) + rng.normal(0, 0.5, n_wafers * per)
    return values, wafers


def test_cluster_bootstrap_is_wider_than_a_naive_one_and_seeded():
    values, wafers = clustered()
    clustered_ci = stats.mean_ci(values, wafers, seed=1)
    naive = stats.mean_ci(values, np.arange(len(values)), seed=1)  # every item its own wafer
    assert clustered_ci.low < clustered_ci.value < clustered_ci.high
    assert (clustered_ci.high - clustered_ci.low) > 1.8 * (naive.high - naive.low)
    assert stats.mean_ci(values, wafers, seed=1) == clustered_ci
    assert clustered_ci.n_wafers == 60 and clustered_ci.n == 480


def test_cluster_bootstrap_of_several_statistics():
    values, wafers = clustered()
    mean, spread = stats.cluster_bootstrap([values], wafers, lambda v: np.array([v.mean(), v.std()]),
                                           n_resamples=300)
    assert mean.value == pytest.approx(values.mean()) and mean.low < mean.value < mean.high
    assert spread.low < spread.value < spread.high


def test_paired_comparison_detects_a_shift_and_not_noise():
    values, wafers = clustered()
    ids = [f"i{k}" for k in range(len(values))]
    wafer_of = dict(zip(ids, wafers))
    rng = np.random.default_rng(0)
    a = dict(zip(ids, values))
    better = {i: v + 0.4 + rng.normal(0, 0.3) for i, v in a.items()}
    same = {i: v + rng.normal(0, 0.3) for i, v in a.items()}
    up = stats.paired_comparison(a, better, wafer_of, n_resamples=999)
    assert up.p_value < 0.01 and up.low > 0
    flat = stats.paired_comparison(a, same, wafer_of, n_resamples=999)
    assert flat.p_value > 0.05 and flat.low < 0 < flat.high
    with pytest.raises(ValueError, match="share no scored item"):
        stats.paired_comparison({"x": 1.0}, {"y": 1.0}, {"x": "w", "y": "w"})


def test_mcnemar_and_holm():
    a = {str(i): i < 30 for i in range(40)}
    b = {str(i): i < 10 for i in range(40)}
    assert stats.mcnemar_exact(a, b) < 1e-4
    assert stats.mcnemar_exact(a, a) == 1.0
    adjusted = stats.holm({"spatial": 0.01, "morphology": 0.04, "root_cause": 0.03})
    assert adjusted == pytest.approx({"spatial": 0.03, "root_cause": 0.06, "morphology": 0.06})


def test_breakdown_and_detection_rates():
    values, wafers = clustered(n_wafers=20)
    groups = np.where(np.arange(len(values)) % 2 == 0, "easy", "hard")
    parts = stats.breakdown(values, wafers, groups, n_resamples=200)
    assert set(parts) == {"easy", "hard"} and parts["easy"].n == len(values) // 2
    rates = stats.detection_rates([True, True, False, False, True], [True, False, False, True, True])
    assert rates.overkill_rate == pytest.approx(0.5) and rates.miss_rate == pytest.approx(1 / 3)


def test_format_estimate_in_each_tables_style():
    estimate = stats.Estimate(value=0.5234, low=0.4149, high=0.6351, n=40, n_wafers=8)
    assert stats.format_estimate(estimate) == "0.52 [0.41, 0.64]"
    assert stats.format_estimate(estimate, 0, scale=100, unit="%") == "52% [41, 64]"
    assert stats.format_estimate(estimate, ci=" ({low}–{high})", ci_digits=1) == "0.52 (0.4–0.6)"
    no_ci = estimate.model_copy(update={"low": None, "high": None})
    assert stats.format_estimate(no_ci, 1) == "0.5" and stats.format_estimate(None) == "–"
    assert stats.format_estimate(None, missing="-") == "-"


def test_mean_ci_of_the_same_items_in_another_order_is_bit_identical():
    # an imported run lists its items in the vendor's order; its summary must equal the eval run's exactly
    rng = np.random.default_rng(0)
    values, wafers = rng.random(400) * 10 / 3, rng.integers(0, 40, 400)
    mixed = rng.permutation(400)
    assert stats.mean_ci(values, wafers) == stats.mean_ci(values[mixed], wafers[mixed])
