"""The regression gate: is a candidate run worse than a base run, beyond an allowed drop, with confidence?

Both runs must be scored on the same benchmark (hash and split) by the same scorer (version and constants), with
the same calibration (or none) and the same judges (or none); otherwise :class:`~.results.NotComparable`, naming the
command that rescores both. The metric is the judge score when both were judged, else the rule score (failed calls
count 0). An answer the judge left unscored has no value, so a judge-gated comparison uses only the items both runs
have a judge score for; each run's judge coverage is reported, and a run below ``CoverageSettings.min_coverage`` is
warned about or refused (``on_low``). For the overall score and each rubric dimension the candidate − base
difference Δ is taken on the shared items and tested one-sided for non-inferiority, H0: Δ ≥ −max_drop against H1: Δ < −max_drop, paired and clustered
by wafer (:func:`~wafersage.harness.scoring.stats.noninferiority_test`, a paired t-test on wafer totals; its
docstring says why not the bootstrap). The p-values are Holm-adjusted across the metrics and a metric *regresses*
when its adjusted p is below alpha, so the chance that a candidate as good as the base fails the gate on any metric
(the false-fail rate) is at most alpha — ``benchmarks/bench_gate.py`` measures it. The CI shown is descriptive.

Defect-type and consistency accuracy (right/wrong per item, the rule verdict; failed calls are wrong) are tested
with the exact McNemar test on the shared items (:func:`~wafersage.harness.scoring.stats.mcnemar_exact`), Holm-adjusted
over these accuracy tests. They are reported beside the gate (tables, Markdown, JUnit test cases) and named in the
verdict when the candidate is significantly less accurate, but they do not fail it: the allowed drop is in score
points, which an accuracy test cannot honour.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
from pydantic import BaseModel, Field

from ..harness.scoring.judging.judges import CoverageSettings
from ..harness.scoring.stats import holm, mcnemar_exact, noninferiority_test
from ..tasks.bench.schema import DIMENSIONS
from .tables import markdown_table
from .results import (
    NotComparable, RunResult, ScoreKind, check_same_benchmark, check_same_scoring, item_correct, item_values,
    judge_names, score_label, wafer_of,
)

#: accuracy metric -> question category whose items are right or wrong
ACCURACIES = {"defect-type accuracy": "defect_type", "consistency accuracy": "consistency"}


class MetricDelta(BaseModel):
    metric: str = Field(description="overall or a rubric dimension")
    base: float = Field(description="base mean on the shared items")
    candidate: float = Field(description="candidate mean on the shared items")
    difference: float = Field(description="candidate − base")
    low: float | None = Field(description="lower bound of the two-sided (1 − alpha) CI of the difference")
    high: float | None = Field(description="upper bound of the two-sided (1 − alpha) CI of the difference")
    p_value: float = Field(description="one-sided p of 'worse than base by more than max_drop' (paired, by wafer)")
    p_holm: float = Field(description="p_value Holm-adjusted across the gate's metrics")
    n_items: int
    n_wafers: int
    regressed: bool = Field(False, description="p_holm < alpha: worse beyond max_drop, family-wise confidence")

    def verdict(self, max_drop: float, alpha: float) -> str:
        """The metric's verdict in words, with the test behind it."""
        if self.regressed:
            return (f"REGRESSED: worse than base by more than {max_drop} (one-sided p {self.p_value:.3g}, Holm "
                    f"{self.p_holm:.3g} < {alpha})")
        return (f"ok: not shown worse than base by more than {max_drop} (Holm p {self.p_holm:.3g} >= {alpha})")


class AccuracyTest(BaseModel):
    """Right/wrong on the shared items of one category, tested with the exact McNemar test."""

    metric: str = Field(description="defect-type accuracy or consistency accuracy")
    base: float = Field(description="base accuracy on the shared items (0-1)")
    candidate: float = Field(description="candidate accuracy on the shared items (0-1)")
    base_only: int = Field(description="items the base got right and the candidate wrong")
    candidate_only: int = Field(description="items the candidate got right and the base wrong")
    n_items: int
    p_value: float = Field(description="exact McNemar p-value (two-sided binomial test on the discordant items)")
    p_holm: float = Field(description="Holm-adjusted over the accuracy tests")

    def worse(self, alpha: float) -> bool:
        """The candidate is significantly less accurate (Holm-adjusted)."""
        return self.p_holm < alpha and self.candidate_only < self.base_only


