"""Helpers of the lm-eval integration tests: a run folder holding given answers, and the checks that lm-eval's
metrics equal what ``wafersage score`` computes for the same answers."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import pytest

from wafersage.harness.lmeval.task.runtime import metric_names
from wafersage.harness.run.messages import SYSTEM_PROMPT, user_text
from wafersage.harness.run.records import RunInfo, Sample, SentRequest
from wafersage.harness.run.folder import rewrite_samples, write_run_info
from wafersage.harness.scoring.score_run import SCORES, SUMMARY, ItemScore, Summary
from wafersage.models.base import ModelResponse
from wafersage.tasks.bench.folder import Benchmark

#: lm-eval metric -> its value in the harness summary (``Estimate.value``)
SUMMARY_MEANS = {
    "rule_score": lambda s: s.rule.value,
    "rule_score_default": lambda s: s.rule_default.value if s.rule_default else None,
    "rule_defect_type": lambda s: s.per_category["defect_type"].value,
    "rule_consistency": lambda s: s.per_category["consistency"].value,
    "rule_spatial": lambda s: s.per_dimension["spatial"].value,
    "rule_morphology": lambda s: s.per_dimension["morphology"].value,
    "rule_root_cause": lambda s: s.per_dimension["root_cause"].value,
    "type_accuracy": lambda s: s.type_accuracy.value,
    "consistency_accuracy": lambda s: s.consistency_accuracy.value,
}


def write_run(folder: Path, bench: Benchmark, answers: Mapping[str, str | None], split: str = "test") -> Path:
    """A run folder with one sample per item in ``answers`` (``None``: a failed call), as ``wafersage eval``
    records it; ``wafersage score`` reads it."""
    items = {it.id: it for it in bench.all_items}
    samples = []
    for item_id, answer in answers.items():
        item = items[item_id]
        request = SentRequest(messages=[{"role": "system", "content": SYSTEM_PROMPT},
                                        {"role": "user", "content": user_text(item)}], image=item.image)
        response = ModelResponse(text=answer) if answer is not None else ModelResponse(error="scripted failure")
        samples.append(Sample(item_id=item.id, wafer_id=item.wafer_id, request=request, response=response))
    folder.mkdir(parents=True, exist_ok=True)
    rewrite_samples(folder / "samples.jsonl", samples)
    write_run_info(folder, RunInfo(
        model={"name": "scripted"}, model_name="scripted", deployment="baseline", bench_dir=str(bench.root.resolve()),
        bench_name=bench.name, bench_version=bench.version, bench_hash=bench.hash, split=split,
        n_items=len(samples), item_ids=list(answers), started_at="2026-01-01T00:00:00+00:00", n_ok=sum(a is not None for a in answers.values()),
        n_failed=sum(a is None for a in answers.values())))
    return folder


def read_scores(run: Path) -> tuple[dict[str, ItemScore], Summary]:
    lines = (run / SCORES).read_text(encoding="utf-8").splitlines()
    scores = {s.item_id: s for s in (ItemScore.model_validate_json(line) for line in lines)}
    return scores, Summary.model_validate_json((run / SUMMARY).read_text(encoding="utf-8"))


def assert_item_metrics_equal(metrics: Mapping[str, Mapping[str, float]], scores: Mapping[str, ItemScore]) -> None:
    """lm-eval's per-item metrics equal the harness's item scores, exactly (the same function computed both)."""
    assert set(metrics) == set(scores)
    for item_id, item_metrics in metrics.items():
        score = scores[item_id]
        assert item_metrics["rule_score"] == score.rule_score, item_id
        assert item_metrics[f"rule_{score.category}"] == score.rule_score, item_id
        if "rule_score_default" in item_metrics:
            assert item_metrics["rule_score_default"] == (score.rule_score_default or 0.0), item_id
        accuracy = {"defect_type": "type_accuracy", "consistency": "consistency_accuracy"}.get(score.category)
        if accuracy:
            assert item_metrics[accuracy] == float(bool(score.rule and score.rule.correct)), item_id
        assert not set(item_metrics) - {"rule_score", "rule_score_default", f"rule_{score.category}", accuracy}


def metrics_for(categories: Iterable[str], calibrated: bool = False) -> set[str]:
    """The metrics an lm-eval task over items of these categories reports."""
    return {name for category in categories for name in metric_names(category, calibrated)}


def assert_means_equal(task_results: Mapping[str, Any], summary: Summary) -> set[str]:
    """Every ``metric,none`` mean of one lm-eval task equals the harness summary's; returns the metrics seen."""
    seen = set()
    for metric, expected in SUMMARY_MEANS.items():
        key = f"{metric},none"
        if key in task_results:
            assert task_results[key] == pytest.approx(expected(summary), rel=1e-12, abs=1e-12), metric
            seen.add(metric)
    return seen
