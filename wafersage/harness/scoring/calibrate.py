"""Aligning the rule score with an LLM judge by Bayesian optimisation (``wafersage calibrate``).

Stage 1 fits the item constants (partial credit floor, contradiction and extra penalties) with
``bayes_opt.BayesianOptimization``, maximising the Spearman
correlation between item rule scores and judge scores. Stage 2 fits the dimension weights, which only act when
dimension means are combined: it maximises the Spearman correlation, over wafers, between the weighted rule score
S_w = Σ w_d·mean_d (the wafer's rubric items) and the wafer's mean judge score.

Every evaluation is vectorised numpy over a :class:`FeatureTable` (the slot credits of every answer, extracted
once by ``RuleScorer.features``), so a fit over thousands of items takes seconds. Folds group items by wafer
(sklearn ``GroupKFold``); out-of-fold scores come from constants fitted without that fold. Statistics (Spearman,
Kendall, Pearson, MAE on the 0–10 scale) carry wafer-bootstrap 95% CIs. An upper reference — gradient boosting
on the raw features with the same folds — shows how much rank agreement any function of these features could
reach. The result is written as ``calibration.json`` (:class:`Calibration`); ``load_calibration`` reads it back.
"""
from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from bayes_opt import BayesianOptimization, acquisition
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy import stats as sps
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GroupKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from ...tasks.bench.schema import DIMENSIONS
from . import SCORER_VERSION
from .rules import HEDGE_WEIGHT, VERDICT_FLOOR, Features, RuleConstants
from .stats import Estimate, cluster_bootstrap

_METRIC_CODE = {"facts": 0, "types": 1, "yes_no": 2}


class CalibrationError(ValueError):
    """A calibration input or file is unusable; the message names it and the fix."""


class CalibrationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folds: int = Field(5, ge=2, description="k of the wafer-grouped k-fold cross-validation")
    iters: int = Field(30, ge=0, description="GP-guided Bayesian-optimisation steps after the random screen")
    screen: int = Field(100, ge=1, description="random points evaluated before the GP-guided steps")
    seed: int = Field(0, description="seed of the optimiser, folds and bootstrap")
    n_resamples: int = Field(1000, ge=100, description="bootstrap resamples for the confidence intervals")
    bounds: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"partial_floor": (0.0, 1.0), "contradiction_penalty": (0.0, 1.0),
                                 "extra_penalty": (0.0, 0.5)},
        description="search box of the stage-1 constants",
    )


