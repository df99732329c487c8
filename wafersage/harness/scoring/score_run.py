"""Scoring a run folder: ``RUN/scores.jsonl`` (one :class:`ItemScore` per sample) and ``RUN/summary.json``.

A sample whose model call failed is ``failed``: it is counted (``n_failed``) and enters the headline means as 0
(``rule``), while ``rule_answered`` averages the answered items only — both are reported, nothing is silently 0.
A judge reply that cannot be parsed (or a judge call that failed) leaves the item's judge score ``unscored``
(counted, never a low score); ``judge_coverage`` is the share of answers with a judge score, and
``retry_unscored`` re-asks only the unscored ones, keeping the verdicts already in ``scores.jsonl``. With several
judges (:class:`~.judges.JudgePanel`) an answer is scored when every judge scored it, each judge's verdict is kept
and the summary reports their agreement.
With a calibration file the item scores use its constants and the summary also gives the default-constant means.

An interrupted run lacks samples: every item and repeat of its selection (``run.json``'s ``item_ids`` ×
``repeats``) without a sample gets a ``failed`` score with ``missing`` set, counted in ``n_failed`` and
``n_missing``, and scoring warns (:class:`IncompleteRunWarning`) — a partial run never looks like a complete one.
Samples are matched to the selection by key, so samples outside it (``n_extra``: an earlier command's larger
``--limit``) are left out and cannot hide missing ones.

Shards (``wafersage eval --shard K/N``) may be scored, and judged, each on its own node before they are merged:
when every shard given to ``wafersage merge`` was scored alike (:data:`.carry.SCORED_ALIKE`: scorer version and constants,
calibration, judge and its prompt template) and none changed since, :func:`.carry.carry_scores` writes the merged folder's
scores from theirs and its summary from those, as ``wafersage score`` would; otherwise it says what to run.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import warnings
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from pydantic import BaseModel, Field
from tqdm import tqdm

from ...tasks.bench.folder import Benchmark
from ...tasks.bench.schema import DIMENSIONS, Rubric, VQAItem
from . import SCORER_VERSION
from .calibrate import Calibration, CalibrationError
from .judging.judge import JudgeScore, LLMJudge
from .judging.judges import Graded, JudgeAgreement, JudgePanel, judge_agreement, unscored_reasons
from .answers import scored_answer
from ..run.records import Sample
from .rules import RuleConstants, RuleScore, RuleScorer, weighted_overall
from ..run.folder import Run, atomic_write, folder_lock, load_run
from .stats import DetectionRates, Estimate, breakdown, detection_rates, mean_ci

__all__ = ["IncompleteRunWarning", "ItemScore", "JudgeScore", "RuleScore", "Summary", "score_run",
           "load_bench_for"]

SCORES, SUMMARY = "scores.jsonl", "summary.json"


class ItemScore(BaseModel):
    item_id: str
    wafer_id: str
    repeat: int = 0
    category: str
    dimension: str
    difficulty: str
    labels: list[str]
    status: Literal["scored", "failed"]
    error: str | None = None
    answer: str = ""
    rule: RuleScore | None = None  # under the active constants (calibrated when a calibration is given)
    rule_score: float = 0.0  # 0–10; 0 for a failed sample
    rule_score_default: float | None = None  # default constants, when a calibration is active
    judge: JudgeScore | None = None
    judges: list[JudgeScore] = Field(default_factory=list, description="each judge's verdict with several judges "
                                                                       "('judge' is their combination)")
    missing: bool = Field(False, description="no sample: the run stopped before this item (a failed score)")


class Summary(BaseModel):
    model: str
    deployment: str
    bench_name: str
    bench_version: str
    bench_hash: str
    split: str
    n_items: int
    n_samples: int
    n_failed: int = Field(description="failed model calls plus missing samples, all scored 0")
    n_missing: int = Field(0, description="samples run.json's selection (n_items x repeats) expects but the run "
                                          "folder lacks: an interrupted run")
    n_expected: int | None = Field(None, description="samples the run's selection expects (n_items x repeats)")
    n_extra: int = Field(0, description="samples outside the run's selection (an earlier command's larger --limit "
                                        "or more --repeats), kept in the folder but not scored")
    n_judge_unscored: int | None = Field(None, description="answered samples without a judge score (a judge call "
                                                           "failed or its reply was unreadable; None: no judge)")
    judge_coverage: float | None = Field(None, description="share of the answered samples with a judge score (from "
                                                          "every judge); None without a judge or answers")
    judge_unscored_reasons: dict[str, int] = Field(default_factory=dict,
                                                   description="the most common reasons for unscored answers, counted")
    rule: Estimate = Field(description="mean rule score 0–10, failures as 0, active constants")
    rule_answered: Estimate | None = Field(None, description="the same over answered samples only")
    rule_default: Estimate | None = Field(None, description="default constants, when calibrated")
    weighted_dimension_score: float | None = Field(None, description="the paper's S = Σ w_d·mean_d, 0–10")
    judge: Estimate | None = None
    judge_per_dimension: dict[str, Estimate] = Field(default_factory=dict)
    judge_spread_mean: float | None = None
    judge_flip_rate: float | None = None
    per_dimension: dict[str, Estimate] = Field(default_factory=dict)
    per_category: dict[str, Estimate] = Field(default_factory=dict)
    per_difficulty: dict[str, Estimate] = Field(default_factory=dict)
    per_defect_type: dict[str, Estimate] = Field(default_factory=dict)
    type_accuracy: Estimate | None = None
    consistency_accuracy: Estimate | None = None
    detection: DetectionRates | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cost_per_1000_questions: float = 0.0
    constants: RuleConstants
    constants_sha256: str | None = Field(None, description="sha256 of the rule constants used (constants_sha256)")
    scorer_version: str | None = Field(None, description="harness.scoring.SCORER_VERSION of the scorer that wrote "
                                                         "this summary; none from a wafersage before it existed")
    calibration_id: str | None = None
    judge_identity: dict | None = Field(None, description="the judge (or, with several, the panel: their identities, "
                                                         "combine and disagreement threshold)")
    judges: list[dict] = Field(default_factory=list, description="every judge's identity: model config without "
                                                                 "secrets, settings, temperature_sent, prompt "
                                                                 "template and its sha256")
    judge_template_sha256: str | None = Field(None, description="sha256 of the judge prompt template, when every "
                                                                "judge used the same one")
    judge_agreement: JudgeAgreement | None = Field(None, description="several judges: per-judge means, "
                                                                    "Krippendorff's alpha, flagged answers")


class ScoringError(ValueError):
    """A run cannot be scored; the message names the file and the fix."""


class IncompleteRunWarning(UserWarning):
    """A run folder lacks samples its selection expects; they are scored as failed."""


MISSING_ERROR = "missing: the run stopped before this item (no sample in samples.jsonl)"


def select_samples(run: Run, bench: Benchmark) -> tuple[list[Sample], list[ItemScore], int]:
    """The run's samples matched to its selection by key (item, repeat) — ``run.json``'s ``item_ids`` (else the
    split's first ``n_items``, as ``wafersage eval`` selects them) × ``repeats`` — never by counts, so extra samples
    cannot hide missing ones. Returns the samples in the selection, a failed ``missing`` score for each key without a
    sample, and the number of samples outside it (answers of an earlier command with a larger ``--limit`` or more
    ``--repeats``: kept, not scored)."""
    info = run.info
    ids = info.item_ids if info.item_ids is not None else [it.id for it in bench.items(info.split)[:info.n_items]]
    items = {it.id: it for it in bench.all_items}
    unknown = [i for i in ids if i not in items]
    if unknown:
        raise ScoringError(f"{run.folder}/run.json: selected items {unknown[:3]} are not in the benchmark; the run "
                           "and the benchmark do not belong together")
    expected = [(items[i], repeat) for i in ids for repeat in range(info.repeats)]
    keys = {(item.id, repeat) for item, repeat in expected}
    have = {(s.item_id, s.repeat) for s in run.samples}
    selected = [s for s in run.samples if (s.item_id, s.repeat) in keys]
    missing = [ItemScore(item_id=item.id, wafer_id=item.wafer_id, repeat=repeat, category=item.category,
                         dimension=item.dimension, difficulty=item.difficulty, labels=item.labels, status="failed",
                         error=MISSING_ERROR, missing=True)
               for item, repeat in expected if (item.id, repeat) not in have]
    return selected, missing, len(run.samples) - len(selected)


def load_bench_for(run: Run) -> Benchmark:
    bench = Benchmark.load(run.info.bench_dir)
    if bench.hash != run.info.bench_hash:
        raise ScoringError(f"{run.folder}/run.json: made on benchmark hash {run.info.bench_hash[:12]}, but "
                           f"{run.info.bench_dir} now has {bench.hash[:12]}; rerun 'wafersage eval' on this benchmark")
    return bench


def _check_calibration(calibration: Calibration | None, bench: Benchmark, path: str) -> None:
    if calibration is not None and calibration.bench_hash not in (None, bench.hash):
        raise CalibrationError(f"{path}: calibrated on benchmark {calibration.bench_hash[:12]}, this run used "
                               f"{bench.hash[:12]}; calibrate on runs of this benchmark")


def score_samples(samples: Sequence[Sample], items: dict[str, VQAItem], scorer: RuleScorer,
                  default_scorer: RuleScorer | None) -> list[ItemScore]:
    out = []
    for sample in samples:
        item = items.get(sample.item_id)
        if item is None:
            raise ScoringError(f"sample for item {sample.item_id!r} is not in the benchmark; the run and the "
                               "benchmark do not belong together")
        base = dict(item_id=item.id, wafer_id=item.wafer_id, repeat=sample.repeat, category=item.category,
                    dimension=item.dimension, difficulty=item.difficulty, labels=item.labels)
        if not sample.ok:
            out.append(ItemScore(**base, status="failed", error=sample.response.error))
            continue
        answer = scored_answer(sample.response.text)
        rule = scorer.score(item, answer)
        default = default_scorer.score(item, answer).score if default_scorer else None
        out.append(ItemScore(**base, status="scored", answer=sample.response.text, rule=rule, rule_score=rule.score,
                             rule_score_default=default))
    return out


def constants_sha256(constants: RuleConstants) -> str:
    """sha256 of the rule constants, as recorded in ``summary.json``."""
    return hashlib.sha256(constants.model_dump_json().encode()).hexdigest()


def _estimate_of(scores: list[ItemScore], value) -> Estimate | None:
    rows = [(value(s), s.wafer_id) for s in scores]
    rows = [(v, w) for v, w in rows if v is not None]
    return mean_ci([v for v, _ in rows], [w for _, w in rows]) if rows else None


def _judge_fields(answered: list[ItemScore], judge: JudgePanel | None) -> dict:
    """The summary's judge coverage, identities and (several judges) agreement."""
    if judge is None:
        return {}
    verdicts = [s.judge for s in answered if s.judge is not None]
    templates = {i["template_sha256"] for i in judge.identities}
    several = len(judge.judges) > 1
    return {
        "n_judge_unscored": sum(v.status != "scored" for v in verdicts),
        "judge_coverage": sum(v.status == "scored" for v in verdicts) / len(answered) if answered else None,
        "judge_unscored_reasons": unscored_reasons(verdicts),
        "judge_identity": judge.identity, "judges": judge.identities,
        "judge_template_sha256": templates.pop() if len(templates) == 1 else None,
        "judge_agreement": judge_agreement([(s.item_id, s.repeat, s.wafer_id, s.judges) for s in answered],
                                           judge.labels, judge.settings) if several else None,
    }


def summarise(run: Run, bench: Benchmark, scores: list[ItemScore], constants: RuleConstants, *,
              calibration_id: str | None, judge: JudgePanel | None = None, judge_fields: dict | None = None,
              n_extra: int = 0) -> Summary:
    """The run's summary from its item scores (scored with ``constants`` and the calibration ``calibration_id``);
    the judge fields come from ``judge`` (or, carried from shards, ``judge_fields``)."""
    wafers = [s.wafer_id for s in scores]
    answered = [s for s in scores if s.status == "scored"]
    rubric_items = [s for s in scores if s.category in DIMENSIONS]
    per_dim = breakdown([s.rule_score for s in rubric_items], [s.wafer_id for s in rubric_items],
                        [s.dimension for s in rubric_items]) if rubric_items else {}
    multi = [(s, lbl) for s in scores for lbl in (s.labels or ["none"])]
    judged = [s for s in answered if s.judge and s.judge.status == "scored"]
    types = [s for s in answered if s.category == "defect_type"]
    info, usage = run.info, run.summary()
    flips = [s.judge.flip_rate for s in judged if s.judge.flip_rate is not None]
    spreads = [s.judge.spread for s in judged if s.judge.spread is not None]
    return Summary(
        model=info.model_name, deployment=info.deployment, bench_name=bench.name, bench_version=bench.version,
        bench_hash=bench.hash, split=info.split, n_items=len({s.item_id for s in scores}), n_samples=len(scores),
        n_failed=len(scores) - len(answered), n_missing=sum(s.missing for s in scores),
        n_expected=info.n_items * info.repeats, n_extra=n_extra,
        rule=mean_ci([s.rule_score for s in scores], wafers),
        rule_answered=_estimate_of(answered, lambda s: s.rule_score),
        rule_default=_estimate_of(scores, lambda s: s.rule_score_default if s.status == "scored" else 0.0)
        if calibration_id else None,
        weighted_dimension_score=weighted_overall({d: e.value for d, e in per_dim.items()}, constants)
        if per_dim else None,
        judge=_estimate_of(judged, lambda s: s.judge.score),
        judge_per_dimension={d: e for d in DIMENSIONS
                             if (e := _estimate_of(judged, lambda s, d=d: s.judge.dimensions.get(d)))},
        judge_spread_mean=float(np.mean(spreads)) if spreads else None,
        judge_flip_rate=float(np.mean(flips)) if flips else None,
        per_dimension=per_dim,
        per_category=breakdown([s.rule_score for s in scores], wafers, [s.category for s in scores]),
        per_difficulty=breakdown([s.rule_score for s in scores], wafers, [s.difficulty for s in scores]),
        per_defect_type=breakdown([s.rule_score for s, _ in multi], [s.wafer_id for s, _ in multi],
                                  [lbl for _, lbl in multi]),
        type_accuracy=_estimate_of([s for s in scores if s.category == "defect_type"],
                                   lambda s: float(bool(s.rule and s.rule.correct))),
        consistency_accuracy=_estimate_of([s for s in scores if s.category == "consistency"],
                                          lambda s: float(bool(s.rule and s.rule.correct))),
        detection=detection_rates(
            [bool(set(s.rule.types_mentioned) - {"none"}) for s in types],
            [bool(set(s.labels) - {"none"}) for s in types]) if types else None,
        latency_p50_s=usage.latency_p50_s, latency_p95_s=usage.latency_p95_s, input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens, cost_usd=usage.cost_usd,
        cost_per_1000_questions=1000.0 * usage.cost_usd / max(sum(not s.missing for s in scores), 1),
        constants=constants, constants_sha256=constants_sha256(constants), scorer_version=SCORER_VERSION,
        calibration_id=calibration_id,
        **(judge_fields if judge_fields is not None else _judge_fields(answered, judge)),
    )


def score_run(folder: str | Path, *, judge: JudgePanel | LLMJudge | None = None,
              calibration: Calibration | None = None, calibration_path: str = "calibration", progress: bool = True,
              retry_unscored: bool = False) -> Summary:
    """Score every sample of a run folder (rules, and the judge or judges when given); writes scores.jsonl and
    summary.json. ``retry_unscored`` keeps the judge verdicts of the folder's earlier scoring by the same judges and
    asks again only for those that are not scored. Holds the folder's lock meanwhile, so no eval or other scoring
    works on it at the same time."""
    panel = JudgePanel([judge]) if isinstance(judge, LLMJudge) else judge
    with folder_lock(folder):
        return _score_locked(Path(folder), panel, calibration, calibration_path, progress, retry_unscored)


def previous_verdicts(folder: Path, judge: JudgePanel) -> dict[tuple[str, int, str], list[JudgeScore]]:
    """Each judge's verdicts from the folder's earlier scoring, by (item, repeat, answer); refuses another judge."""
    summary_path = folder / SUMMARY
    if not summary_path.exists() or not (folder / SCORES).exists():
        raise ScoringError(f"{folder}: --retry-unscored needs an earlier judged scoring; run 'wafersage score "
                           f"{folder} --judge ...' first")
    earlier = Summary.model_validate_json(summary_path.read_bytes()).judge_identity
    if earlier != judge.identity:
        name = (earlier or {}).get("name", "no judge")
        raise ScoringError(f"{folder} was judged by {name} (or other judge settings), not {judge.identity['name']}; "
                           "--retry-unscored re-asks the same judges only: give the same --judge options and "
                           "settings, or drop --retry-unscored to judge every answer anew")
    verdicts = {}
    for line in (folder / SCORES).read_bytes().splitlines():
        if line.strip():
            s = ItemScore.model_validate_json(line)
            if s.judge is not None:
                verdicts[(s.item_id, s.repeat, s.answer)] = s.judges or [s.judge]
    return verdicts


def _score_locked(folder: Path, judge: JudgePanel | None, calibration: Calibration | None, calibration_path: str,
                  progress: bool, retry_unscored: bool) -> Summary:
    run = load_run(folder)
    bench = load_bench_for(run)
    _check_calibration(calibration, bench, calibration_path)
    constants = calibration.constants if calibration else RuleConstants()
    scorer = RuleScorer.for_benchmark(bench, constants)
    default_scorer = scorer.with_constants(RuleConstants()) if calibration else None
    items = {it.id: it for it in bench.all_items}
    samples, missing, n_extra = select_samples(run, bench)
    run = dataclasses.replace(run, samples=samples)
    scores = score_samples(run.samples, items, scorer, default_scorer)
    if missing:
        warnings.warn(f"{folder}: {len(missing)} of {run.info.n_items * run.info.repeats} expected answers are "
                      "missing (the run stopped early); they are scored as failed (0). Rerun the same 'wafersage "
                      "eval' command on this folder to finish it, then score again", IncompleteRunWarning,
                      stacklevel=3)
    scores += missing
    if judge is not None:
        answered = [s for s in scores if s.status == "scored"]
        triples: list[tuple[VQAItem, Rubric, str]] = [
            (items[s.item_id], bench.rubrics[s.wafer_id], scored_answer(s.answer)) for s in answered]
        previous = None
        if retry_unscored:
            earlier = previous_verdicts(folder, judge)
            previous = [earlier.get((s.item_id, s.repeat, s.answer)) for s in answered]
        total = judge.n_requests(len(triples), previous)
        with tqdm(total=total, desc="judging", unit="verdict", disable=not progress) as bar:
            verdicts = asyncio.run(_judge(judge, triples, bar.update, previous))
        for s, (verdict, per_judge) in zip(answered, verdicts):
            s.judge, s.judges = verdict, per_judge
    atomic_write(folder / SCORES, b"".join(s.model_dump_json().encode() + b"\n" for s in scores))
    summary = summarise(run, bench, scores, constants, calibration_id=calibration.id if calibration else None,
                        judge=judge, n_extra=n_extra)
    atomic_write(folder / SUMMARY, summary.model_dump_json(indent=2).encode() + b"\n")
    return summary


async def _judge(judge: JudgePanel, triples, update, previous) -> list[Graded]:
    try:
        return await judge.grade(triples, progress=update, previous=previous)
    finally:
        await judge.aclose()