class Comparison(BaseModel):
    base: str
    candidate: str
    base_folder: str
    candidate_folder: str
    score_kind: ScoreKind
    score_label: str
    max_drop: float
    alpha: float
    bench_name: str
    bench_hash: str
    n_base_failed: int
    n_candidate_failed: int
    deltas: list[MetricDelta]
    accuracy: list[AccuracyTest] = Field(default_factory=list, description="McNemar tests (do not gate)")
    base_judge_coverage: float | None = Field(None, description="share of the base's answers with a judge score")
    candidate_judge_coverage: float | None = Field(None, description="the same for the candidate")
    warnings: list[str] = Field(default_factory=list, description="judge coverage below the threshold, in words")

    @property
    def regressed(self) -> bool:
        return any(d.regressed for d in self.deltas)


def check_comparable(base: RunResult, candidate: RunResult) -> ScoreKind:
    """The metric both runs can be compared on; raises :class:`NotComparable` otherwise."""
    check_same_benchmark([base, candidate])
    check_same_scoring([base, candidate])
    if base.has_judge != candidate.has_judge:
        judged, plain = (base, candidate) if base.has_judge else (candidate, base)
        raise NotComparable(f"{judged.folder} was scored with an LLM judge but {plain.folder} without; score both "
                            "with the same --judge (or neither)")
    if base.has_judge and base.summary.judge_identity != candidate.summary.judge_identity:
        names = [" + ".join(judge_names(r.summary)) for r in (base, candidate)]
        raise NotComparable(
            f"{base.folder} and {candidate.folder} were graded by different judges ({names[0]} vs {names[1]}, "
            "or other judge settings, prompt templates or ways of combining several judges); rescore both with the "
            "same --judge options")
    return "judge" if base.has_judge else "rule"


def metric_delta(metric: str, base: dict[str, float], cand: dict[str, float], wafers: dict[str, str], *,
                 alpha: float, max_drop: float) -> MetricDelta | None:
    """Δ of one metric on the shared items with its one-sided non-inferiority p (Holm comes after); None when the
    runs share no item of it."""
    shared = sorted(set(base) & set(cand))
    if not shared:
        return None
    a, b = np.array([base[i] for i in shared]), np.array([cand[i] for i in shared])
    test = noninferiority_test(b - a, [wafers[i] for i in shared], max_drop, confidence=1 - alpha)
    return MetricDelta(metric=metric, base=float(a.mean()), candidate=float(b.mean()), difference=test.difference,
                       low=test.low, high=test.high, p_value=test.p_value, p_holm=test.p_value,
                       n_items=test.n_items, n_wafers=test.n_wafers)


def gate(deltas: list[MetricDelta], alpha: float) -> list[MetricDelta]:
    """Holm-adjust the metrics' p-values and mark those that regress (adjusted p < alpha); returns ``deltas``."""
    adjusted = holm({d.metric: d.p_value for d in deltas})
    for d in deltas:
        d.p_holm = adjusted[d.metric]
        d.regressed = d.p_holm < alpha
    return deltas


def coverage_warnings(runs: list[RunResult], coverage: CoverageSettings) -> list[str]:
    """A judge-gated comparison's runs below the coverage threshold, in words; raises :class:`NotComparable` for
    them instead when ``coverage.on_low`` is ``refuse``."""
    low = [r for r in runs if coverage.low(r.summary.judge_coverage)]
    if low and coverage.on_low == "refuse":
        judges = "".join(f" --judge {name}" for name in judge_names(low[0].summary))
        raise NotComparable(
            f"judge coverage below {100 * coverage.min_coverage:.0f}%: "
            + ", ".join(f"{r.folder} ({100 * r.summary.judge_coverage:.0f}%)" for r in low)
            + f"; re-ask the judge for the unscored answers ('wafersage score RUN{judges} --retry-unscored') or "
              "gate with a warning instead (--on-low-coverage flag)")
    return [f"LOW JUDGE COVERAGE: {r.name} ({r.folder}) has a judge score for only "
            f"{100 * r.summary.judge_coverage:.0f}% of its answers ({r.summary.n_judge_unscored} unscored), below "
            f"{100 * coverage.min_coverage:.0f}%; the gate uses only the items both runs have a judge score for"
            for r in low]