class FeatureTable:
    """Features of many answers as padded numpy arrays; :meth:`scores` is the vectorised twin of ``rules.evaluate``."""

    def __init__(self, features: Sequence[Features]):
        if not features:
            raise CalibrationError("no scored answers to calibrate on")
        n = len(features)
        width = max(1, max(len(f.slot_best) for f in features))
        self.metric = np.array([_METRIC_CODE[f.metric] for f in features])
        self.dim = np.array([DIMENSIONS.index(f.dimension) if f.metric == "facts" else -1 for f in features])
        self.best = np.zeros((n, width))
        self.mean = np.zeros((n, width))
        self.weight = np.zeros((n, width))  # 0 pads the rows with fewer slots
        self.n_slots = np.array([len(f.slot_best) for f in features])
        for i, f in enumerate(features):
            self.best[i, :len(f.slot_best)] = f.slot_best
            self.mean[i, :len(f.slot_mean)] = f.slot_mean
            self.weight[i, :len(f.slot_best)] = f.weights
        self.total_weight = np.maximum(self.weight.sum(1), 1e-12)
        self.n_extra = np.array([len(f.extras) for f in features])
        self.n_contra = np.array([len(f.contradictions) + HEDGE_WEIGHT * len(f.hedges) for f in features])
        self.echo = np.array([f.echo_similarity for f in features])
        self.empty = np.array([f.empty for f in features])
        self.fixed = np.array([0.0 if f.metric == "facts" else f.fixed_score for f in features])
        self.verdict_share = np.array([f.verdict_share for f in features])

    def __len__(self) -> int:
        return len(self.metric)

    def dimension_scores(self, c: RuleConstants, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Item scores on 0–1: descriptive items their D, type items their type match, yes/no items their verdict part."""
        n_slots = self.n_slots[rows]
        slot_credit = c.partial_floor * self.best[rows] + (1 - c.partial_floor) * self.mean[rows]
        credit = (self.weight[rows] * slot_credit).sum(1)
        credit = np.where(n_slots > 0, credit / self.total_weight[rows], 0.0)
        contradicted = np.maximum(0.0, 1.0 - c.contradiction_penalty * self.n_contra[rows])
        stuffing = np.maximum(0.0, 1.0 - c.extra_penalty * np.maximum(0, self.n_extra[rows] - c.extra_allowance))
        facts = np.where(self.empty[rows], 0.0, credit * contradicted * stuffing)
        metric = self.metric[rows]
        verdict = self.fixed[rows] * np.maximum(VERDICT_FLOOR, np.minimum(self.verdict_share[rows], contradicted))
        d = np.where(metric == 0, facts, np.where(metric == 2, verdict, self.fixed[rows]))
        return np.where(self.echo[rows] >= c.echo_threshold, 0.0, d)

    def scores(self, c: RuleConstants, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Item rule scores on the 0–10 scale."""
        return 10.0 * self.dimension_scores(c, rows)

    def reference_matrix(self) -> np.ndarray:
        """Raw features for the upper reference: per-slot credits, counts, kind."""
        cols = [np.where(self.n_slots > 0, (self.weight * self.best).sum(1) / self.total_weight, 0.0),
                np.where(self.n_slots > 0, (self.weight * self.mean).sum(1) / self.total_weight, 0.0),
                self.best.min(1, initial=1.0, where=self.best > 0), self.n_slots]
        cols += [self.n_extra, self.n_contra, self.echo, self.fixed, self.verdict_share, self.empty.astype(float)]
        cols += [(self.dim == d).astype(float) for d in range(len(DIMENSIONS))]
        cols += [(self.metric == m).astype(float) for m in (1, 2)]
        return np.column_stack(cols).astype(float)


class FitStats(BaseModel):
    spearman: Estimate
    kendall: Estimate
    pearson: Estimate
    mae: Estimate


class Calibration(BaseModel):
    """``calibration.json``: fitted constants, how well they agree with the judge, and what they were fitted on."""

    id: str = Field(description="sha256 prefix of constants + judge + benchmark; scores cite it")
    created_at: str
    scorer_version: str = Field(SCORER_VERSION, description="the scorer whose constants these are")
    constants: RuleConstants
    defaults: FitStats = Field(description="the default constants scored on all items")
    in_fold: FitStats = Field(description="constants fitted on all items, scored on the same items")
    out_of_fold: FitStats = Field(description="each fold scored with constants fitted without it")
    upper_reference: FitStats = Field(description="gradient boosting on the raw features, out of fold")
    fold_constants: list[RuleConstants]
    judge: dict[str, Any]
    bench_hash: str | None
    runs: list[str] = Field(default_factory=list)
    n_items: int
    n_wafers: int
    config: CalibrationConfig
    seconds: float


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return -1.0
    return float(sps.spearmanr(x, y).statistic)


def _agreement(pred: np.ndarray, judge: np.ndarray) -> np.ndarray:
    """Spearman (Pearson of ranks), Kendall tau-b, Pearson and MAE; called once per bootstrap resample."""
    if np.ptp(pred) == 0 or np.ptp(judge) == 0:
        corr = [np.nan, np.nan, np.nan]
    else:
        ranks = np.corrcoef(sps.rankdata(pred), sps.rankdata(judge))[0, 1]
        corr = [ranks, sps.kendalltau(pred, judge).statistic, np.corrcoef(pred, judge)[0, 1]]
    return np.array([*corr, np.mean(np.abs(pred - judge))], dtype=float)


def fit_stats(pred: np.ndarray, judge: np.ndarray, wafers: Sequence[str], config: CalibrationConfig) -> FitStats:
    spearman, kendall, pearson, mae = cluster_bootstrap(
        [pred, judge], wafers, _agreement, n_resamples=config.n_resamples, seed=config.seed)
    return FitStats(spearman=spearman, kendall=kendall, pearson=pearson, mae=mae)


class _LeanUCB(acquisition.UpperConfidenceBound):
    """bayes_opt's UCB with a lighter acquisition search (2,000 random points, 2 L-BFGS starts instead of
    10,000 and 10): on this cheap, 3–4-dimensional objective the default search costs ~0.5 s per step."""

    def suggest(self, gp, target_space, n_random=2_000, n_smart=2, fit_gp=True, random_state=None):
        return super().suggest(gp, target_space, n_random=n_random, n_smart=n_smart, fit_gp=fit_gp,
                               random_state=random_state)


def _maximise(objective, bounds: dict[str, tuple[float, float]], start: dict[str, float],
              config: CalibrationConfig) -> dict[str, float]:
    """Bayesian optimisation seeded with ``start`` and a vectorised random screen.

    The rank objective is a step function of the constants, which a GP alone explores poorly; the objective is cheap, so ``config.screen`` random points are evaluated and
    registered first, then ``config.iters`` GP-guided steps refine the best region. One GP-hyperparameter fit per
    step (no restarts) and a lean acquisition search: the optimiser's own overhead dominates the cost.
    """
    optimiser = BayesianOptimization(f=None, pbounds=bounds, random_state=config.seed, verbose=0,
                                     allow_duplicate_points=True, acquisition_function=_LeanUCB(kappa=2.576))
    optimiser.set_gp_params(n_restarts_optimizer=0)
    rng = np.random.default_rng(config.seed)
    points = [{k: min(max(v, bounds[k][0]), bounds[k][1]) for k, v in start.items()}]
    points += [{k: float(rng.uniform(*bounds[k])) for k in bounds} for _ in range(config.screen)]
    for _ in range(config.iters + 1):
        for params in points:
            optimiser.register(params=params, target=objective(**params))
        points = [optimiser.suggest()]
    return {k: float(v) for k, v in optimiser.max["params"].items()}


def fit_item_constants(table: FeatureTable, judge: np.ndarray, rows: np.ndarray, config: CalibrationConfig,
                       base: RuleConstants) -> RuleConstants:
    """Stage 1: the item constants in ``config.bounds`` maximising item-level Spearman with the judge on ``rows`` only (the
    optimiser's seed is ``config.seed``; folds pass their own)."""
    target = judge[rows]

    def objective(**params: float) -> float:
        return _spearman(table.scores(base.model_copy(update=params), rows), target)

    start = {k: getattr(base, k) for k in config.bounds}
    return RuleConstants.model_validate({**base.model_dump(), **_maximise(objective, config.bounds, start, config)})


def fit_dimension_weights(table: FeatureTable, judge: np.ndarray, wafer_codes: np.ndarray,
                          config: CalibrationConfig, constants: RuleConstants) -> RuleConstants:
    """Stage 2: dimension weights maximising, over wafers, Spearman of Σ w_d·mean_d with the wafer's mean judge
    score (rubric items only). Unchanged when fewer than 3 wafers or 2 dimensions are present."""
    rubric = np.flatnonzero(table.metric == 0)  # descriptive items: the ones a dimension mean is made of
    dims = table.dim[rubric]
    wafers, codes = np.unique(wafer_codes[rubric], return_inverse=True)
    if len(wafers) < 3 or len(set(dims.tolist())) < 2:
        return constants
    cell = codes * len(DIMENSIONS) + dims
    size = len(wafers) * len(DIMENSIONS)
    counts = np.bincount(cell, minlength=size).reshape(-1, len(DIMENSIONS))
    sums = np.bincount(cell, table.dimension_scores(constants, rubric), size).reshape(-1, len(DIMENSIONS))
    means, present = sums / np.maximum(counts, 1), counts > 0
    wafer_judge = np.bincount(codes, judge[rubric]) / np.bincount(codes)

    def objective(**weights: float) -> float:
        w = np.array([weights[d] for d in DIMENSIONS])
        return _spearman((means * w).sum(1) / np.maximum((present * w).sum(1), 1e-12), wafer_judge)

    weights = _maximise(objective, {d: (0.05, 1.0) for d in DIMENSIONS}, constants.dim_weights, config)
    return RuleConstants.model_validate({**constants.model_dump(), "dim_weights": weights})


def calibrate(table: FeatureTable, judge: Sequence[float], wafers: Sequence[str], *, judge_identity: dict[str, Any],
              bench_hash: str | None, runs: Sequence[str] = (), config: CalibrationConfig | None = None,
              base: RuleConstants | None = None) -> Calibration:
    """Fit constants on all items, cross-validate them, and compare with the defaults and the upper reference."""
    config = config or CalibrationConfig()
    started = time.perf_counter()
    judge_arr = np.asarray(judge, dtype=float)
    wafer_list = [str(w) for w in wafers]
    if len(judge_arr) != len(table) or len(wafer_list) != len(table):
        raise CalibrationError(f"{len(table)} answers but {len(judge_arr)} judge scores and {len(wafer_list)} wafers")
    _, wafer_codes = np.unique(np.asarray(wafer_list), return_inverse=True)
    n_wafers = int(wafer_codes.max()) + 1
    if n_wafers < config.folds:
        raise CalibrationError(f"{n_wafers} wafers cannot make {config.folds} folds; lower --folds or judge more runs")
    base = base or RuleConstants()
    if np.ptp(judge_arr) == 0 or np.ptp(table.scores(base)) == 0:
        which = "judge" if np.ptp(judge_arr) == 0 else "rule scorer"
        raise CalibrationError(
            f"the {which} gave every one of the {len(table)} answers the same score, so rank agreement is "
            "undefined; calibrate on runs whose answers differ in quality (e.g. add the oracle and a baseline run)")
    everything = np.arange(len(table))
    fitted = fit_item_constants(table, judge_arr, everything, config, base)
    fitted = fit_dimension_weights(table, judge_arr, wafer_codes, config, fitted)
    out_of_fold = np.zeros(len(table))
    fold_constants = []  # item scores do not depend on the dimension weights: folds fit stage 1 only
    for index, (train, test) in enumerate(GroupKFold(n_splits=config.folds).split(everything, groups=wafer_codes)):
        fold_config = config.model_copy(update={"seed": config.seed + 1 + index})  # its own search points
        fold = fit_item_constants(table, judge_arr, train, fold_config, base)
        fold_constants.append(fold)
        out_of_fold[test] = table.scores(fold, test)  # constants fitted without these rows
    with threadpool_limits(1):  # OpenMP threads only oversubscribe a shared machine for 5 small fits
        reference = cross_val_predict(
            HistGradientBoostingRegressor(max_iter=100, random_state=config.seed), table.reference_matrix(),
            judge_arr, groups=wafer_codes, cv=GroupKFold(n_splits=config.folds),
        )
    stats_of = lambda pred: fit_stats(pred, judge_arr, wafer_list, config)  # noqa: E731
    digest = hashlib.sha256(json.dumps(
        [fitted.model_dump(), judge_identity, bench_hash, sorted(runs)], sort_keys=True, default=str).encode())
    return Calibration(
        id=digest.hexdigest()[:16], created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        constants=fitted, defaults=stats_of(table.scores(base)), in_fold=stats_of(table.scores(fitted)),
        out_of_fold=stats_of(out_of_fold), upper_reference=stats_of(np.clip(reference, 0, 10)),
        fold_constants=fold_constants, judge=judge_identity, bench_hash=bench_hash, runs=list(runs),
        n_items=len(table), n_wafers=n_wafers, config=config, seconds=time.perf_counter() - started,
    )


def save_calibration(calibration: Calibration, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(calibration.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def load_calibration(path: str | Path) -> Calibration:
    """Read ``calibration.json``; errors name the file and how to make a new one."""
    path = Path(path)
    fix = "make one with 'wafersage calibrate --run RUN --judge NAME --out calibration.json'"
    if not path.exists():
        raise CalibrationError(f"{path}: calibration file not found; {fix}")
    try:
        data = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{path}: not JSON ({exc}); {fix}") from None
    version = data.get("scorer_version") if isinstance(data, dict) else None
    if isinstance(data, dict) and "constants" in data and version != SCORER_VERSION:
        raise CalibrationError(f"{path}: fitted for scorer version {version or 'before 2'}, this scorer is "
                               f"{SCORER_VERSION} (its constants mean other things); calibrate again: {fix}")
    try:
        return Calibration.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise CalibrationError(f"{path}: not a valid calibration ({where}: {first['msg']}); {fix}") from None
