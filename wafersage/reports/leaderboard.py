"""The leaderboard: one row per scored run, ranked by the headline score, ties within significance marked.

The headline is the LLM-judge score when every run was judged by the same judge, else the rule score (calibrated
when the runs were scored with a calibration); :attr:`Leaderboard.score_label` says which. Adjacent ranks are
compared with :func:`wafersage.harness.scoring.stats.paired_comparison` on the items both runs answered: when the
difference is not significant at ``alpha`` the lower row is marked as tied with the one above.

Runs are ranked even when they are not over the same questions, but never silently: a run with missing answers
(interrupted; they count as failed) or whose items differ from the others' (another ``--limit``) gets ``flags``,
shown beside its name on the page and in every table, and the board's ``warnings`` say what differs.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

from pydantic import BaseModel, Field

from ..harness.scoring.stats import Estimate, paired_comparison
from ..tasks.bench.schema import DIMENSIONS
from .results import (
    RunResult, ScoreKind, check_same_benchmark, check_same_scoring, headline_kind, item_values, score_label, wafer_of,
)


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
    judge_name: str | None = None
    bench_version: str
    date: str | None = Field(None, description="when the run finished (ISO 8601)")
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
                                                                  "set, in words")


def _headline(result: RunResult, kind: ScoreKind) -> tuple[Estimate | None, dict[str, Estimate | None]]:
    s = result.summary
    if kind == "judge":
        return s.judge, {d: s.judge_per_dimension.get(d) for d in DIMENSIONS}
    return s.rule, {d: s.per_dimension.get(d) for d in DIMENSIONS}


def _row(result: RunResult, kind: ScoreKind, rank: int) -> Row:
    s, info = result.summary, result.info
    overall, dimensions = _headline(result, kind)
    return Row(
        rank=rank, model=result.name, folder=str(result.folder), deployment=s.deployment, overall=overall, rule=s.rule,
        judge=s.judge, dimensions=dimensions, type_accuracy=s.type_accuracy,
        consistency_accuracy=s.consistency_accuracy, latency_p50_s=s.latency_p50_s, latency_p95_s=s.latency_p95_s,
        input_tokens=s.input_tokens, output_tokens=s.output_tokens, cost_per_1000_questions=s.cost_per_1000_questions,
        n_items=s.n_items, n_failed=s.n_failed, n_missing=s.n_missing, n_unscored=s.n_judge_unscored,
        judge_name=(s.judge_identity or {}).get("name"), bench_version=s.bench_version,
        date=info.finished_at or info.started_at,
    )


def row_flags(result: RunResult, all_items: frozenset[str]) -> list[str]:
    """What makes a run's numbers unlike a complete run's over every item of the report."""
    flags = []
    if result.summary.n_missing:
        flags.append(f"incomplete: {result.summary.n_missing} of {result.summary.n_expected} answers missing "
                     "(counted as failed)")
    if result.item_ids != all_items:
        flags.append(f"other items: {len(result.item_ids & all_items)} of the {len(all_items)} items in this "
                     "report (another --limit or selection); its means are over other questions")
    return flags


def rank_results(results: Sequence[RunResult], kind: ScoreKind) -> list[RunResult]:
    """Best first by the headline score; runs without one last; name breaks exact ties."""
    def key(r: RunResult):
        overall, _ = _headline(r, kind)
        return (overall is None, -(overall.value if overall else 0.0), r.name)
    return sorted(results, key=key)


def build_leaderboard(results: Sequence[RunResult], alpha: float = 0.05) -> Leaderboard:
    """Rank scored runs of one benchmark; raises :class:`~.results.NotComparable` for a mixed set."""
    check_same_benchmark(results)
    check_same_scoring(results)
    kind = headline_kind(results)
    ranked = rank_results(results, kind)
    wafers = wafer_of(ranked)
    rows: list[Row] = []
    all_items = frozenset().union(*(r.item_ids for r in ranked))
    previous: dict[str, float] = {}
    for position, result in enumerate(ranked, 1):
        row = _row(result, kind, position)
        row.flags = row_flags(result, all_items)
        values = item_values(result, kind)
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
    )
