"""Scored run folders as the reports read them: ``run.json``, ``samples.jsonl``, ``scores.jsonl``, ``summary.json``.

Reports never run or score anything; a folder that was not scored, or whose scores are older than its samples,
is refused with the file named and the command that fixes it. Per-item values for paired tests come from
:func:`item_values`: the headline metric (``judge`` or ``rule``), optionally restricted to one question category.
A failed model call counts as 0 (as in the scorer's headline mean); an item the judge left unscored is left out.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Literal, Sequence

from pydantic import ValidationError

from ..harness.run.records import RunInfo
from ..harness.run.folder import RunFolderError, load_run
from ..harness.scoring.score_run import SCORES, SUMMARY, ItemScore, Summary

ScoreKind = Literal["judge", "rule"]


class ReportInputError(ValueError):
    """A run folder cannot be reported on; the message names the file and the fix."""


class NotComparable(ValueError):
    """Runs that must not be ranked or compared together (other benchmark, split, judge or calibration)."""


@dataclass
class RunResult:
    """One scored run folder."""

    folder: Path
    info: RunInfo
    summary: Summary
    scores: list[ItemScore]
    name: str  # display name, unique within one report

    @property
    def has_judge(self) -> bool:
        return self.summary.judge is not None

    @property
    def item_ids(self) -> frozenset[str]:
        """The items of the run's selection (answered, failed or missing)."""
        return frozenset(s.item_id for s in self.scores)


def _unit(item_id: str, repeat: int) -> str:
    return f"{item_id}#{repeat}" if repeat else item_id


