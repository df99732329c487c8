"""How well ``infer_types`` reads generated maps with their labels hidden: per-class exact and contained agreement.

    .venv/bin/python benchmarks/bench_infer.py [--n 1500] [--seed 100]

Generated maps only (the thresholds in wafersage/tasks/geometry/infer.py are tuned here, never on held-out real maps).
"""
from __future__ import annotations

import argparse
from collections import Counter, defaultdict

from wafersage.tasks.generate.generator import generate_maps
from wafersage.tasks.geometry.measure import measure
from wafersage.tasks.geometry.infer import infer_types


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--singles", action="store_true", help="single patterns and normal wafers only")
    args = parser.parse_args()
    exact, contained, total = Counter(), Counter(), Counter()
    confusion: dict[str, Counter] = defaultdict(Counter)
    for wafer in generate_maps(args.n, args.seed, mixtures=not args.singles):
        truth, guess = set(wafer.labels), set(infer_types(measure(wafer)))
        key = "+".join(wafer.labels)
        total[key] += 1
        exact[key] += truth == guess
        contained[key] += truth <= guess
        confusion[key]["+".join(sorted(guess))] += 1
    print(f"{'class':36s} {'n':>4s} {'exact':>6s} {'contained':>9s}  most common reading")
    for key in sorted(total, key=lambda k: (k.count("+"), k)):
        common = ", ".join(f"{g} {c}" for g, c in confusion[key].most_common(2))
        print(f"{key:36s} {total[key]:4d} {exact[key] / total[key]:6.2f} {contained[key] / total[key]:9.2f}  {common}")
    singles = [k for k in total if "+" not in k]
    for name, keys in (("single patterns + none", singles), ("all", list(total))):
        n = sum(total[k] for k in keys)
        print(f"{name}: exact {sum(exact[k] for k in keys) / n:.3f}, contained {sum(contained[k] for k in keys) / n:.3f}"
              f" over {n} maps")


if __name__ == "__main__":
    main()