def compare_runs(base: RunResult, candidate: RunResult, *, max_drop: float = 0.0, alpha: float = 0.05,
                 coverage: CoverageSettings | None = None) -> Comparison:
    """Overall and per-dimension deltas of ``candidate`` against ``base`` (see the module docstring)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if max_drop < 0:
        raise ValueError(f"max_drop must be >= 0 (a drop in points on the 0-10 scale), got {max_drop}")
    kind = check_comparable(base, candidate)
    warnings = coverage_warnings([base, candidate], coverage or CoverageSettings()) if kind == "judge" else []
    wafers = wafer_of([base, candidate])
    deltas = [found for metric, category in (("overall", None), *((d, d) for d in DIMENSIONS))
              if (found := metric_delta(metric, item_values(base, kind, category),
                                        item_values(candidate, kind, category), wafers, alpha=alpha,
                                        max_drop=max_drop)) is not None]
    if not deltas:
        raise NotComparable(f"{base.folder} and {candidate.folder} share no scored item; evaluate both on the "
                            "same items (same --split and --limit)")
    return Comparison(
        base=base.name, candidate=candidate.name, base_folder=str(base.folder), candidate_folder=str(candidate.folder),
        score_kind=kind, score_label=score_label(kind, base.summary), max_drop=max_drop, alpha=alpha,
        bench_name=base.summary.bench_name, bench_hash=base.summary.bench_hash,
        n_base_failed=base.summary.n_failed, n_candidate_failed=candidate.summary.n_failed,
        deltas=gate(deltas, alpha), accuracy=accuracy_tests(base, candidate),
        base_judge_coverage=base.summary.judge_coverage, candidate_judge_coverage=candidate.summary.judge_coverage,
        warnings=warnings)


def accuracy_tests(base: RunResult, candidate: RunResult) -> list[AccuracyTest]:
    """McNemar tests of defect-type and consistency accuracy on the shared items, Holm-adjusted over both."""
    tests = []
    for metric, category in ACCURACIES.items():
        a, b = item_correct(base, category), item_correct(candidate, category)
        shared = sorted(set(a) & set(b))
        if not shared:
            continue
        tests.append(AccuracyTest(
            metric=metric, base=sum(a[i] for i in shared) / len(shared),
            candidate=sum(b[i] for i in shared) / len(shared),
            base_only=sum(a[i] and not b[i] for i in shared), candidate_only=sum(b[i] and not a[i] for i in shared),
            n_items=len(shared), p_value=mcnemar_exact(a, b), p_holm=1.0))
    adjusted = holm({t.metric: t.p_value for t in tests})
    for t in tests:
        t.p_holm = adjusted[t.metric]
    return tests


def _ci(d: MetricDelta) -> str:
    return "–" if d.low is None or d.high is None else f"[{d.low:+.2f}, {d.high:+.2f}]"


def verdict(c: Comparison) -> str:
    less_accurate = [t.metric for t in c.accuracy if t.worse(c.alpha)]
    note = (f" (note: significantly lower {', '.join(less_accurate)}, McNemar p (Holm) < {c.alpha})"
            if less_accurate else "")
    test = (f"one-sided paired tests by wafer, Holm-adjusted across {len(c.deltas)} metrics, family-wise "
            f"alpha {c.alpha}")
    if c.regressed:
        worse = ", ".join(d.metric for d in c.deltas if d.regressed)
        return (f"REGRESSION: {c.candidate} is worse than {c.base} by more than {c.max_drop} points ({test}) in: "
                f"{worse}{note}")
    return (f"OK: no metric of {c.candidate} is shown worse than {c.base} by more than {c.max_drop} points "
            f"({test}){note}")


def table_rows(c: Comparison) -> list[list[str]]:
    return [[d.metric, f"{d.base:.2f}", f"{d.candidate:.2f}", f"{d.difference:+.2f}", _ci(d), f"{d.p_value:.3g}",
             f"{d.p_holm:.3g}", str(d.n_items), str(d.n_wafers), "REGRESSED" if d.regressed else "ok"]
            for d in c.deltas]


HEADER = ["metric", "base", "candidate", "Δ", "CI of Δ", "p (Δ < −drop)", "p (Holm)", "items", "wafers", "gate"]
ACCURACY_HEADER = ["accuracy", "base", "candidate", "base only right", "candidate only right", "McNemar p",
                   "p (Holm)", "items", "result"]


def accuracy_rows(c: Comparison) -> list[list[str]]:
    def result(t: AccuracyTest) -> str:
        if t.p_holm >= c.alpha:
            return "no significant difference"
        return "candidate worse" if t.worse(c.alpha) else "candidate better"

    return [[t.metric, f"{100 * t.base:.1f}%", f"{100 * t.candidate:.1f}%", str(t.base_only), str(t.candidate_only),
             f"{t.p_value:.3g}", f"{t.p_holm:.3g}", str(t.n_items), result(t)] for t in c.accuracy]


def coverage_note(c: Comparison) -> str:
    if c.score_kind != "judge" or c.base_judge_coverage is None or c.candidate_judge_coverage is None:
        return ""
    return (f" Judge coverage: base {100 * c.base_judge_coverage:.1f}%, candidate "
            f"{100 * c.candidate_judge_coverage:.1f}%; gated on the items both have a judge score for.")


def to_markdown(c: Comparison) -> str:
    intro = (f"**{c.candidate}** vs **{c.base}** on {c.bench_name} (`{c.bench_hash[:12]}`), {c.score_label}; "
             f"allowed drop {c.max_drop}; p: one-sided paired t-test on wafer totals of Δ < −{c.max_drop}, Holm "
             f"across the metrics, gate at alpha {c.alpha}; CI {100 * (1 - c.alpha):.0f}% (descriptive). "
             f"Failed calls: base {c.n_base_failed}, candidate {c.n_candidate_failed}."
             + coverage_note(c) + "".join(f"\n\n⚠ {w}" for w in c.warnings) + "\n\n")
    accuracy = ("\nRight/wrong items, exact McNemar test (Holm over the accuracy tests; reported, not gated):\n\n"
                + markdown_table(ACCURACY_HEADER, accuracy_rows(c))) if c.accuracy else ""
    return intro + markdown_table(HEADER, table_rows(c)) + accuracy + f"\n{verdict(c)}\n"


def to_junit(c: Comparison) -> str:
    """JUnit XML: one test case per metric, a failure element for each regressed metric."""
    suite = ET.Element("testsuite", name="wafersage-compare", tests=str(len(c.deltas)),
                       failures=str(sum(d.regressed for d in c.deltas)), errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    for name, value in (("base", c.base_folder), ("candidate", c.candidate_folder), ("metric", c.score_label),
                        ("max_drop", c.max_drop), ("alpha", c.alpha), ("bench_hash", c.bench_hash),
                        ("base_judge_coverage", c.base_judge_coverage),
                        ("candidate_judge_coverage", c.candidate_judge_coverage),
                        *(("warning", w) for w in c.warnings)):
        ET.SubElement(props, "property", name=name, value=str(value))
    for d in c.deltas:
        case = ET.SubElement(suite, "testcase", classname=f"wafersage.compare.{c.candidate}", name=d.metric)
        ET.SubElement(ET.SubElement(case, "properties"), "property", name="verdict",
                      value="regressed" if d.regressed else "ok")
        summary = (f"{d.verdict(c.max_drop, c.alpha)}; candidate {d.candidate:.3f} vs base {d.base:.3f}, "
                   f"Δ {d.difference:+.3f} CI {_ci(d)}, {d.n_items} items on {d.n_wafers} wafers")
        if d.regressed:
            failure = ET.SubElement(case, "failure", message=f"{d.metric}: {d.verdict(c.max_drop, c.alpha)}",
                                    type="regression")
            failure.text = summary
        else:
            ET.SubElement(case, "system-out").text = f"{d.metric}: {summary}"
    for t in c.accuracy:  # reported, never failures: the gate is the score rule above
        case = ET.SubElement(suite, "testcase", classname=f"wafersage.compare.{c.candidate}", name=t.metric)
        ET.SubElement(case, "system-out").text = (
            f"{t.metric}: candidate {100 * t.candidate:.1f}% vs base {100 * t.base:.1f}%, only base right "
            f"{t.base_only}, only candidate right {t.candidate_only}, McNemar p {t.p_value:.3g} "
            f"(Holm {t.p_holm:.3g}), {t.n_items} items")
    suite.set("tests", str(len(c.deltas) + len(c.accuracy)))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
