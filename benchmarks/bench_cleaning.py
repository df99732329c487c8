"""Stage-0a cleaning quality on GENERATED maps: flip a share of labels on purpose, measure how many are found.

Prints precision and recall of the flagged maps against the flipped ones (targets: both >= 0.8), split by reason,
the share of correct maps flagged, and the time taken. Single patterns by default; ``--mixtures`` adds MixedWM38's
mixtures (38 classes). Usage: ``python benchmarks/bench_cleaning.py [--n 2000] [--flip 0.1] [--seed 0] [--mixtures]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter

import numpy as np

from wafersage.tasks.synth.clean import CleaningOptions, clean
from wafersage.tasks.generate.generator import generate_maps
from wafersage.tasks.geometry.measure import measure
from wafersage.tasks.maps.wafer import PATTERNS


def flip_labels(maps, share: float, seed: int):
    """Give ``share`` of the maps another class's labels; returns the noisy maps and the flipped ids."""
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(len(maps), size=int(round(share * len(maps))), replace=False).tolist())
    classes = sorted({w.labels for w in maps})
    noisy = []
    for i, wafer in enumerate(maps):
        if i in chosen:
            others = [c for c in classes if c != wafer.labels]
            wafer = dataclasses.replace(wafer, labels=others[int(rng.integers(len(others)))])
        noisy.append(wafer)
    return noisy, {maps[i].id for i in chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="maps to generate (single patterns, WM-811K sizes)")
    parser.add_argument("--flip", type=float, default=0.1, help="share of labels flipped on purpose")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=None, help="square grid size; default: WM-811K-like sizes")
    parser.add_argument("--mixtures", action="store_true", help="also MixedWM38's 29 mixtures (38 classes)")
    args = parser.parse_args()

    size = (args.size, args.size) if args.size else None
    maps = list(generate_maps(args.n, args.seed, patterns=list(PATTERNS), size=size, mixtures=args.mixtures))
    geoms = [measure(w) for w in maps]
    noisy, flipped = flip_labels(maps, args.flip, args.seed + 1)
    start = time.perf_counter()
    report = clean(noisy, CleaningOptions(seed=args.seed), geometries=geoms)
    elapsed = time.perf_counter() - start
    flagged = {f.id: f.reason for f in report.flagged}
    hits = set(flagged) & flipped
    precision = len(hits) / max(len(flagged), 1)
    recall = len(hits) / max(len(flipped), 1)
    print(f"maps {len(maps)} over {len({w.labels for w in maps})} classes; flipped {len(flipped)} "
          f"({args.flip:.0%}); flagged {len(flagged)}; cleaning took {elapsed:.2f} s")
    for reason in ("neighbours", "outlier"):
        ids = {i for i, r in flagged.items() if r == reason}
        print(f"  {reason:10s} flagged {len(ids):4d}, of them flipped {len(ids & flipped):4d}")
    missed = [w.label_text for w in maps if w.id in flipped - set(flagged)]
    wrongly = len(set(flagged) - flipped) / max(len(maps) - len(flipped), 1)
    print(f"  missed flips by true class: {dict(sorted(Counter(missed).items()))}")
    print(f"  correct maps flagged: {wrongly:.1%}")
    print(f"precision {precision:.3f}  recall {recall:.3f}  (target >= 0.8 each)")


if __name__ == "__main__":
    main()
