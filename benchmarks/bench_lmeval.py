"""Cost of the lm-eval hooks: export time, task loading, and process_results per item against the harness scorer.

Builds the demo benchmark in a temporary folder, exports it, loads ``wafersage_all`` through lm-eval's TaskManager
and scores every item's reference answer through lm-eval's ``process_results`` and through
``harness.scoring.score_samples`` directly; prints the figures (no assertions). ``python benchmarks/bench_lmeval.py``
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from wafersage.harness.lmeval.task_folder import export_task_folder
from wafersage.harness.run.records import Sample, SentRequest
from wafersage.harness.scoring.rules import RuleScorer
from wafersage.harness.scoring.score_run import score_samples
from wafersage.models.base import ModelResponse
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.synth.build import SynthConfig, build_benchmark

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory() as tmp:
        bench_dir = build_benchmark(SynthConfig.from_yaml(REPO / "configs/synth/demo.yaml"), Path(tmp) / "bench",
                                    progress=False)
        started = time.perf_counter()
        export_task_folder(bench_dir, Path(tmp) / "tasks")
        exported = time.perf_counter()
        task = TaskManager(include_path=str(Path(tmp) / "tasks"), include_defaults=False).load(
            ["wafersage_all"])["tasks"]["wafersage_all"]
        docs = list(task.test_docs())
        loaded = time.perf_counter()
        for doc in docs:
            task.process_results(doc, [doc["answer"]])
        lm_eval_s = time.perf_counter() - loaded

        bench = Benchmark.load(bench_dir)
        items = {it.id: it for it in bench.all_items}
        samples = [Sample(item_id=d["id"], wafer_id=d["wafer_id"], request=SentRequest(messages=[]),
                          response=ModelResponse(text=d["answer"])) for d in docs]
        begin = time.perf_counter()
        score_samples(samples, items, RuleScorer(bench.rubrics), None)
        harness_s = time.perf_counter() - begin
    print(f"items: {len(docs)}")
    print(f"export: {1000 * (exported - started):.0f} ms; lm-eval task load (docs included): "
          f"{1000 * (loaded - exported):.0f} ms")
    print(f"process_results: {1e3 * lm_eval_s / len(docs):.3f} ms/item (first call builds the scorer)")
    print(f"score_samples directly (fresh scorer): {1e3 * harness_s / len(docs):.3f} ms/item")


if __name__ == "__main__":
    main()
