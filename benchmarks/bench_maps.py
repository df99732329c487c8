"""Speed and memory of the map pipeline on one core: generate, measure, render, and all three together.

Prints maps per second (CPU time of this process, so other load on the machine counts less) for 52×52 maps, then
measure() over a synthetic stream with WM-811K's grid-size distribution (median about 35×35, 6 to 300 rows,
maps of one product sharing an outline), the time that extrapolates to for all 811,457 WM-811K maps, and the peak
resident memory. Targets: generate+measure+render >= 1,000 maps/s; measure over the WM-811K stream >= 1,400
maps/s (811,457 maps in under 10 minutes).

    python benchmarks/bench_maps.py [--n 2000] [--seed 0]
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from wafersage.tasks.generate.generator import generate_map, generate_maps
from wafersage.tasks.geometry.measure import measure, measure_many
from wafersage.tasks.maps.render import render_png

WM811K_MAPS = 811_457
#: WM-811K grid rows: log-normal around the median, clipped to the dataset's range; columns by a die aspect
WM811K_ROWS = (35.0, 0.35, 6, 300)
WM811K_ASPECT = (0.75, 1.33)
#: distinct products (grid size + outline) in the synthetic stream, drawn with Zipf-like frequencies
PRODUCTS = 600


def rate(label: str, n: int, seconds: float) -> float:
    per_second = n / seconds if seconds > 0 else float("inf")
    print(f"{label:<44} {per_second:>10,.0f} maps/s  ({seconds * 1e3 / n:.3f} ms/map)")
    return per_second


def timed(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def wm811k_stream(n: int, seed: int) -> list:
    """``n`` generated maps whose grid sizes and shared outlines follow WM-811K's distribution."""
    rng = np.random.default_rng([seed, 811])
    median, sigma, low, high = WM811K_ROWS
    rows = np.clip(np.rint(median * np.exp(rng.normal(0, sigma, PRODUCTS))), low, high).astype(int)
    cols = np.clip(np.rint(rows * rng.uniform(*WM811K_ASPECT, PRODUCTS)), 3, 205).astype(int)
    weights = 1.0 / np.arange(1, PRODUCTS + 1)
    products = rng.choice(PRODUCTS, size=n, p=weights / weights.sum())
    maps = []
    for i, product in enumerate(products):
        shape = (max(int(rows[product]), 8), max(int(cols[product]), 8))  # the generator needs 8×8
        product_rng = np.random.default_rng([seed, int(product)])  # same product, same outline
        labels = ("none",) if rng.random() < 0.85 else (str(rng.choice(["Center", "Edge-Ring", "Loc", "Scratch"])),)
        wafer = generate_map(labels, rng=product_rng, shape=shape, wafer_id=f"stream-{i}")
        maps.append(wafer)
    return maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="maps per measurement")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = args.n
    print(f"WaferSAGE map pipeline, one process, {n} maps per figure (CPU time)")

    maps: list = []
    generate_s = timed(lambda: maps.extend(generate_maps(n, args.seed, size=(52, 52))))
    rate("generate 52x52", n, generate_s)
    measure_s = timed(lambda: [measure(m) for m in maps])
    rate("measure 52x52", n, measure_s)
    render_native_s = timed(lambda: [render_png(m.grid) for m in maps])
    rate("render PNG 52x52 (1 px per die)", n, render_native_s)
    rate("render PNG 256 px", n, timed(lambda: [render_png(m.grid, size=256) for m in maps]))

    def pipeline() -> None:
        for wafer in generate_maps(n, args.seed + 1, size=(52, 52)):
            measure(wafer)
            render_png(wafer.grid)

    rate("generate+measure+render 52x52 (1 px/die)", n, timed(pipeline))

    def batched_pipeline() -> None:  # what `wafersage synth` does: measure_many over maps of one grid shape
        batch = list(generate_maps(n, args.seed + 2, size=(52, 52)))
        measure_many(batch)
        for wafer in batch:
            render_png(wafer.grid)

    rate("generate+measure_many+render 52x52 (batched)", n, timed(batched_pipeline))

    stream = wm811k_stream(n, args.seed)
    shapes = np.array([m.shape for m in stream])
    print(f"WM-811K-like stream: median {np.median(shapes[:, 0]):.0f}x{np.median(shapes[:, 1]):.0f}, rows "
          f"{shapes[:, 0].min()}..{shapes[:, 0].max()}, {len({m.shape for m in stream})} distinct sizes")
    per_second = rate("measure, WM-811K size distribution", n, timed(lambda: [measure(m) for m in stream]))
    print(f"extrapolated measure time for {WM811K_MAPS:,} maps: {WM811K_MAPS / per_second / 60:.1f} min")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
