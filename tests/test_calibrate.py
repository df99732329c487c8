"""Calibration: the optimiser recovers known constants from a judge simulated as a noisy function of them."""
from __future__ import annotations

import numpy as np
import pytest

from wafersage.harness.scoring.calibrate import (
    Calibration, CalibrationConfig, CalibrationError, FeatureTable, calibrate, fit_item_constants, load_calibration,
    save_calibration,
)
from wafersage.harness.scoring.rules import Features, RuleConstants, evaluate

DIMS = ("spatial", "morphology", "root_cause")


def synthetic_features(n_wafers: int, seed: int) -> tuple[list[Features], list[str]]:
    """Answers with must-hit term scores spread over the fuzzy range, some avoid hits and some extras."""
    rng = np.random.default_rng(seed)
    features, wafers = [], []
    for w in range(n_wafers):
        for q in range(6):
            dim = DIMS[q % 3]
            n_terms = int(rng.integers(2, 6))
            hits = tuple(float(s) for s in rng.choice([0.0, 100.0, *rng.uniform(50, 99, 3)], n_terms))
            avoids = tuple(float(s) for s in rng.choice([0.0, 0.0, 0.0, 100.0, rng.uniform(50, 99)], 4))
            extras = tuple(f"x{i}" for i in range(int(rng.integers(0, 4))))
            wrong = tuple(f"c{i}" for i in range(int(rng.choice([0, 0, 0, 1, 2]))))
            features.append(Features("rubric", dim, False, float(rng.uniform(0, 0.5)), hits, tuple(f"t{i}" for i in
                                     range(n_terms)), avoids, ("a", "b", "c", "d"), extras, contradictions=wrong))
            wafers.append(f"w{w}")
    return features, wafers


def test_feature_table_matches_scalar_evaluate():
    features, _ = synthetic_features(30, seed=1)
    features.append(Features("rubric", "spatial", True, 0.0))  # empty answer, no must-hit terms
    features.append(Features("type_f1", "defect_type", False, 0.1, types=frozenset({"Loc", "Center"}),
                             labels=frozenset({"Loc"})))
    features.append(Features("yes_no", "spatial", False, 0.95, verdict=True, expected_yes=True))  # an echo
    features.append(Features("yes_no", "spatial", False, 0.1, verdict=True, expected_yes=True))  # verdict only
    for verdict in (True, False):  # with targets: the verdict and the facts that decide it
        features.append(Features("yes_no", "spatial", False, 0.1, (100.0, 80.0), ("t0", "t1"), (0.0,), ("a",),
                                 verdict=verdict, expected_yes=True, contradictions=("c0",)))
    table = FeatureTable(features)
    for constants in (RuleConstants(), RuleConstants(alpha=0.8, beta=0.6, w_hit=0.3, tau=0.9, extra_allowance=0,
                                                     contradiction_penalty=0.2, verdict_weight=0.7)):
        scalar = np.array([evaluate(f, constants).score for f in features])
        np.testing.assert_allclose(table.scores(constants), scalar, atol=1e-9)


def test_optimiser_recovers_known_constants():
    truth = RuleConstants(alpha=1.0, beta=0.6, w_hit=0.5, tau=0.85)
    features, wafers = synthetic_features(120, seed=0)
    table = FeatureTable(features)
    rng = np.random.default_rng(1)
    judge = np.clip(table.scores(truth) + rng.normal(0, 0.3, len(table)), 0, 10)
    result = calibrate(table, judge, wafers, judge_identity={"model": "simulated"}, bench_hash="h",
                       config=CalibrationConfig(folds=2, iters=8, screen=100, n_resamples=200))
    fitted = result.constants
    assert result.out_of_fold.spearman.value > 0.9
    assert result.in_fold.spearman.value > result.defaults.spearman.value
    # what the rank objective identifies: tau, through which observed term scores count (it must sort all but ~1%
    # of them as the truth does), and the avoid penalty's weight in D, (1 − w_hit)·beta (D = H·(1 − (1 − w_hit)·
    # beta·n_f)·...); alpha <= 1 only rescales D, which ranks do not see
    observed = np.concatenate([table.hit.ravel(), table.avoid.ravel()])
    observed = observed[observed >= 0]
    disagree = np.mean((observed >= 100 * fitted.tau) != (observed >= 100 * truth.tau))
    assert abs(fitted.tau - truth.tau) < 0.02 and disagree < 0.02, (fitted.tau, disagree)
    assert abs((1 - fitted.w_hit) * fitted.beta - (1 - truth.w_hit) * truth.beta) < 0.15
    assert result.upper_reference.spearman.value > 0.8
    ci = result.out_of_fold.spearman
    assert ci.low is not None and ci.low <= ci.value <= ci.high


