"""The leaderboard: one row per scored run, ranked by the headline score, ties within significance marked.

The headline is the LLM-judge score when every run was judged by the same judge (or judges), else the rule score
(calibrated when the runs were scored with a calibration); :attr:`Leaderboard.score_label` says which. Adjacent
ranks are compared with :func:`wafersage.harness.scoring.stats.paired_comparison` on the items both runs answered:
when the difference is not significant at ``alpha`` the lower row is marked as tied with the one above.

A judge-ranked board is paired: every judge number (score, CI, dimensions, ties) is over the items every run has a
judge score for (:func:`~.results.common_judged`; failed calls count 0), never over each run's own judged share, and
each row shows its judge coverage. A run whose coverage is below ``CoverageSettings.min_coverage`` is flagged
loudly, or the board is refused (``on_low="refuse"``) with the command that re-asks the judge.

Runs are ranked even when they are not over the same questions, but never silently: a run with missing answers
(interrupted; they count as failed) or whose items differ from the others' (another ``--limit``) gets ``flags``,
shown beside its name on the page and in every table, and the board's ``warnings`` say what differs.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

from pydantic import BaseModel, Field

from ..harness.scoring.judging.judges import CoverageSettings
from ..harness.scoring.stats import Estimate, Paired, mean_ci, paired_comparison
from ..tasks.bench.schema import DIMENSIONS
from .judges import JudgeCheck
from .results import (
    NotComparable, RunResult, ScoreKind, check_same_benchmark, check_same_scoring, common_judged, headline_kind,
    item_values, judge_names, score_label, wafer_of,
)
from .vision import split_blind_runs, vision_gain


class Row(BaseModel):
    """One model on the leaderboard."""

    rank: int
    model: str
    folder: str
    deployment: str = Field(description="api, local, baseline or imported (answers produced elsewhere, read by "
                                        "'wafersage import-answers')")
    overall: Estimate | None = Field(description="the headline score (see Leaderboard.score_kind) with its 95% CI")
    rule: Estimate = Field(description="rule score 0-10, failures as 0")
    judge: Estimate | None = None
    dimensions: dict[str, Estimate | None] = Field(description="per-dimension headline score")
    type_accuracy: Estimate | None = None
    consistency_accuracy: Estimate | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_per_1000_questions: float = 0.0
    n_items: int
    n_failed: int = Field(description="failed calls plus missing answers, all scored 0")
    n_missing: int = Field(0, description="answers missing from an interrupted run (counted in n_failed)")
    flags: list[str] = Field(default_factory=list, description="why this row is not like the others (missing "
                                                               "answers, another item set); empty when it is")
    n_unscored: int | None = Field(None, description="answers the judge could not score (None: no judge)")
    judge_coverage: float | None = Field(None, description="share of the answers with a judge score (None: no judge)")
    judge_name: str | None = None
    bench_version: str
    date: str | None = Field(None, description="when the run finished (ISO 8601)")
    blind: Estimate | None = Field(None, description="headline score of the model's run without the image")
    vision_gain: Paired | None = Field(None, description="score minus blind score on shared items (paired, by wafer)")
    tied_with_above: bool = Field(False, description="not significantly different from the row above")
    p_vs_above: float | None = Field(None, description="paired permutation p-value against the row above")


class Leaderboard(BaseModel):
    score_kind: ScoreKind
    score_label: str
    alpha: float
    bench_name: str
    bench_version: str
    bench_hash: str
    split: str
    calibration_id: str | None
    generated_at: str
    rows: list[Row]
    dimensions: list[str] = Field(default_factory=lambda: list(DIMENSIONS))
    warnings: list[str] = Field(default_factory=list, description="rows that are not over the same complete item "
                                                                  "set, or judged too little, in words")
    n_common: int | None = Field(None, description="judge-ranked: the answers every run has a judge score for; every "
                                                   "judge number on the board is over these")
    min_judge_coverage: float | None = Field(None, description="judge-ranked: the coverage below which a run is "
                                                              "flagged")
    judge_checks: list[JudgeCheck] = Field(default_factory=list, description="the judges' agreement with a graded "
                                                                             "panel, where one was measured")


Headline = tuple[Estimate | None, dict[str, Estimate | None]]


def _headline(result: RunResult, kind: ScoreKind, common: frozenset[str]) -> Headline:
    """The row's headline score and per-dimension scores: the summary's rule figures, or the judge score over the
    ``common`` items (overall and by question category)."""
    s = result.summary
    if kind == "rule":
        return s.rule, {d: s.per_dimension.get(d) for d in DIMENSIONS}
    wafers = wafer_of([result])

    def over(category: str | None) -> Estimate | None:
        values = {k: v for k, v in item_values(result, kind, category).items() if k in common}
        return mean_ci(list(values.values()), [wafers[k] for k in values]) if values else None
    return over(None), {d: over(d) for d in DIMENSIONS}


def _row(result: RunResult, headline: Headline, rank: int) -> Row:
    s, info = result.summary, result.info
    overall, dimensions = headline
    return Row(
        rank=rank, model=result.name, folder=str(result.folder), deployment=s.deployment, overall=overall, rule=s.rule,
        judge=s.judge, dimensions=dimensions, type_accuracy=s.type_accuracy,
        consistency_accuracy=s.consistency_accuracy, latency_p50_s=s.latency_p50_s, latency_p95_s=s.latency_p95_s,
        input_tokens=s.input_tokens, output_tokens=s.output_tokens, cost_per_1000_questions=s.cost_per_1000_questions,
        n_items=s.n_items, n_failed=s.n_failed, n_missing=s.n_missing, n_unscored=s.n_judge_unscored,
        judge_coverage=s.judge_coverage, judge_name=" + ".join(judge_names(s)) or None,
        bench_version=s.bench_version, date=info.finished_at or info.started_at,
    )


def row_flags(result: RunResult, all_items: frozenset[str], kind: ScoreKind = "rule",
              coverage: CoverageSettings | None = None, n_common: int = 0) -> list[str]:
    """What makes a run's numbers unlike a complete run's over every item of the report."""
    flags = []
    if result.summary.n_missing:
        flags.append(f"incomplete: {result.summary.n_missing} of {result.summary.n_expected} answers missing "
                     "(counted as failed)")
    if result.item_ids != all_items:
        where = ("judge-ranked on the items every run shares" if kind == "judge"
                 else "its means are over other questions")
        flags.append(f"other items: {len(result.item_ids & all_items)} of the {len(all_items)} items in this "
                     f"report (another --limit or selection); {where}")
    if kind == "judge" and coverage is not None and coverage.low(result.summary.judge_coverage):
        flags.append(low_coverage_flag(result, coverage, n_common))
    return flags


def low_coverage_flag(result: RunResult, coverage: CoverageSettings, n_common: int) -> str:
    s = result.summary
    return (f"LOW JUDGE COVERAGE: only {100 * s.judge_coverage:.0f}% of its answers have a judge score "
            f"({s.n_judge_unscored} unscored), below the {100 * coverage.min_coverage:.0f}% threshold; ranked on the "
            f"{n_common} items every run has a judge score for")


def _refuse_low_coverage(results: Sequence[RunResult], coverage: CoverageSettings) -> None:
    low = [r for r in results if coverage.low(r.summary.judge_coverage)]
    if low:
        names = ", ".join(f"{r.folder} ({100 * r.summary.judge_coverage:.0f}%)" for r in low)
        judges = "".join(f" --judge {name}" for name in judge_names(low[0].summary))
        raise NotComparable(
            f"judge coverage below {100 * coverage.min_coverage:.0f}%: {names}; the judge score would compare the "
            f"models on a fraction of the items. Re-ask the judge for the unscored answers ('wafersage score RUN"
            f"{judges} --retry-unscored'), or rank with a flag instead (--on-low-coverage flag)")


def rank_results(results: Sequence[RunResult], headlines: dict[str, Headline]) -> list[RunResult]:
    """Best first by the headline score; runs without one last; name breaks exact ties."""
    def key(r: RunResult):
        overall, _ = headlines[r.name]
        return (overall is None, -(overall.value if overall else 0.0), r.name)
    return sorted(results, key=key)


def build_leaderboard(results: Sequence[RunResult], alpha: float = 0.05,
                      coverage: CoverageSettings | None = None) -> Leaderboard:
    """Rank scored runs of one benchmark; raises :class:`~.results.NotComparable` for a mixed set, for judge-ranked
    runs that share no judged item, and for runs below the judge coverage threshold when ``coverage.on_low`` is
    ``refuse``."""
    check_same_benchmark(results)
    check_same_scoring(results)
    coverage = coverage or CoverageSettings()
    kind = headline_kind(results)
    to_rank, blind_runs = split_blind_runs(results)
    common = common_judged(to_rank) if kind == "judge" else frozenset()
    if kind == "judge":
        if not common:
            raise NotComparable("no item has a judge score in every run, so the judge cannot rank them; re-ask the "
                                "judge for the unscored answers ('wafersage score RUN --judge ... --retry-unscored')")
        if coverage.on_low == "refuse":
            _refuse_low_coverage(to_rank, coverage)
    headlines = {r.name: _headline(r, kind, common) for r in to_rank}
    ranked = rank_results(to_rank, headlines)
    wafers = wafer_of(ranked)
    rows: list[Row] = []
    all_items = frozenset().union(*(r.item_ids for r in ranked))
    previous: dict[str, float] = {}
    for position, result in enumerate(ranked, 1):
        row = _row(result, headlines[result.name], position)
        row.flags = row_flags(result, all_items, kind, coverage, len(common))
        if result.name in blind_runs:
            row.blind, row.vision_gain = vision_gain(result, blind_runs[result.name], kind)
        values = item_values(result, kind)
        if kind == "judge":
            values = {k: v for k, v in values.items() if k in common}
        if previous and set(values) & set(previous):
            paired = paired_comparison(previous, values, wafers)
            row.p_vs_above = paired.p_value
            row.tied_with_above = paired.p_value >= alpha
        rows.append(row)
        previous = values
    first = ranked[0].summary
    return Leaderboard(
        score_kind=kind, score_label=score_label(kind, first), alpha=alpha, bench_name=first.bench_name,
        bench_version=first.bench_version, bench_hash=first.bench_hash, split=first.split,
        calibration_id=first.calibration_id, generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        rows=rows, warnings=[f"{row.model}: {flag}" for row in rows for flag in row.flags],
        n_common=len(common) if kind == "judge" else None,
        min_judge_coverage=coverage.min_coverage if kind == "judge" else None,
    )
