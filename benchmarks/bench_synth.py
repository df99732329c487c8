"""End-to-end synthesis speed on the default (geometry) path, one core: wafers/s and items/s (target >= 500 wafers/s).

Builds a benchmark from generated maps twice: once timed, once under cProfile to split the time by stage (and so
name the bottleneck). Usage: ``python benchmarks/bench_synth.py [--n 2000] [--size 52] [--image-size 256]``.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from wafersage.tasks.synth import SynthConfig, build_benchmark  # noqa: E402

#: stage -> (file suffix, function name) whose cumulative time counts for it
STAGES = {
    "generate maps": ("tasks/generate.py", "generate_map"),
    "measure geometry": ("tasks/geometry.py", "measure"),
    "clean (stage 0a)": ("tasks/clean.py", "clean"),
    "split": ("tasks/splits.py", "assign_splits"),
    "describe (stage 0b)": ("tasks/describe.py", "describe"),
    "rubric (stage 1)": ("tasks/rubric.py", "build_rubric"),
    "vqa items (stage 2)": ("tasks/vqa.py", "make_items"),
    "render png": ("tasks/render.py", "render_png"),
    "write map store": ("tasks/store.py", "write_store"),
    "write jsonl": ("tasks/synth.py", "_write_jsonl"),
    "manifest hashes": ("tasks/benchmark.py", "write_manifest"),
}


def config(n: int, size: int | None, image_size: int) -> SynthConfig:
    return SynthConfig.model_validate({
        "name": "bench", "seed": 1,
        "source": {"kind": "generated", "n": n, "size": [size, size] if size else None, "mixtures": True},
        "image_size": image_size,
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="maps to generate")
    parser.add_argument("--size", type=int, default=52, help="square grid size; 0 draws WM-811K-like sizes")
    parser.add_argument("--image-size", type=int, default=256, help="long side of the rendered PNGs")
    args = parser.parse_args()
    cfg = config(args.n, args.size or None, args.image_size)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        root = build_benchmark(cfg, Path(tmp) / "timed", progress=False)
        elapsed = time.perf_counter() - start
        import json

        counts = json.loads((root / "manifest.json").read_text())["counts"]
        profiler = cProfile.Profile()
        profiler.runcall(build_benchmark, cfg, Path(tmp) / "profiled", progress=False)
    grid = f"{args.size}x{args.size}" if args.size else "WM-811K-like sizes"
    print(f"built {counts['wafers']} wafers / {counts['items']} items from {counts['maps_read']} maps ({grid}, "
          f"{args.image_size}px PNGs) in {elapsed:.2f} s on one core")
    print(f"  {counts['maps_read'] / elapsed:8.0f} wafers/s end to end (target >= 500)")
    print(f"  {counts['items'] / elapsed:8.0f} items/s")
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    print(f"time by stage under cProfile (total {total:.2f} s; nested stages overlap, e.g. describe calls rubric):")
    for stage, (suffix, name) in STAGES.items():
        cum = sum(v[3] for k, v in stats.stats.items() if k[0].endswith(suffix) and k[2] == name)
        print(f"  {stage:22s} {cum:7.2f} s  {cum / total:6.1%}  {cum / max(counts['maps_read'], 1) * 1e3:6.3f} ms/map")


if __name__ == "__main__":
    main()
