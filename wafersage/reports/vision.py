"""Blind runs beside their models: how much of a model's score only seeing the map earns.

A run made with ``wafersage eval --no-image`` is named ``NAME (no image)``. On the leaderboard it is not ranked on
its own when the run of ``NAME`` is in the report: its score is shown in that row as the *blind* score, and the
*vision gain* is the paired difference (NAME − blind) over the items both answered, with a 95% CI resampling
wafers. A model without a blind run shows none (the oracle and the specialist read the map itself and cannot have
one).
"""
from __future__ import annotations

from typing import Sequence

from ..harness.run.runner import NO_IMAGE_SUFFIX
from ..harness.scoring.stats import Estimate, Paired, paired_comparison
from .results import RunResult, ScoreKind, item_values, wafer_of


def is_blind(result: RunResult) -> bool:
    return bool(result.info.model.get("no_image"))


def sighted_name(result: RunResult) -> str:
    """The model a blind run belongs to: its name without the suffix."""
    return result.name.removesuffix(f" {NO_IMAGE_SUFFIX}")


def split_blind_runs(results: Sequence[RunResult]) -> tuple[list[RunResult], dict[str, RunResult]]:
    """(runs to rank, blind runs by the name of the run they belong to); a blind run whose model is not in the
    report stays a run to rank."""
    names = {r.name for r in results}
    blind = {sighted_name(r): r for r in results if is_blind(r) and sighted_name(r) in names}
    ranked = [r for r in results if not (is_blind(r) and sighted_name(r) in blind)]
    return ranked, blind


def vision_gain(result: RunResult, blind: RunResult, kind: ScoreKind) -> tuple[Estimate | None, Paired | None]:
    """(the blind run's headline score, the paired gain of ``result`` over it on shared items)."""
    mine, theirs = item_values(result, kind), item_values(blind, kind)
    if not set(mine) & set(theirs):
        return None, None
    blind_score = blind.summary.judge if kind == "judge" else blind.summary.rule
    return blind_score, paired_comparison(theirs, mine, wafer_of([result, blind]))
