"""How good is the specialist's classifier? Exact-set accuracy and per-label F1 on a generated test split.

Builds a generated benchmark (train/test by wafer), trains the classifier on its train split only, and prints for
the test split: exact label-set accuracy on single-pattern, mixed and all wafers, per-label precision/recall/F1
and macro-F1 — for the specialist and for the geometry rules (:func:`wafersage.tasks.geometry.infer.infer_types`) as the
reference. Also times training and prediction. Real maps: run ``wafersage validate-real ... --specialist BENCH``
(the held-out real maps are read only by that command).

    .venv/bin/python benchmarks/bench_specialist.py [--n 1520] [--seed 11] [--keep DIR]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import classification_report, f1_score

from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.geometry.measure import measure
from wafersage.tasks.geometry.infer import infer_types
from wafersage.tasks.classify.classifier import classifier_for_benchmark
from wafersage.tasks.synth.build import SynthConfig, build_benchmark
from wafersage.tasks.maps.wafer import LABELS


def _config(n: int, seed: int) -> SynthConfig:
    return SynthConfig.model_validate({
        "name": "bench-specialist", "seed": seed,
        "source": {"kind": "generated", "n": n, "size": None, "mixtures": True, "balanced": True},
        "cleaning": {"enabled": False}, "splits": {"train": 0.6, "val": 0.0, "test": 0.4}, "image_size": 32,
    })


def _multi_hot(sets: list[list[str]]) -> np.ndarray:
    return np.array([[label in s for label in LABELS] for s in sets], dtype=int)


def _report(name: str, truth: list[list[str]], predicted: list[list[str]]) -> None:
    exact = np.array([set(t) == set(p) for t, p in zip(truth, predicted)])
    single = np.array([len(t) == 1 for t in truth])
    y, p = _multi_hot(truth), _multi_hot(predicted)
    print(f"\n== {name}: exact set accuracy  single {exact[single].mean():.3f} (n={single.sum()})  "
          f"mixed {exact[~single].mean():.3f} (n={(~single).sum()})  all {exact.mean():.3f} (n={len(exact)})")
    print(f"   macro-F1 over labels {f1_score(y, p, average='macro', zero_division=0):.3f}  "
          f"micro-F1 {f1_score(y, p, average='micro', zero_division=0):.3f}")
    print(classification_report(y, p, target_names=list(LABELS), zero_division=0, digits=3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1520, help="maps to generate (40 per class with mixtures)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", type=Path, default=None, help="build the benchmark here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "bench"
        start = time.perf_counter()
        build_benchmark(_config(args.n, args.seed), root, progress=False, overwrite=True)
        print(f"built {root} in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        classifier = classifier_for_benchmark(root, min_train=0)
        print(f"trained on {classifier.trained_on} in {time.perf_counter() - start:.1f} s")
        test = list(Benchmark.load(root).wafers("test"))
        geoms = [measure(w.grid) for w in test]
        start = time.perf_counter()
        predicted = [classifier.decide(p) for p in classifier.probabilities([w.grid for w in test], geoms)]
        per_map = (time.perf_counter() - start) / len(test)
        print(f"predicted {len(test)} test maps at {per_map * 1e3:.2f} ms/map")
        truth = [list(w.labels) for w in test]
        _report("specialist", truth, predicted)
        _report("geometry rules", truth, [infer_types(g) for g in geoms])


if __name__ == "__main__":
    main()
