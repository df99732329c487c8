"""Statistics for scores: wafer-clustered bootstrap CIs, paired comparisons, Holm correction, breakdowns.

Questions about the same wafer are not independent, so every interval resamples WAFERS (a cluster bootstrap)
and every paired test works on per-wafer mean differences. All randomness is seeded.

API (used by scoring, the leaderboard and ``wafersage compare``):

- :func:`mean_ci` — mean of item values with a 95% CI resampling wafers → :class:`Estimate`
- :func:`format_estimate` — an :class:`Estimate` as text with its CI, in the style of the caller's table
- :func:`cluster_bootstrap` — any statistic of item-level arrays with wafer resampling → :class:`Estimate`
- :func:`paired_comparison` — B − A on shared items: mean difference, CI, sign-flip permutation p (:class:`Paired`)
- :func:`noninferiority_test` — one-sided paired test of "B − A ≥ −margin", clustered by wafer (the gate's test)
- :func:`mcnemar_exact` — exact McNemar p-value for right/wrong outcomes on shared items
- :func:`holm` — Holm–Bonferroni adjusted p-values
- :func:`breakdown` — :func:`mean_ci` per group (dimension, defect type, difficulty, category)
- :func:`detection_rates` — overkill (false alarm) and miss rates of the defect-vs-none decision
- :func:`interval_alpha` / :func:`alpha_ci` — Krippendorff's alpha (interval) of raters × units, with a wafer CI
"""
from __future__ import annotations

from typing import Callable, Hashable, Mapping, Sequence

import krippendorff
import numpy as np
from pydantic import BaseModel, Field
from scipy import stats as sps

DEFAULT_RESAMPLES = 2000
CONFIDENCE = 0.95


class Estimate(BaseModel):
    """A point estimate with its 95% CI; ``low``/``high`` are None when there is too little data for one."""

    value: float
    low: float | None
    high: float | None
    n: int  # items
    n_wafers: int


def format_estimate(estimate: Estimate | None, digits: int = 2, *, scale: float = 1, unit: str = "",
                    ci: str = " [{low}, {high}]", ci_digits: int | None = None, missing: str = "–") -> str:
    """An estimate as text, ``0.52 [0.41, 0.63]`` by default; the CI is left out when there is none.

    ``scale`` multiplies value and bounds (100 for percent), ``unit`` follows the value, ``ci`` places the bounds
    (``" ({low}–{high})"`` for a compact table), ``ci_digits`` rounds them (default ``digits``), and ``missing`` is
    the text for no estimate at all.
    """
    if estimate is None:
        return missing
    text = f"{scale * estimate.value:.{digits}f}{unit}"
    if estimate.low is None or estimate.high is None:
        return text
    places = digits if ci_digits is None else ci_digits
    return text + ci.format(low=f"{scale * estimate.low:.{places}f}", high=f"{scale * estimate.high:.{places}f}")


class Paired(BaseModel):
    """B − A on the items both runs answered."""

    mean_difference: float
    low: float | None
    high: float | None
    p_value: float
    n_items: int
    n_wafers: int


def _wafer_codes(wafers: Sequence[Hashable]) -> tuple[np.ndarray, int]:
    _, codes = np.unique(np.asarray([str(w) for w in wafers]), return_inverse=True)
    return codes, int(codes.max()) + 1 if len(codes) else 0


