"""Per-wafer cost of synthesis Stages 0b–2 (geometry describer, rubric, VQA items) on one core.

    .venv/bin/python benchmarks/bench_stages.py [--n 2000] [--seed 1]

Maps are generated and measured first (not timed here; see bench_synth.py for the whole path). The stages run in
the builder's order (describe, then rubric, then items), so the rubric the describer built is reused.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from wafersage.tasks.synth.describe import GeometryDescriber
from wafersage.tasks.generate.generator import generate_maps
from wafersage.tasks.geometry.measure import measure
from wafersage.tasks.synth.rubric import build_rubric
from wafersage.tasks.synth.vqa import make_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    maps = list(generate_maps(args.n, args.seed))
    geoms = [measure(wafer) for wafer in maps]
    describer, rng = GeometryDescriber(), np.random.default_rng(args.seed)
    spent = {"describe": 0.0, "rubric": 0.0, "vqa": 0.0}
    n_items = 0
    for wafer, geom in zip(maps, geoms):
        t0 = time.perf_counter()
        describer.describe(wafer, geom, "full")
        t1 = time.perf_counter()
        rubric = build_rubric(wafer, geom)
        t2 = time.perf_counter()
        n_items += len(make_items(wafer, geom, rubric, rng=rng, image=f"images/{wafer.id}.png", split="test"))
        t3 = time.perf_counter()
        spent["describe"] += t1 - t0
        spent["rubric"] += t2 - t1
        spent["vqa"] += t3 - t2
    total = sum(spent.values())
    for stage, seconds in spent.items():
        print(f"{stage:9s} {1e3 * seconds / args.n:7.3f} ms/wafer")
    print(f"{'stages':9s} {1e3 * total / args.n:7.3f} ms/wafer = {args.n / total:,.0f} wafers/s, "
          f"{n_items / total:,.0f} items/s ({n_items / args.n:.2f} items/wafer)")


if __name__ == "__main__":
    main()
