"""Calibration: the optimiser recovers known constants from a judge simulated as a noisy function of them."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wafersage.harness.scoring.calibrate import (
    Calibration, CalibrationConfig, CalibrationError, FeatureTable, calibrate, fit_item_constants, load_calibration,
    save_calibration,
)
from wafersage.harness.scoring.rules import Features, RuleConstants, evaluate

DIMS = ("spatial", "morphology", "root_cause")


def synthetic_features(n_wafers: int, seed: int) -> tuple[list[Features], list[str]]:
    """Descriptive answers with per-slot credits spread over 0-1, some contradictions, hedges and extras."""
    rng = np.random.default_rng(seed)
    features, wafers = [], []
    for w in range(n_wafers):
        for q in range(6):
            dim = DIMS[q % 3]
            n_slots = int(rng.integers(1, 4))
            best = tuple(float(x) for x in rng.choice([0.0, 1.0, *rng.uniform(0, 1, 3)], n_slots))
            mean = tuple(b * float(rng.choice([1.0, 0.5, 0.33, 0.25])) for b in best)
            extras = tuple(f"x{i}" for i in range(int(rng.integers(0, 5))))
            wrong = tuple(f"c{i}" for i in range(int(rng.choice([0, 0, 0, 1, 2]))))
            hedges = tuple(f"h{i}" for i in range(int(rng.choice([0, 0, 1]))))
            weights = tuple(float(x) for x in rng.choice([1.0, 2.0], n_slots))  # asked slots weigh more
            features.append(Features("facts", dim, False, float(rng.uniform(0, 0.5)), best, mean,
                                     tuple(f"s{i}" for i in range(n_slots)), wrong, hedges, extras,
                                     slot_weight=weights))
            wafers.append(f"w{w}")
    return features, wafers


def test_feature_table_matches_scalar_evaluate():
    features, _ = synthetic_features(30, seed=1)
    features.append(Features("facts", "spatial", True, 0.0))  # empty answer, no slot
    features.append(Features("types", "defect_type", False, 0.1, types=frozenset({"Loc", "Center"}),
                             labels=frozenset({"Loc"})))
    features.append(Features("yes_no", "spatial", False, 0.95, verdict=True, expected_yes=True))  # an echo
    features.append(Features("yes_no", "spatial", False, 0.1, verdict=True, expected_yes=True))  # verdict only
    for verdict in (True, False):  # an explanation that contradicts the wafer
        features.append(Features("yes_no", "spatial", False, 0.1, contradictions=("c0",), hedges=("h0",),
                                 verdict=verdict, expected_yes=True))
    table = FeatureTable(features)
    for constants in (RuleConstants(), RuleConstants(partial_floor=0.2, contradiction_penalty=0.7, extra_penalty=0.3,
                                                     extra_allowance=0)):
        scalar = np.array([evaluate(f, constants).score for f in features])
        np.testing.assert_allclose(table.scores(constants), scalar, atol=1e-9)


def test_optimiser_recovers_known_constants():
    truth = RuleConstants(partial_floor=0.25, contradiction_penalty=0.6, extra_penalty=0.3)
    features, wafers = synthetic_features(120, seed=0)
    table = FeatureTable(features)
    rng = np.random.default_rng(1)
    judge = np.clip(table.scores(truth) + rng.normal(0, 0.2, len(table)), 0, 10)
    result = calibrate(table, judge, wafers, judge_identity={"model": "simulated"}, bench_hash="h",
                       config=CalibrationConfig(folds=2, iters=8, screen=100, n_resamples=200))
    fitted = result.constants
    assert result.out_of_fold.spearman.value > 0.9
    assert result.in_fold.spearman.value > result.defaults.spearman.value
    assert abs(fitted.partial_floor - truth.partial_floor) < 0.15, fitted
    assert abs(fitted.contradiction_penalty - truth.contradiction_penalty) < 0.15, fitted
    assert abs(fitted.extra_penalty - truth.extra_penalty) < 0.1, fitted
    assert result.upper_reference.spearman.value > 0.8
    ci = result.out_of_fold.spearman
    assert ci.low is not None and ci.low <= ci.value <= ci.high


def test_calibration_file_round_trip_and_errors(tmp_path):
    features, wafers = synthetic_features(12, seed=2)
    table = FeatureTable(features)
    judge = table.scores(RuleConstants(partial_floor=0.3))
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
    older = json.loads(path.read_text()) | {"scorer_version": "1"}  # constants of another scorer mean other things
    (tmp_path / "older.json").write_text(json.dumps(older))
    with pytest.raises(CalibrationError, match="scorer version 1, this scorer is 2.*calibrate again"):
        load_calibration(tmp_path / "older.json")
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
    judge = np.clip(table.scores(RuleConstants(partial_floor=0.3)) + rng.normal(0, 1.0, len(table)), 0, 10)
    config = CalibrationConfig(iters=2, screen=30)
    rows = np.arange(0, len(table), 2)
    on_rows = fit_item_constants(table, judge, rows, config, RuleConstants())
    alone = fit_item_constants(FeatureTable([features[i] for i in rows]), judge[rows], np.arange(len(rows)), config,
                               RuleConstants())
    assert on_rows == alone  # the other rows do not reach the fit


def test_out_of_fold_scores_come_from_constants_fitted_without_them():
    truth = RuleConstants(partial_floor=0.3, contradiction_penalty=0.6, extra_penalty=0.2)
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