def cluster_bootstrap(
    arrays: Sequence[np.ndarray], wafers: Sequence[Hashable], statistic: Callable[..., float | np.ndarray], *,
    n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE,
) -> list[Estimate]:
    """Statistic(s) of item-level ``arrays`` with a CI from resampling whole wafers (percentile bootstrap).

    ``statistic(*arrays)`` returns a float or a 1-D array of floats; one :class:`Estimate` per output.
    """
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    codes, n_wafers = _wafer_codes(wafers)
    order = np.lexsort((*arrays[::-1], codes))  # one canonical order: the same items in any order, the same bits
    arrays, codes = [a[order] for a in arrays], codes[order]
    point = np.atleast_1d(np.asarray(statistic(*arrays), dtype=float))
    if n_wafers < 2:
        return [Estimate(value=float(v), low=None, high=None, n=len(codes), n_wafers=n_wafers) for v in point]
    members = [np.flatnonzero(codes == w) for w in range(n_wafers)]

    def resampled(wafer_idx: np.ndarray) -> np.ndarray:
        idx = np.concatenate([members[w] for w in wafer_idx.astype(int)])
        return np.atleast_1d(np.asarray(statistic(*(a[idx] for a in arrays)), dtype=float))

    result = sps.bootstrap(
        (np.arange(n_wafers),), resampled, vectorized=False, n_resamples=n_resamples, confidence_level=confidence,
        method="percentile", random_state=np.random.default_rng(seed),
    )
    low, high = np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high)
    return [
        Estimate(value=float(v), low=_finite(lo), high=_finite(hi), n=len(codes), n_wafers=n_wafers)
        for v, lo, hi in zip(point, low, high)
    ]


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def mean_ci(values: Sequence[float], wafers: Sequence[Hashable], *, n_resamples: int = DEFAULT_RESAMPLES,
            seed: int = 0) -> Estimate:
    """Item mean with a wafer-cluster bootstrap CI (vectorised: per-wafer sums and counts). The same items in any
    order give the same bits (sums are taken in one canonical order)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("mean_ci needs at least one value")
    codes, n_wafers = _wafer_codes(wafers)
    order = np.lexsort((values, codes))
    values, codes = values[order], codes[order]
    mean = float(values.mean())
    if n_wafers < 2 or np.all(values == values[0]):
        same = n_wafers >= 2
        return Estimate(value=mean, low=mean if same else None, high=mean if same else None,
                        n=values.size, n_wafers=n_wafers)
    sums = np.bincount(codes, values, n_wafers)
    counts = np.bincount(codes, minlength=n_wafers).astype(float)

    def ratio(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = idx.astype(int)
        return sums[idx].sum(axis) / counts[idx].sum(axis)

    result = sps.bootstrap((np.arange(n_wafers),), ratio, vectorized=True, n_resamples=n_resamples,
                           confidence_level=CONFIDENCE, method="percentile",
                           random_state=np.random.default_rng(seed))
    ci = result.confidence_interval
    return Estimate(value=mean, low=_finite(ci.low), high=_finite(ci.high), n=values.size, n_wafers=n_wafers)


def paired_comparison(
    a: Mapping[str, float], b: Mapping[str, float], wafer_of: Mapping[str, Hashable], *,
    n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
) -> Paired:
    """B − A over shared item ids: wafer-bootstrap CI of the mean difference and a two-sided sign-flip
    permutation test on per-wafer mean differences."""
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError("the two runs share no scored item; compare runs made on the same benchmark split")
    diff = np.array([b[i] - a[i] for i in shared], dtype=float)
    wafers = [wafer_of[i] for i in shared]
    estimate = mean_ci(diff, wafers, n_resamples=n_resamples, seed=seed)
    codes, n_wafers = _wafer_codes(wafers)
    per_wafer = np.bincount(codes, diff, n_wafers) / np.bincount(codes, minlength=n_wafers)
    if n_wafers < 2 or np.allclose(per_wafer, 0):
        p = 1.0
    else:
        test = sps.permutation_test(
            (per_wafer, np.zeros_like(per_wafer)), lambda x, y, axis=-1: np.mean(x - y, axis=axis),
            permutation_type="samples", vectorized=True, n_resamples=n_resamples, alternative="two-sided",
            random_state=np.random.default_rng(seed),
        )
        p = float(test.pvalue)
    return Paired(mean_difference=estimate.value, low=estimate.low, high=estimate.high, p_value=p,
                  n_items=len(shared), n_wafers=n_wafers)


class NonInferiority(BaseModel):
    """The one-sided test of H0: Δ ≥ −margin (not worse beyond the margin) against H1: Δ < −margin."""

    difference: float = Field(description="Δ = mean of the item differences (B − A)")
    low: float | None = Field(description="lower bound of the two-sided CI of Δ (descriptive)")
    high: float | None = Field(description="upper bound of the two-sided CI of Δ (descriptive)")
    p_value: float = Field(description="one-sided p of Δ < −margin; small when B is worse than A beyond the margin")
    n_items: int
    n_wafers: int


def noninferiority_test(diff: Sequence[float], wafers: Sequence[Hashable], margin: float, *,
                        confidence: float = CONFIDENCE) -> NonInferiority:
    """Paired one-sided test of Δ ≥ −``margin`` on item differences ``diff`` (B − A), clustered by wafer.

    It is a paired t-test on wafer totals: Δ̂ is the item mean, its standard error the cluster-robust (CR1) one,
    SE² = W/(W−1)·Σ_w (S_w − Δ̂·n_w)² / N² over the W wafers (S_w the wafer's summed difference, n_w its items,
    N = Σ n_w), and t = (Δ̂ + margin)/SE has W − 1 degrees of freedom; with equal items per wafer it is the
    paired t-test on wafer means. Why not the wafer bootstrap: the percentile bootstrap of a mean under-covers with
    few wafers (its spread is short by about √((W−1)/W), and more for skewed 0–10 scores), which made the old gate
    fail on noise; its p-values are quantised at 1/resamples and need the null imposed before Holm can use them;
    and it is random and far slower, which matters when the false-fail rate is checked by simulation
    (``benchmarks/bench_gate.py``). Per-wafer means of bounded scores are close to normal from a few dozen wafers,
    where the t reference holds its level (the bench measures it). Fewer than two wafers give no test (p = 1).
    ``low``/``high`` are the two-sided ``confidence`` t interval of Δ."""
    d = np.asarray(diff, dtype=float)
    codes, n_wafers = _wafer_codes(wafers)
    delta = float(d.mean()) if d.size else 0.0
    if n_wafers < 2:
        return NonInferiority(difference=delta, low=None, high=None, p_value=1.0, n_items=d.size, n_wafers=n_wafers)
    residual = np.bincount(codes, d, n_wafers) - delta * np.bincount(codes, minlength=n_wafers)
    se = float(np.sqrt(n_wafers / (n_wafers - 1) * np.sum(residual ** 2)) / d.size)
    if se <= 1e-12 * max(1.0, abs(delta)):  # every wafer moved by the same amount: no doubt left
        p, half = (0.0 if delta < -margin else 1.0), 0.0
    else:
        p = float(sps.t.cdf((delta + margin) / se, n_wafers - 1))
        half = float(sps.t.ppf(0.5 + confidence / 2, n_wafers - 1)) * se
    return NonInferiority(difference=delta, low=delta - half, high=delta + half, p_value=p, n_items=d.size,
                          n_wafers=n_wafers)


def mcnemar_exact(a_correct: Mapping[str, bool], b_correct: Mapping[str, bool]) -> float:
    """Exact McNemar test (binomial on discordant pairs) for right/wrong outcomes on shared items."""
    shared = set(a_correct) & set(b_correct)
    only_a = sum(1 for i in shared if a_correct[i] and not b_correct[i])
    only_b = sum(1 for i in shared if b_correct[i] and not a_correct[i])
    if only_a + only_b == 0:
        return 1.0
    return float(sps.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm–Bonferroni adjusted p-values (monotone, capped at 1), same keys."""
    order = sorted(p_values, key=lambda k: p_values[k])
    m, running, adjusted = len(order), 0.0, {}
    for rank, key in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[key]))
        adjusted[key] = running
    return adjusted


