"""Scores of a merged run folder carried from its shards, when every shard was scored alike (same scorer version,
constants, calibration and judge) and none changed since: the judge then runs once per shard, never again."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from pydantic import ValidationError

from . import SCORER_VERSION
from ..run.folder import Run, atomic_write, folder_lock, load_run
from .judging.judges import unscored_reasons
from .score_run import SCORES, SUMMARY, ItemScore, Summary, load_bench_for, summarise


#: what must be equal in the shards' summaries for their item scores to mix
SCORED_ALIKE = ("scorer_version", "constants_sha256", "calibration_id", "judge_identity", "judge_template_sha256")


def _scored(run: Run) -> tuple[Summary, list[ItemScore]] | str:
    """The shard's summary and item scores, or why they cannot be carried."""
    folder = run.folder
    if not (folder / SUMMARY).exists() or not (folder / SCORES).exists():
        return f"{folder} is not scored"
    try:
        summary = Summary.model_validate_json((folder / SUMMARY).read_bytes())
        scores = [ItemScore.model_validate_json(line) for line in (folder / SCORES).read_bytes().splitlines()
                  if line.strip()]
    except ValidationError:
        return f"{folder}'s scores are not readable by this wafersage"
    selection = {(i, r) for i in run.info.item_ids or [] for r in range(run.info.repeats)}
    sampled = {(s.item_id, s.repeat): (s.ok, s.response.text if s.ok else "") for s in run.samples
               if (s.item_id, s.repeat) in selection}
    scored = {(s.item_id, s.repeat): (s.status == "scored", s.answer) for s in scores if not s.missing}
    if sampled != scored or {(s.item_id, s.repeat) for s in scores} != selection:
        return f"{folder} changed after it was scored"
    return summary, scores


def carry_scores(shards: Sequence[str | Path], merged: str | Path) -> Summary | str:
    """Write the merged folder's scores from its shards' (see the module docstring); returns its summary, or the
    reason they were not carried (the merged folder is then left unscored)."""
    results = [_scored(load_run(folder)) for folder in shards]
    reasons = [result for result in results if isinstance(result, str)]
    if reasons:
        return "; ".join(reasons)
    first = results[0][0]
    if len(first.judges) > 1:
        return f"{shards[0]} was graded by several judges; score the merged folder once"
    if first.scorer_version != SCORER_VERSION:
        return (f"{shards[0]} was scored by scorer version {first.scorer_version}, this wafersage's is "
                f"{SCORER_VERSION}")
    for folder, (summary, _) in zip(shards[1:], results[1:]):
        differ = [field for field in SCORED_ALIKE if getattr(summary, field) != getattr(first, field)]
        if differ:
            return (f"{folder} and {shards[0]} were scored differently ({', '.join(differ)}); score the shards "
                    "alike, or the merged folder once")
    scores = {(s.item_id, s.repeat): s for _, shard_scores in results for s in shard_scores}
    run = load_run(merged)
    order = [(i, r) for i in run.info.item_ids or [] for r in range(run.info.repeats)]
    merged_scores = [scores[key] for key in order]
    summary = summarise(run, load_bench_for(run), merged_scores, first.constants,
                        calibration_id=first.calibration_id, judge_fields=_carried_judge_fields(first, merged_scores))
    with folder_lock(merged):
        atomic_write(Path(merged) / SCORES, b"".join(s.model_dump_json().encode() + b"\n" for s in merged_scores))
        atomic_write(Path(merged) / SUMMARY, summary.model_dump_json(indent=2).encode() + b"\n")
    return summary


def _carried_judge_fields(first: Summary, scores: list[ItemScore]) -> dict:
    """The judge fields of a summary merged from shards graded by the same one judge."""
    if first.judge_identity is None:
        return {}
    verdicts = [s.judge for s in scores if s.status == "scored" and s.judge is not None]
    answered = [s for s in scores if s.status == "scored"]
    return {"judge_identity": first.judge_identity, "judges": first.judges,
            "judge_template_sha256": first.judge_template_sha256,
            "n_judge_unscored": sum(v.status != "scored" for v in verdicts),
            "judge_coverage": sum(v.status == "scored" for v in verdicts) / len(answered) if answered else None,
            "judge_unscored_reasons": unscored_reasons(verdicts)}
