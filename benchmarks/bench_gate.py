"""How often does the regression gate fail a candidate that is exactly as good as the base (the false-fail rate)?

    .venv/bin/python benchmarks/bench_gate.py [--wafers 320] [--pairs 1000] [--subset 40]

Builds a benchmark of generated wafers in a temporary folder (demo config, every wafer in the test split, cleaning
off so none is dropped), then simulates one model evaluated twice with sampling on. Every test item gets a pool of
real answers scored by the real rule scorer: the reference answer with 0-4 of its facts corrupted
(``gaming.corrupt``) and the ``random`` baseline's answer. The model has a fixed competence per wafer (drawn once); in
each run it reads each wafer well or badly (one draw per run and wafer, so the answers on a wafer move together, as
when a sampled model misreads a map), and then draws each item's answer from the pool, from a distribution that
depends on that read. Two runs are two independent draws of this one process, so every metric's true difference is
exactly 0 and each gate failure is a false fail. Each pair goes through the gate's own code
(``reports.compare.metric_delta`` and ``gate``: one-sided paired t on wafer totals, Holm across overall and the three
dimensions) and through the old rule (fail when any metric's 95% wafer-bootstrap percentile CI lies below
-max_drop, no multiplicity adjustment; ``stats.mean_ci`` is that bootstrap, vectorised). It prints both rates with a
95% binomial interval at alpha = 0.05, for max_drop 0 (the default: the hardest case) and 0.2, on all test wafers and
on a random subset of ``--subset`` wafers (the demo's test split is about 40).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import stats as sps

from wafersage.harness.run.folder import load_run
from wafersage.harness.run.runner import run_eval
from wafersage.harness.scoring.gaming import corrupt
from wafersage.harness.scoring.rules import RuleScorer
from wafersage.harness.scoring.stats import mean_ci
from wafersage.reports.compare import gate, metric_delta
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.bench.schema import DIMENSIONS
from wafersage.tasks.synth.build import SynthConfig, build_benchmark

REPO = Path(__file__).resolve().parents[1]
ALPHA = 0.05
MAX_FACTS = 4
#: chance of each pool answer (0..4 facts corrupted, the random baseline's) after a good and after a bad read
GOOD_READ = np.array([0.55, 0.2, 0.1, 0.05, 0.03, 0.07])
BAD_READ = np.array([0.1, 0.15, 0.2, 0.15, 0.1, 0.3])


def build(tmp: Path, wafers: int) -> Benchmark:
    config = SynthConfig.from_yaml(REPO / "configs/synth/demo.yaml")
    config = config.model_copy(update={
        "source": config.source.model_copy(update={"n": wafers}),
        "cleaning": config.cleaning.model_copy(update={"enabled": False}),
        "splits": config.splits.model_copy(update={"train": 0.0, "val": 0.0, "test": 1.0}),
    })
    return Benchmark.load(build_benchmark(config, tmp / "bench", progress=False))


def answer_pool_scores(bench: Benchmark, tmp: Path) -> np.ndarray:
    """Rule score (0-10) of every pool answer of every test item: items x (0..4 facts corrupted, random)."""
    items = bench.items("test")
    run_eval(bench.root, "random", out_dir=tmp / "random", progress=False)
    random_answers = {s.item_id: s.response.text for s in load_run(tmp / "random").samples}
    scorer = RuleScorer(bench.rubrics)
    return np.array([[scorer.score(it, corrupt(it, scorer.rubric_for(it), it.answer, k)).score
                      for k in range(MAX_FACTS + 1)] + [scorer.score(it, random_answers[it.id]).score]
                     for it in items])


def sample_run(pool: np.ndarray, wafer: np.ndarray, competence: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One run's item scores: a good or bad read per wafer, then each item's answer drawn from the pool."""
    good = rng.random(competence.size) < competence
    chances = np.where(good[wafer][:, None], GOOD_READ, BAD_READ)
    choice = (rng.random(len(wafer))[:, None] > np.cumsum(chances, axis=1)).sum(axis=1)
    return pool[np.arange(len(wafer)), np.minimum(choice, pool.shape[1] - 1)]


