"""Scored run folders for the report and compare tests: real benchmark folders (bench_factory), real runs of the
built-in baselines (run_eval) and the real scorer (score_run); ``tamper`` rewrites answers of a copied run."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from bench_factory import make_bench
from wafersage.harness.run.records import RunInfo, Sample
from wafersage.harness.run.runner import run_eval
from wafersage.harness.scoring.score_run import score_run

#: an answer that would run script in the page if it were inserted as HTML
INJECTED = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> The failing dies sit in the center.'


def scored_run(bench: Path, model: str, out: Path) -> Path:
    run_eval(bench, model, out_dir=out, progress=False)
    score_run(out, progress=False)
    return out


def tamper(source: Path, out: Path, answer: Callable[[Sample, int], str | None], model_name: str | None = None) -> Path:
    """Copy a run folder, replace the answer of every sample for which ``answer(sample, index)`` is not None,
    optionally rename the model, and score the copy."""
    shutil.copytree(source, out)
    for stale in ("scores.jsonl", "summary.json"):
        (out / stale).unlink(missing_ok=True)
    lines = (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        sample = Sample.model_validate_json(line)
        new = answer(sample, index)
        if new is not None:
            sample.response.text = new
            lines[index] = sample.model_dump_json()
    (out / "samples.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if model_name is not None:
        record = RunInfo.model_validate_json((out / "run.json").read_text(encoding="utf-8"))
        record.model_name = model_name
        (out / "run.json").write_text(record.model_dump_json(indent=2), encoding="utf-8")
    score_run(out, progress=False)
    return out


def make_runs(root: Path, n_wafers: int = 10) -> dict[str, Path]:
    """A benchmark with ``n_wafers`` wafers (2 train) and scored runs: oracle, a second oracle run, constant,
    random, and ``worse`` (the oracle with every other answer emptied)."""
    bench = make_bench(root / "bench", n_wafers=n_wafers, train_wafers=2)
    runs = {name: scored_run(bench, name, root / "runs" / name) for name in ("oracle", "constant", "random")}
    runs["oracle2"] = tamper(runs["oracle"], root / "runs" / "oracle2", lambda s, i: None)
    runs["worse"] = tamper(runs["oracle"], root / "runs" / "worse", lambda s, i: "" if i % 2 == 0 else None)
    runs["bench"] = bench
    return runs
