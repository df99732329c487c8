"""The judges behind a report: who they are, how they sampled, how far they agree with each other, and how far
with a graded panel when that was measured.

Checked before trusted: ``wafersage agreement --panel DIR --judge NAME --json F`` measures a judge against a panel's
reference grades; ``wafersage report ... --judge-agreement F`` shows that measurement beside the judge that ranked
the runs (:func:`load_judge_checks`). A file that measured another judge (another model config or prompt template)
is refused, so a page never shows a check of a different judge.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, Field

from ..harness.scoring.judging.judges import covered_ratings
from ..harness.scoring.stats import Estimate, alpha_ci
from .results import ReportInputError, RunResult, judge_names

#: flagged answers the page lists (all of them are in each run's summary.json)
MAX_FLAGGED_SHOWN = 50


class JudgeCheck(BaseModel):
    """One judge's agreement with a graded panel's reference grades (from ``wafersage agreement --json``)."""

    judge: str = Field(description="the judge's name on this report")
    file: str = Field(description="the agreement file it was read from")
    panel: str | None = Field(description="the graded panel's folder")
    wafers: str | None = Field(description="the panel's wafers measured (all when None)")
    n: int = Field(description="panel answers the judge graded")
    spearman: float | None
    spearman_ci: tuple[float | None, float | None]
    kendall: float | None
    mae: float | None
    pairs: int = Field(description="source pairs the reference grades separate significantly")
    pairs_ordered_alike: int = Field(description="of those, the pairs the judge orders the same way")


def _same_judge(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two identities of one judge: the same model config (without secrets) and prompt template; the number of
    samples and other settings may differ."""
    return a.get("model") == b.get("model") and a.get("template_sha256") == b.get("template_sha256")


def load_judge_checks(paths: Sequence[Path], results: Sequence[RunResult]) -> list[JudgeCheck]:
    """The panel agreement of the runs' judges from ``wafersage agreement --json`` files; raises
    :class:`ReportInputError` for a file without a judge measurement or one of a judge these runs did not use."""
    summary = results[0].summary
    if paths and not summary.judges:
        raise ReportInputError("--judge-agreement shows the panel agreement of the judge that ranked the runs, but "
                               f"{results[0].folder} was scored without a judge; score the runs with --judge first")
    names = judge_names(summary)
    checks = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            section, identity = data["judge"], data["judge"]["judge"]
            pooled = section["pooled"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ReportInputError(f"{path}: not a judge agreement file; write one with 'wafersage agreement --panel "
                                   f"DIR --judge NAME --json {path}'") from None
        match = [name for name, used in zip(names, summary.judges) if _same_judge(used, identity)]
        if not match:
            raise ReportInputError(
                f"{path} measured judge {identity.get('name')!r} (its model config or prompt template), which did "
                f"not score these runs ({', '.join(names)}); measure the judge they used: 'wafersage agreement "
                f"--panel DIR --judge {names[0]} --json {path}'")
        checks.append(JudgeCheck(
            judge=match[0], file=str(path), panel=data.get("panel"), wafers=data.get("wafers"), n=pooled["n"],
            spearman=pooled["spearman"], spearman_ci=tuple(pooled["spearman_ci"]), kendall=pooled["kendall"],
            mae=pooled["mae"], pairs=section["pairs"], pairs_ordered_alike=section["pairs_ordered_alike"]))
    return checks


def _sampling(identity: dict[str, Any]) -> str:
    """How a judge's samples were drawn, in words (says so when the endpoint takes no temperature)."""
    settings = identity.get("settings", {})
    samples = settings.get("samples", 1)
    if samples == 1:
        return f"one judgement per answer at temperature {settings.get('temperature', 0):g}"
    if identity.get("temperature_sent", True):
        return f"{samples} judgements per answer at temperature {settings.get('sample_temperature'):g} (seeds differ)"
    return (f"{samples} judgements per answer, repeated at the provider's default temperature: this endpoint's config "
            "omits temperature (omit_params), so the spread measures that default, not the configured "
            f"{settings.get('sample_temperature'):g}")


def pooled_alpha(results: Sequence[RunResult], n_judges: int) -> Estimate | None:
    """The judges' interval Krippendorff's alpha over every model's answers that every judge scored (one unit per
    model and answer), with a 95% CI resampling wafers (a wafer's answers of every model together)."""
    rows = [(s.item_id, s.repeat, s.wafer_id, s.judges) for r in results for s in r.scores if s.judges]
    _, ratings, wafers = covered_ratings(rows, n_judges)
    return alpha_ci(ratings, wafers)


def judges_context(results: Sequence[RunResult], checks: Sequence[JudgeCheck]) -> dict[str, Any] | None:
    """What the page's judge section shows (None when the runs were not judged alike): each judge's identity and
    sampling, each run's coverage and spread, the judges' agreement and flagged answers, and panel checks."""
    first = results[0].summary
    if not first.judges or any(r.summary.judge_identity != first.judge_identity for r in results):
        return None
    names = judge_names(first)
    judges = [{"name": name, "model": identity.get("model", {}).get("model") or identity.get("model", {}).get(
                   "backend"), "template_sha256": identity.get("template_sha256"), "sampling": _sampling(identity),
               "checks": [c for c in checks if c.judge == name]}
              for name, identity in zip(names, first.judges)]
    runs, flagged = [], []
    for r in results:
        s, agreement = r.summary, r.summary.judge_agreement
        runs.append({"model": r.name, "coverage": s.judge_coverage, "unscored": s.n_judge_unscored,
                     "reasons": s.judge_unscored_reasons, "spread": s.judge_spread_mean, "flip_rate": s.judge_flip_rate,
                     "agreement": agreement})
        if agreement is not None:
            flagged += [(r.name, item) for item in agreement.flagged]
    flagged.sort(key=lambda pair: -pair[1].range)
    several = first.judge_agreement is not None
    return {"judges": judges, "runs": runs, "several": several, "names": names,
            "pooled": pooled_alpha(results, len(names)) if several else None,
            "combine": (first.judge_identity or {}).get("combine"),
            "disagreement": first.judge_agreement.disagreement if several else None,
            "flagged": flagged[:MAX_FLAGGED_SHOWN], "n_flagged": len(flagged)}