def test_calibration_file_round_trip_and_errors(tmp_path):
    features, wafers = synthetic_features(12, seed=2)
    table = FeatureTable(features)
    judge = table.scores(RuleConstants(tau=0.9))
    result = calibrate(table, judge, wafers, judge_identity={"model": "sim"}, bench_hash=None,
                       config=CalibrationConfig(folds=2, iters=2, screen=5, n_resamples=100))
    path = save_calibration(result, tmp_path / "calibration.json")
    assert load_calibration(path).model_dump_json() == result.model_dump_json()
    assert isinstance(result, Calibration) and len(result.fold_constants) == 2
    with pytest.raises(CalibrationError, match="not found"):
        load_calibration(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"id": 3}')
    with pytest.raises(CalibrationError, match="bad.json: not a valid calibration"):
        load_calibration(tmp_path / "bad.json")
    with pytest.raises(CalibrationError, match="cannot make 5 folds"):
        calibrate(table, judge, wafers[:1] * len(wafers), judge_identity={}, bench_hash=None)


def test_constant_judge_scores_are_refused_with_the_fix():
    features, wafers = synthetic_features(20, seed=3)
    table = FeatureTable(features)
    with pytest.raises(CalibrationError, match="same score.*differ in quality"):
        calibrate(table, np.full(len(table), 5.0), wafers, judge_identity={"model": "simulated"}, bench_hash="h",
                  config=CalibrationConfig(folds=2))


def test_folds_fit_on_their_training_rows_only():
    features, wafers = synthetic_features(40, seed=4)
    table = FeatureTable(features)
    rng = np.random.default_rng(2)
    judge = np.clip(table.scores(RuleConstants(tau=0.8)) + rng.normal(0, 1.0, len(table)), 0, 10)
    config = CalibrationConfig(iters=2, screen=30)
    rows = np.arange(0, len(table), 2)
    on_rows = fit_item_constants(table, judge, rows, config, RuleConstants())
    alone = fit_item_constants(FeatureTable([features[i] for i in rows]), judge[rows], np.arange(len(rows)), config,
                               RuleConstants())
    assert on_rows == alone  # the other rows do not reach the fit


def test_out_of_fold_scores_come_from_constants_fitted_without_them():
    truth = RuleConstants(alpha=1.2, beta=0.5, w_hit=0.6, tau=0.8)
    features, wafers = synthetic_features(60, seed=5)
    table = FeatureTable(features)
    rng = np.random.default_rng(3)
    judge = np.clip(table.scores(truth) + rng.normal(0, 2.0, len(table)), 0, 10)  # a noisy judge
    result = calibrate(table, judge, wafers, judge_identity={"model": "simulated"}, bench_hash="h",
                       config=CalibrationConfig(folds=3, iters=4, screen=60, n_resamples=100))
    assert len({c.model_dump_json() for c in result.fold_constants}) == 3  # each fold its own fit and seed
    assert all(c != result.constants for c in result.fold_constants)
    in_fold, out_of_fold = result.in_fold.spearman.value, result.out_of_fold.spearman.value
    assert in_fold >= out_of_fold and abs(in_fold - out_of_fold) > 1e-3, (in_fold, out_of_fold)
