"""Data for the page's sample browser and methodology section, read from run folders and the benchmark folder.

The browser data is plain JSON (embedded in a ``<script type="application/json">`` block; the page inserts every
string with ``textContent``). Wafer images are the benchmark's PNGs as base64 ``data:`` URIs, one per wafer.
When the benchmark folder is gone (a report made on another machine) the answers are still shown, without
questions, references or images, and a note says why.
"""
from __future__ import annotations

import base64
from typing import Any, Sequence

from ..harness.scoring.calibrate import Calibration
from ..tasks.bench.folder import Benchmark, BenchmarkError
from ..tasks.bench.schema import VQAItem
from .results import ReportInputError, RunResult


def open_benchmark(results: Sequence[RunResult]) -> tuple[Benchmark | None, str | None]:
    """The runs' benchmark folder, checked against their hash; else None and the reason. A folder of that hash
    whose items name files outside it is refused (:class:`ReportInputError`)."""
    info = results[0].info
    try:
        bench = Benchmark.load(info.bench_dir)
    except BenchmarkError as exc:
        return None, f"benchmark folder unavailable ({exc}); questions, references and images are not shown"
    if bench.hash != info.bench_hash:
        return None, (f"{info.bench_dir} now holds another benchmark (hash {bench.hash[:12]}, the runs used "
                      f"{info.bench_hash[:12]}); questions, references and images are not shown")
    try:
        bench.items()  # reads items.jsonl, refusing image paths that leave the folder
    except BenchmarkError as exc:
        raise ReportInputError(str(exc)) from None
    return bench, None


def _answer(result: RunResult, score) -> dict[str, Any]:
    rule = score.rule
    why = rule.explanation if rule else None
    judge = score.judge
    return {
        "model": result.name, "status": score.status, "error": score.error, "answer": score.answer,
        "rule_score": round(score.rule_score, 2), "metric": rule.metric if rule else None,
        "facts_matched": why.matched if why else [], "facts_partial": why.partial if why else [],
        "facts_missed": why.missed if why else [], "facts_contradicted": (why.contradicted + why.hedged) if why else [],
        "phrases_hit": why.phrases if why else [], "phrases_contradicted": why.contradicting_phrases if why else [],
        "types_mentioned": rule.types_mentioned if rule else [],
        "flags": rule.flags if rule else [],
        "judge_score": judge.score if judge else None,
        "judge_status": judge.status if judge else None,
        "rationale": (judge.rationale or judge.reason) if judge else None,
    }


def sample_data(results: Sequence[RunResult], bench: Benchmark | None, max_items: int) -> dict[str, Any]:
    """Items (first ``max_items`` in benchmark order) with every model's answer, and the wafers' images."""
    answers: dict[str, list[dict[str, Any]]] = {}
    first_seen: dict[str, Any] = {}
    for result in results:
        for score in result.scores:
            if score.repeat:
                continue  # the browser shows the first answer of each item
            answers.setdefault(score.item_id, []).append(_answer(result, score))
            first_seen.setdefault(score.item_id, score)
    items = {it.id: it for it in bench.all_items} if bench else {}
    order = [i for i in items if i in answers] if items else list(answers)
    shown = order[:max_items]
    rows, images = [], {}
    for item_id in shown:
        score, item = first_seen[item_id], items.get(item_id)
        rows.append({
            "id": item_id, "wafer": score.wafer_id, "category": score.category, "difficulty": score.difficulty,
            "labels": score.labels, "question": item.question if item else None,
            "reference": item.answer if item else None,
            "expected_yes": item.expected_yes if item else None, "answers": answers[item_id],
        })
        if bench and item and score.wafer_id not in images:
            images[score.wafer_id] = _image_uri(bench, item)
    return {"items": rows, "images": images, "n_total": len(order), "n_shown": len(shown)}


def _image_uri(bench: Benchmark, item: VQAItem) -> str:
    """The item's image as a ``data:`` URI; a path outside the benchmark folder or a file that is not a PNG or JPEG
    within the size limits refuses the report (naming the item and the path) rather than embed it."""
    try:
        path = bench.image_path(item)
    except BenchmarkError as exc:
        raise ReportInputError(f"{exc}; the page embeds only the benchmark's own images") from None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def methodology(results: Sequence[RunResult], bench: Benchmark | None,
                calibration: Calibration | None) -> dict[str, Any]:
    """What the page's methodology section shows: benchmark manifest, scorer constants, calibration, judge,
    package versions and git commits of the runs."""
    first = results[0].summary
    manifest = bench.manifest if bench else {}
    files = manifest.get("files", {})
    fit = None
    if calibration is not None:
        fit = {name: stats.model_dump() for name, stats in (
            ("default constants", calibration.defaults), ("calibrated, in-fold", calibration.in_fold),
            ("calibrated, out-of-fold", calibration.out_of_fold),
            ("upper reference (GBM)", calibration.upper_reference))}
    return {
        "bench": {"name": first.bench_name, "version": first.bench_version, "hash": first.bench_hash,
                  "split": first.split, "seed": manifest.get("seed"), "sources": manifest.get("sources", []),
                  "counts": manifest.get("counts", {}), "wafersage_version": manifest.get("wafersage_version"),
                  "file_hashes": {k: v for k, v in files.items() if "/" not in k}, "n_files": len(files)},
        "constants": first.constants.model_dump(),
        "scorer_version": first.scorer_version,
        "calibration_id": first.calibration_id,
        "calibration": {"id": calibration.id, "n_items": calibration.n_items, "n_wafers": calibration.n_wafers,
                        "judge": calibration.judge, "fit": fit} if calibration else None,
        "judge": first.judge_identity,
        "runs": [{"model": r.name, "folder": str(r.folder), "packages": r.info.packages, "git": r.info.git_commit,
                  "started": r.info.started_at, "finished": r.info.finished_at, "offline": r.info.offline}
                 for r in results],
    }