def breakdown(values: Sequence[float], wafers: Sequence[Hashable], groups: Sequence[Hashable], *,
              n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, Estimate]:
    """:func:`mean_ci` per group value (e.g. per dimension, defect type, difficulty or category)."""
    values = np.asarray(values, dtype=float)
    groups_arr = np.asarray([str(g) for g in groups])
    wafers_arr = np.asarray([str(w) for w in wafers])
    return {
        g: mean_ci(values[groups_arr == g], wafers_arr[groups_arr == g], n_resamples=n_resamples, seed=seed)
        for g in sorted(set(groups_arr.tolist()))
    }


class DetectionRates(BaseModel):
    """The defect-vs-none decision: overkill = normal wafers called defective; miss = defects called normal."""

    overkill_rate: float | None
    miss_rate: float | None
    n_normal: int
    n_defective: int


def detection_rates(says_defect: Sequence[bool], is_defect: Sequence[bool]) -> DetectionRates:
    said, truth = np.asarray(says_defect, dtype=bool), np.asarray(is_defect, dtype=bool)
    n_normal, n_defect = int((~truth).sum()), int(truth.sum())
    return DetectionRates(
        overkill_rate=float(said[~truth].mean()) if n_normal else None,
        miss_rate=float((~said[truth]).mean()) if n_defect else None,
        n_normal=n_normal, n_defective=n_defect,
    )