def verdicts(base: np.ndarray, cand: np.ndarray, masks: dict[str, np.ndarray], wafer_ids: np.ndarray,
             max_drop: float) -> tuple[bool, bool]:
    """(the gate fails, the old rule fails) for one pair of runs."""
    deltas, old = [], False
    for metric, mask in masks.items():
        keys = [str(i) for i in np.flatnonzero(mask)]
        wafers = dict(zip(keys, wafer_ids[mask]))
        found = metric_delta(metric, dict(zip(keys, base[mask])), dict(zip(keys, cand[mask])), wafers,
                             alpha=ALPHA, max_drop=max_drop)
        deltas.append(found)
        ci = mean_ci(cand[mask] - base[mask], wafer_ids[mask])  # seed 0, as the old gate used
        old |= ci.high is not None and ci.high < -max_drop
    return any(d.regressed for d in gate(deltas, ALPHA)), old


def false_fail_rates(pool: np.ndarray, wafer: np.ndarray, masks: dict[str, np.ndarray], pairs: int,
                     max_drop: float, seed: int) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    n_wafers = int(wafer.max()) + 1
    competence = rng.beta(4, 2, n_wafers)  # the model's fixed skill per wafer
    wafer_ids = np.array([f"w{w}" for w in wafer])
    new = old = 0
    for _ in range(pairs):
        fails = verdicts(sample_run(pool, wafer, competence, rng), sample_run(pool, wafer, competence, rng), masks,
                         wafer_ids, max_drop)
        new, old = new + fails[0], old + fails[1]
    return new, old


def rate(fails: int, pairs: int) -> str:
    low, high = sps.binomtest(fails, pairs).proportion_ci(0.95)
    return f"{fails / pairs:.1%} [{low:.1%}, {high:.1%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wafers", type=int, default=320, help="generated wafers, all in the test split")
    parser.add_argument("--pairs", type=int, default=1000, help="simulated pairs of runs per setting")
    parser.add_argument("--subset", type=int, default=40, help="also measure on this many wafers (0: skip)")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        bench = build(Path(tmp), args.wafers)
        pool = answer_pool_scores(bench, Path(tmp))
        items = bench.items("test")
    wafer_index = {w: i for i, w in enumerate(dict.fromkeys(it.wafer_id for it in items))}
    wafer = np.array([wafer_index[it.wafer_id] for it in items])
    category = np.array([it.category for it in items])
    table = Table(title=f"false-fail rate at alpha {ALPHA}: {args.pairs} pairs of runs of one sampled model "
                        f"({len(items)} test items on {len(wafer_index)} wafers; pool means "
                        f"{', '.join(f'{m:.1f}' for m in pool.mean(axis=0))})")
    for column in ("wafers", "items", "max_drop", "gate: Holm, one-sided t (target <= 5%)", "old rule: any CI"):
        table.add_column(column)
    subsets = [len(wafer_index)] + ([args.subset] if 0 < args.subset < len(wafer_index) else [])
    for n_wafers in subsets:
        keep = np.isin(wafer, np.random.default_rng(0).permutation(len(wafer_index))[:n_wafers])
        _, sub_wafer = np.unique(wafer[keep], return_inverse=True)
        masks = {"overall": np.ones(keep.sum(), bool), **{d: category[keep] == d for d in DIMENSIONS}}
        for max_drop in (0.0, 0.2):
            new, old = false_fail_rates(pool[keep], sub_wafer, masks, args.pairs, max_drop, seed=n_wafers)
            table.add_row(str(n_wafers), str(keep.sum()), f"{max_drop:g}", rate(new, args.pairs),
                          rate(old, args.pairs))
    Console(width=170).print(table)
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
