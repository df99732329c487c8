"""Would dropping every item a blind adversary scores well on make the benchmark need the image? (MMStar-style)

    .venv/bin/python benchmarks/bench_item_filter.py [--config configs/synth/demo.yaml] [--other-seed 1000]

Builds the config with every spare question kept (the blind filter in 'flag' mode, spares written for val and
test), then scores every test item's answers from four blind adversaries fitted on the benchmark's own train split
(``constant_per_category``, ``question_text_only``, ``blind-prior``, ``blind-question``): the *filter's* adversaries.
For thresholds tau it keeps the items on which none of them reaches tau x 10 and prints, on the kept items, each
adversary's mean rule score as a share of the oracle's, for the filter's own adversaries and for the same four
fitted on another seed's train split (adversaries the filter did not use), with the items left per wafer.

An item-level filter passes only if the shares of the adversaries it did not use fall as well, and only if wafers
keep their 8 items. No asserts: it prints figures.
"""
from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from wafersage.harness.scoring.gaming import fitted_answers
from wafersage.harness.scoring.rules import RuleScorer
from wafersage.models.blind import BlindPrior, BlindQuestion
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.blindness.filter import BlindFilterOptions
from wafersage.tasks.synth.build import SynthConfig, build_benchmark

REPO = Path(__file__).resolve().parents[1]
TAUS = (1.01, 0.7, 0.5, 0.3)


class _FlagWithSpares(BlindFilterOptions):
    """'flag' mode (nothing dropped) with the spare questions a dropping split gets, so every candidate is kept."""

    def writes_spares(self, split: str) -> bool:
        return split in ("val", "test")


def adversary_scores(items, train, scorer: RuleScorer) -> dict[str, np.ndarray]:
    """Each blind adversary, fitted on ``train``, scored on ``items``."""
    answers = fitted_answers(items, train, scorer)
    prior, question = BlindPrior(train), BlindQuestion(train)
    answers["blind-prior"] = [prior(it.category, it.question) for it in items]
    answers["blind-question"] = [question(it.category, it.question) for it in items]
    return {name: np.array([scorer.score(it, text).score for it, text in zip(items, texts)])
            for name, texts in answers.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "configs/synth/demo.yaml"))
    parser.add_argument("--other-seed", type=int, default=1000)
    args = parser.parse_args()
    config = SynthConfig.from_yaml(args.config)
    config = config.model_copy(update={"blind_filter": _FlagWithSpares(mode="flag")})
    with tempfile.TemporaryDirectory() as tmp:
        bench = Benchmark.load(build_benchmark(config, Path(tmp) / "bench", progress=False))
        other = Benchmark.load(build_benchmark(config.model_copy(update={"seed": args.other_seed}),
                                               Path(tmp) / "other", progress=False))
        scorer = RuleScorer({**bench.rubrics, **other.rubrics})
        items = bench.items("test")
        own = adversary_scores(items, bench.items("train"), scorer)
        unused = adversary_scores(items, other.items("train"), scorer)
    oracle = np.array([scorer.score(it, it.answer).score for it in items])
    best_blind = np.max(np.stack(list(own.values())), axis=0)
    table = Table(title=f"{config.name}: {len(items)} test items with spares, {len({i.wafer_id for i in items})} wafers; "
                        "share of the oracle on the kept items: filter's adversaries / adversaries it did not use")
    for column in ("tau", "kept", "items per wafer (min / mean)", *own):
        table.add_column(column)
    for tau in TAUS:
        keep = best_blind < tau * 10
        per_wafer = Counter(it.wafer_id for it, k in zip(items, keep) if k)
        counts = [per_wafer.get(w, 0) for w in dict.fromkeys(it.wafer_id for it in items)]
        table.add_row(f"{tau:g}", str(int(keep.sum())), f"{min(counts)} / {np.mean(counts):.1f}",
                      *(f"{own[n][keep].mean() / oracle[keep].mean():.0%} / "
                        f"{unused[n][keep].mean() / oracle[keep].mean():.0%}" for n in own))
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