def interval_alpha(ratings: np.ndarray) -> float:
    """Krippendorff's alpha on the interval scale of a raters × units matrix (NaN: no rating), computed by the
    ``krippendorff`` package; NaN when it is undefined (fewer than two distinct values)."""
    ratings = np.asarray(ratings, dtype=float)
    domain = np.unique(ratings[np.isfinite(ratings)])
    if len(domain) < 2:
        return float("nan")
    return float(krippendorff.alpha(reliability_data=ratings, value_domain=domain, level_of_measurement="interval"))


def _alpha_sums(ratings: np.ndarray) -> np.ndarray:
    """Per unit with two or more ratings (the pairable ones): m, Σv, Σv² and Σ_{i≠j}(v_i − v_j)² / (m − 1)."""
    present = np.isfinite(ratings)
    m = present.sum(axis=0)
    v = np.where(present, ratings, 0.0)
    s1, s2 = v.sum(axis=0), (v * v).sum(axis=0)
    pairable = m >= 2
    within = (2 * m * s2 - 2 * s1 * s1)[pairable] / (m[pairable] - 1)
    return np.stack([m[pairable], s1[pairable], s2[pairable], within], axis=1).astype(float)


def _alpha_from_sums(total: np.ndarray) -> np.ndarray:
    """Interval alpha from summed unit statistics (last axis: n, S1, S2, W): 1 − (n − 1)·W / (2n·S2 − 2·S1²)."""
    n, s1, s2, within = np.moveaxis(total, -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - (n - 1) * within / (2 * n * s2 - 2 * s1 * s1)


def alpha_ci(ratings: np.ndarray, wafers: Sequence[Hashable], *, n_resamples: int = DEFAULT_RESAMPLES,
             seed: int = 0) -> Estimate | None:
    """:func:`interval_alpha` of a raters × units matrix (``wafers``: each unit's wafer) with a 95% percentile CI
    that resamples wafers, all units of a wafer together; None when alpha is undefined (no units, or a single value);
    the CI is left out (None) for fewer than two wafers or ``n_resamples`` 0.

    The point is the ``krippendorff`` package's value. The resamples use the interval metric's closed form
    (:func:`_alpha_from_sums`, per-wafer sums of each unit's size, Σv, Σv² and within-unit squared differences),
    which equals the package's value on any data (tested) at a tiny fraction of the cost: the package builds a
    coincidence matrix over every distinct score (360 answers with 92 distinct mean scores: 22 ms a call, 11 s
    for 500 resamples; the closed form: a few ms for all). A resample in which alpha is undefined (every value the
    same) is left out of the percentiles."""
    ratings = np.asarray(ratings, dtype=float)
    point = interval_alpha(ratings)
    if not np.isfinite(point):
        return None
    codes, n_wafers = _wafer_codes(wafers)
    if n_wafers < 2 or n_resamples == 0:
        return Estimate(value=point, low=None, high=None, n=len(codes), n_wafers=n_wafers)
    units = _alpha_sums(ratings)
    pairable = np.isfinite(ratings).sum(axis=0) >= 2
    per_wafer = np.stack([np.bincount(codes[pairable], units[:, k], n_wafers) for k in range(4)], axis=1)

    picks = np.random.default_rng(seed).integers(0, n_wafers, (n_resamples, n_wafers))
    alphas = _alpha_from_sums(per_wafer[picks].sum(axis=1))
    alphas = alphas[np.isfinite(alphas)]
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(alphas, [tail, 100 - tail]) if alphas.size else (None, None)
    return Estimate(value=point, low=None if low is None else float(low), high=None if high is None else float(high),
                    n=len(codes), n_wafers=n_wafers)