def load_result(folder: str | Path) -> RunResult:
    """Read a scored run folder; raise :class:`ReportInputError` naming the file and the fix."""
    folder = Path(folder)
    try:
        run = load_run(folder)
    except RunFolderError as exc:
        raise ReportInputError(str(exc)) from None
    summary_path, scores_path = folder / SUMMARY, folder / SCORES
    if not summary_path.exists() or not scores_path.exists():
        raise ReportInputError(f"{folder}: not scored yet (no {SUMMARY} / {SCORES}); run 'wafersage score {folder}'")
    try:
        summary = Summary.model_validate_json(summary_path.read_bytes())
    except ValidationError as exc:
        raise ReportInputError(f"{summary_path}: not a valid summary ({exc.errors()[0]['msg']}); "
                               f"rescore with 'wafersage score {folder}'") from None
    scores = []
    for lineno, line in enumerate(scores_path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            scores.append(ItemScore.model_validate_json(line))
        except ValidationError as exc:
            raise ReportInputError(f"{scores_path}:{lineno}: not a valid item score ({exc.errors()[0]['msg']}); "
                                   f"rescore with 'wafersage score {folder}'") from None
    selection = {(s.item_id, s.repeat) for s in scores}
    sampled = {(s.item_id, s.repeat): s.ok for s in run.samples if (s.item_id, s.repeat) in selection}
    scored = {(s.item_id, s.repeat): s.status == "scored" for s in scores if not s.missing}
    expected = run.info.n_items * run.info.repeats
    if sampled != scored or summary.bench_hash != run.info.bench_hash or summary.n_expected != expected:
        raise ReportInputError(f"{scores_path}: out of date with {folder / 'samples.jsonl'} (the run changed after "
                               f"it was scored); rescore with 'wafersage score {folder}'")
    return RunResult(folder=folder, info=run.info, summary=summary, scores=scores, name=run.info.model_name)


def load_results(folders: Iterable[str | Path]) -> list[RunResult]:
    """Load several run folders; models that share a name get the folder name added to tell them apart."""
    results = [load_result(f) for f in folders]
    if not results:
        raise ReportInputError("no run folders given; pass one or more scored run folders")
    model_names = [r.info.model_name for r in results]
    shared = [r for r in results if model_names.count(r.info.model_name) > 1]
    for label in (lambda r: r.info.model_name if r.folder.name == r.info.model_name
                  else f"{r.info.model_name} ({r.folder.name})",
                  lambda r: f"{r.info.model_name} ({r.folder.parent.name}/{r.folder.name})",
                  lambda r: f"{r.info.model_name} (#{results.index(r) + 1})"):
        names = [label(r) if r in shared else r.name for r in results]
        if len(set(names)) == len(names):
            break
    for r, name in zip(results, names):
        r.name = name
    return results


def check_same_benchmark(results: Sequence[RunResult]) -> None:
    """Refuse runs made on different benchmark files or splits: their scores are not on the same items."""
    first = results[0]
    for other in results[1:]:
        if other.summary.bench_hash != first.summary.bench_hash:
            raise NotComparable(
                f"{other.folder} was made on benchmark {other.summary.bench_name} v{other.summary.bench_version} "
                f"(hash {other.summary.bench_hash[:12]}) but {first.folder} on {first.summary.bench_name} "
                f"v{first.summary.bench_version} (hash {first.summary.bench_hash[:12]}); compare runs of one "
                "benchmark (rerun 'wafersage eval' on the same benchmark folder)")
        if other.summary.split != first.summary.split:
            raise NotComparable(f"{other.folder} evaluated split {other.summary.split!r} but {first.folder} split "
                                f"{first.summary.split!r}; evaluate both on the same --split")


def judge_names(summary: Summary) -> list[str]:
    """The names of the judges a run was scored with, in order (empty: no judge)."""
    return [identity.get("name", "JUDGE") for identity in summary.judges] or (
        [summary.judge_identity.get("name", "JUDGE")] if summary.judge_identity else [])


def rescore_command(results: Sequence[RunResult]) -> str:
    """The commands that score every run again with this wafersage (and the first run's judges and calibration)."""
    summary = results[0].summary
    options = " --calibration CALIBRATION.json" if summary.calibration_id else ""
    options += "".join(f" --judge {name}" for name in judge_names(summary))
    return " && ".join(f"wafersage score {r.folder}{options}" for r in results)


def _scorer(result: RunResult) -> str:
    summary = result.summary
    if summary.scorer_version is None:
        return "a scorer that did not record its version"
    return f"scorer version {summary.scorer_version} (constants {(summary.constants_sha256 or '?')[:12]})"


def check_same_scoring(results: Sequence[RunResult]) -> None:
    """Refuse runs scored by different scorers (version or constants) or with different calibrations; the message
    names the commands that rescore them alike."""
    first = results[0]
    for other in results[1:]:
        if other.summary.calibration_id != first.summary.calibration_id:
            raise NotComparable(
                f"{other.folder} was scored with calibration {other.summary.calibration_id or 'none (default constants)'}"
                f" but {first.folder} with {first.summary.calibration_id or 'none (default constants)'}; rescore both "
                "with the same --calibration file (or none)")
        scorers = (first.summary.scorer_version, first.summary.constants_sha256, first.summary.constants)
        if None in scorers or scorers != (other.summary.scorer_version, other.summary.constants_sha256,
                                          other.summary.constants):
            raise NotComparable(
                f"{first.folder} was scored by {_scorer(first)} and {other.folder} by {_scorer(other)}: their scores "
                f"would differ by the scorer, not the model; rescore both: {rescore_command(results)}")


def same_judge(results: Sequence[RunResult]) -> bool:
    """Whether every run was judged, by the same judges (models, settings and prompt templates, and with several
    judges how they are combined)."""
    identities = [r.summary.judge_identity for r in results]
    return all(r.has_judge for r in results) and all(i == identities[0] for i in identities)


def headline_kind(results: Sequence[RunResult]) -> ScoreKind:
    """``judge`` when every run has judge scores from one judge, else ``rule``."""
    return "judge" if same_judge(results) else "rule"


def score_label(kind: ScoreKind, summary: Summary) -> str:
    """What the headline number is, in words, so that judge and rule scores are never confused."""
    if kind == "judge":
        names = judge_names(summary)
        if len(names) > 1:
            combine = (summary.judge_identity or {}).get("combine", "mean")
            return f"LLM-judge score 0-10 ({combine} of {len(names)} judges: {', '.join(names)})"
        return f"LLM-judge score 0-10 ({names[0] if names else 'judge'})"
    if summary.calibration_id:
        return f"rule score 0-10 (calibrated, {summary.calibration_id})"
    return "rule score 0-10 (default constants)"


def item_scores(result: RunResult, kind: ScoreKind,
                category: str | None = None) -> Iterator[tuple[str, ItemScore, float]]:
    """(unit key, item score, value of the headline metric) per answer: failed calls count 0, items the judge left
    unscored are left out. The unit key is the item id, with ``#repeat`` for repeats after the first."""
    for s in result.scores:
        if category is not None and s.category != category:
            continue
        if kind == "rule" or s.status == "failed":
            yield _unit(s.item_id, s.repeat), s, (s.rule_score if kind == "rule" else 0.0)
        elif s.judge is not None and s.judge.status == "scored" and s.judge.score is not None:
            yield _unit(s.item_id, s.repeat), s, s.judge.score


def common_judged(results: Sequence[RunResult]) -> frozenset[str]:
    """The unit keys every run has a judge value for (failed calls count 0 and are included): a judge-ranked
    comparison uses these items only, so every model is measured on the same questions."""
    return frozenset.intersection(*(frozenset(item_values(r, "judge")) for r in results))


def item_values(result: RunResult, kind: ScoreKind, category: str | None = None) -> dict[str, float]:
    """Unit key -> value of the headline metric (see :func:`item_scores`)."""
    return {key: value for key, _, value in item_scores(result, kind, category)}


def item_correct(result: RunResult, category: str) -> dict[str, bool]:
    """Unit key -> right or wrong (the rule verdict) for the yes/no-gradable items of ``category`` (``defect_type``:
    exact type set, ``consistency``: the yes/no verdict); failed and missing answers are wrong."""
    return {_unit(s.item_id, s.repeat): bool(s.status == "scored" and s.rule and s.rule.correct)
            for s in result.scores if s.category == category}


def wafer_of(results: Sequence[RunResult]) -> dict[str, str]:
    """Item (and repeat) -> wafer id, over every run."""
    return {_unit(s.item_id, s.repeat): s.wafer_id for r in results for s in r.scores}
