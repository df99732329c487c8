"""The degenerate-answer suite and the corruption ladder on a generated benchmark, with the baselines for scale.

    .venv/bin/python benchmarks/bench_gaming.py [--wafers 300]

Builds a benchmark (demo config, more wafers, a train split for the specialist and the blind adversaries), runs the
built-in baselines on its test split, and prints each degenerate strategy's mean rule score, share of the oracle's
(target: every strategy <= 15%, the oracle >= 9/10) and mean per question category, then the mean score of the
reference answers with 0..4 facts corrupted (target: strictly falling). The fitted strategies
(``constant_per_category``, ``question_text_only``) learn from the train split's items and scores, never the map.
"""
from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from wafersage.harness.scoring.gaming import corruption_ladder, run_strategies
from wafersage.harness.scoring.rules import RuleScorer
from wafersage.harness.run.folder import load_run
from wafersage.harness.run.runner import run_eval
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.synth.build import SynthConfig, build_benchmark

REPO = Path(__file__).resolve().parents[1]
TARGET_SHARE = 0.15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wafers", type=int, default=300)
    args = parser.parse_args()
    console = Console(width=170)
    with tempfile.TemporaryDirectory() as tmp:
        config = SynthConfig.from_yaml(REPO / "configs/synth/demo.yaml")
        config = config.model_copy(update={
            "source": config.source.model_copy(update={"n": args.wafers}),
            "splits": config.splits.model_copy(update={"train": 0.6, "val": 0.0, "test": 0.4}),
        })
        bench = Benchmark.load(build_benchmark(config, Path(tmp) / "bench", progress=False))
        items = bench.items("test")
        scorer = RuleScorer(bench.rubrics)
        baselines = ["random", "constant"]
        if importlib.util.find_spec("wafersage.models.specialist") is not None:
            baselines.insert(0, "specialist")
        else:
            console.print("wafersage/models/specialist.py is absent: no specialist row")
        others = {}
        for name in baselines:
            run_eval(bench.root, name, out_dir=Path(tmp) / "runs" / name, split="test")
            samples = load_run(Path(tmp) / "runs" / name).samples
            others[f"baseline:{name}"] = {s.item_id: s.response.text for s in samples}
        results = run_strategies(items, scorer, seed=0, others=others, train_items=bench.items("train"))
        ladder = corruption_ladder(items, scorer, max_facts=4)
    table = Table(title=f"rule score on {len(items)} test items of {len({i.wafer_id for i in items})} wafers")
    categories = list(dict.fromkeys(it.category for it in items))
    for column in ("answers", "mean 0-10", "share of oracle", "n items", "target", *categories):
        table.add_column(column)
    for r in results:
        degenerate = r.strategy not in ("oracle",) and not r.strategy.startswith("baseline:")
        verdict = ("ok" if r.share_of_oracle <= TARGET_SHARE else "FAIL") if degenerate else \
            ("ok" if r.strategy != "oracle" or r.mean >= 9 else "FAIL")
        table.add_row(r.strategy, f"{r.mean:.2f}", f"{r.share_of_oracle:.1%}", str(r.n),
                      f"<= {TARGET_SHARE:.0%}: {verdict}" if degenerate else ("oracle >= 9: " + verdict
                                                                             if r.strategy == "oracle" else ""),
                      *(f"{r.by_category[c]:.2f}" if c in r.by_category else "-" for c in categories))
    console.print(table)
    steps = " > ".join(f"{v:.2f}" for v in ladder)
    falling = all(b < a for a, b in zip(ladder, ladder[1:]))
    console.print(f"corruption ladder (0..4 wrong facts): {steps}  strictly falling: {falling}")


if __name__ == "__main__":
    main()
