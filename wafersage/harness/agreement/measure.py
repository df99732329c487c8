"""How well a score agrees with reference grades: rank correlation with wafer-bootstrap CIs, MAE, source means,
and whether the score orders the sources the way the reference does.

Input is one :class:`Scored` row per graded answer. Correlations are item level (Spearman and Kendall, scipy); their
95% CIs resample whole wafers (:func:`~wafersage.harness.scoring.stats.cluster_bootstrap`). A pair of sources is
*significant* when the paired CI over wafers of their reference-grade difference (items both answered) excludes 0;
it is *ordered alike* when the score's mean difference on the same items has the same sign.
"""
from __future__ import annotations

from itertools import combinations
from typing import Sequence

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats as sps

from ..scoring.stats import DEFAULT_RESAMPLES, paired_comparison


class Scored(BaseModel):
    """One graded answer with the score under test (``score`` None: unscored, with ``reason``)."""

    item_id: str
    wafer_id: str
    source: str
    category: str
    reference: float
    score: float | None
    reason: str | None = None


class Correlation(BaseModel):
    spearman: float | None
    spearman_ci: tuple[float | None, float | None]
    kendall: float | None
    mae: float | None
    n: int


class SourceAgreement(Correlation):
    rule_mean: float | None = Field(description="mean of the score under test")
    judge_mean: float | None = Field(description="mean reference grade")


class PairOrder(BaseModel):
    a: str
    b: str
    reference_difference: float  # mean reference grade of b minus a, on items both answered
    reference_ci: tuple[float | None, float | None]
    score_difference: float
    significant: bool
    ordered_alike: bool


class AgreementReport(BaseModel):
    pooled: Correlation
    by_source: dict[str, SourceAgreement]
    by_category: dict[str, Correlation]
    pairs: int = Field(description="source pairs whose reference difference is significant")
    pairs_ordered_alike: int
    pair_details: list[PairOrder]
    n_unscored: int
    unscored: list[dict[str, str]] = Field(description="item, source and reason of every answer left unscored")


def _rank_stats(score: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    if len(score) < 3 or np.ptp(score) == 0 or np.ptp(ref) == 0:
        return float("nan"), float("nan")
    return float(sps.spearmanr(score, ref).statistic), float(sps.kendalltau(score, ref).statistic)


def _spearman(score: np.ndarray, ref: np.ndarray) -> float:
    """Spearman's rho as the Pearson correlation of average ranks (scipy's definition, without its overhead)."""
    a, b = sps.rankdata(score), sps.rankdata(ref)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _wafer_bootstrap_ci(score: np.ndarray, ref: np.ndarray, wafers: Sequence[str], n_resamples: int,
                        seed: int) -> tuple[float | None, float | None]:
    """Percentile 95% CI of Spearman's rho resampling whole wafers; resamples where rho is undefined (a constant
    score) are left out rather than counted."""
    _, codes = np.unique(np.asarray(wafers), return_inverse=True)
    n_wafers = int(codes.max()) + 1
    if n_wafers < 2:
        return None, None
    members = [np.flatnonzero(codes == w) for w in range(n_wafers)]
    rng = np.random.default_rng(seed)
    rhos = np.array([_spearman(score[idx], ref[idx]) for idx in
                     (np.concatenate([members[w] for w in rng.integers(0, n_wafers, n_wafers)])
                      for _ in range(n_resamples))])
    rhos = rhos[np.isfinite(rhos)]
    if rhos.size < n_resamples // 2:
        return None, None
    low, high = np.percentile(rhos, [2.5, 97.5])
    return float(low), float(high)


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def correlation(rows: Sequence[Scored], *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Correlation:
    """Spearman (with a wafer-bootstrap CI), Kendall and MAE of the scored rows against their reference."""
    rows = [r for r in rows if r.score is not None]
    if not rows:
        return Correlation(spearman=None, spearman_ci=(None, None), kendall=None, mae=None, n=0)
    score = np.array([r.score for r in rows], dtype=float)
    ref = np.array([r.reference for r in rows], dtype=float)
    rho, tau = _rank_stats(score, ref)
    low = high = None
    if np.isfinite(rho):
        low, high = _wafer_bootstrap_ci(score, ref, [r.wafer_id for r in rows], n_resamples, seed)
    return Correlation(spearman=_nan_to_none(rho), spearman_ci=(low, high), kendall=_nan_to_none(tau),
                       mae=float(np.mean(np.abs(score - ref))), n=len(rows))


def _pair(rows: Sequence[Scored], a: str, b: str, n_resamples: int, seed: int) -> PairOrder | None:
    by = {s: {r.item_id: r for r in rows if r.source == s and r.score is not None} for s in (a, b)}
    shared = sorted(set(by[a]) & set(by[b]))
    if not shared:
        return None
    wafer_of = {i: by[a][i].wafer_id for i in shared}
    ref = paired_comparison({i: by[a][i].reference for i in shared}, {i: by[b][i].reference for i in shared},
                            wafer_of, n_resamples=n_resamples, seed=seed)
    diff = float(np.mean([by[b][i].score - by[a][i].score for i in shared]))
    significant = ref.low is not None and ref.high is not None and (ref.low > 0 or ref.high < 0)
    return PairOrder(a=a, b=b, reference_difference=ref.mean_difference, reference_ci=(ref.low, ref.high),
                     score_difference=diff, significant=significant,
                     ordered_alike=bool(np.sign(diff) == np.sign(ref.mean_difference) and diff != 0))


def agreement(rows: Sequence[Scored], *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> AgreementReport:
    """The whole agreement report of ``rows`` (every graded answer, scored or not)."""
    sources = list(dict.fromkeys(r.source for r in rows))
    by_source = {}
    for source in sources:
        mine = [r for r in rows if r.source == source]
        scored = [r for r in mine if r.score is not None]
        corr = correlation(mine, n_resamples=n_resamples, seed=seed)
        by_source[source] = SourceAgreement(
            **corr.model_dump(), rule_mean=float(np.mean([r.score for r in scored])) if scored else None,
            judge_mean=float(np.mean([r.reference for r in scored])) if scored else None)
    categories = list(dict.fromkeys(r.category for r in rows))
    by_category = {c: correlation([r for r in rows if r.category == c], n_resamples=n_resamples, seed=seed)
                   for c in categories}
    details = [p for a, b in combinations(sources, 2) if (p := _pair(rows, a, b, n_resamples, seed)) is not None]
    significant = [p for p in details if p.significant]
    unscored = [{"item_id": r.item_id, "source": r.source, "reason": r.reason or "unscored"}
                for r in rows if r.score is None]
    return AgreementReport(
        pooled=correlation(rows, n_resamples=n_resamples, seed=seed), by_source=by_source, by_category=by_category,
        pairs=len(significant), pairs_ordered_alike=sum(p.ordered_alike for p in significant),
        pair_details=details, n_unscored=len(unscored), unscored=unscored)


def summary_json(report: AgreementReport) -> dict:
    """The documented ``--json`` shape (plus detail keys)."""
    return report.model_dump(mode="json")
