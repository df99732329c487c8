"""End-to-end synthesis speed on the default (geometry) path, one core: wafers/s and items/s (target >= 500 wafers/s).

Builds a benchmark from generated maps twice in this one process (BLAS/OpenMP pinned to one thread): once timed,
once under cProfile to split the time by stage (and so name the bottleneck). Prints wafers/s by wall-clock time and
by this process's CPU time (on a shared machine the CPU figure is the steadier one), items/s, and what creating one
file costs on the output folder's file system (every wafer writes one PNG; on a busy disk that alone can cost
~1 ms). Usage: ``python benchmarks/bench_synth.py [--n 2000] [--size 52] [--image-size 256] [--dir /some/tmp]``.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from wafersage.tasks.synth import SynthConfig, build_benchmark  # noqa: E402

#: stage -> (file suffix, function name) whose cumulative time counts for it
STAGES = {
    "generate maps": ("tasks/generate.py", "generate_map"),
    "measure geometry": ("tasks/geometry.py", "measure_many"),
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


def file_creation_ms(folder: Path, n: int = 200) -> float:
    """Milliseconds to create and write one small file in ``folder`` (a fresh subfolder, removed afterwards)."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        start = time.perf_counter()
        for i in range(n):
            (Path(tmp) / f"{i}.png").write_bytes(b"\0" * 800)
        return (time.perf_counter() - start) / n * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="maps to generate")
    parser.add_argument("--size", type=int, default=52, help="square grid size; 0 draws WM-811K-like sizes")
    parser.add_argument("--image-size", type=int, default=256, help="long side of the rendered PNGs")
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: the system temp folder)")
    args = parser.parse_args()
    cfg = config(args.n, args.size or None, args.image_size)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        create_ms = file_creation_ms(Path(tmp))
        start, start_times = time.perf_counter(), os.times()
        root = build_benchmark(cfg, Path(tmp) / "timed", progress=False)
        elapsed, end_times = time.perf_counter() - start, os.times()
        user, system = end_times.user - start_times.user, end_times.system - start_times.system
        cpu = user + system
        counts = json.loads((root / "manifest.json").read_text())["counts"]
        profiler = cProfile.Profile()
        profiler.runcall(build_benchmark, cfg, Path(tmp) / "profiled", progress=False)
    grid = f"{args.size}x{args.size}" if args.size else "WM-811K-like sizes"
    maps = counts["maps_read"]
    print(f"built {counts['wafers']} wafers / {counts['items']} items from {maps} maps ({grid}, "
          f"{args.image_size}px PNGs) in {elapsed:.2f} s wall, {cpu:.2f} s CPU, one process")
    print(f"  {maps / elapsed:8.0f} wafers/s end to end, wall clock (target >= 500)")
    print(f"  {maps / cpu:8.0f} wafers/s end to end, CPU time of this process")
    print(f"  {counts['items'] / elapsed:8.0f} items/s (wall)")
    print(f"  CPU per map: {user / maps * 1e3:.3f} ms user (the Python work), {system / maps * 1e3:.3f} ms system "
          "(mostly creating files)")
    print(f"  file system: creating one file costs {create_ms:.3f} ms here "
          f"({create_ms * counts['wafers'] / 1e3 / elapsed:.0%} of the wall time for the PNGs alone)")
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    print(f"time by stage under cProfile (total {total:.2f} s; nested stages overlap, e.g. describe calls rubric):")
    for stage, (suffix, name) in STAGES.items():
        cum = sum(v[3] for k, v in stats.stats.items() if k[0].endswith(suffix) and k[2] == name)
        print(f"  {stage:22s} {cum:7.2f} s  {cum / total:6.1%}  {cum / max(counts['maps_read'], 1) * 1e3:6.3f} ms/map")


if __name__ == "__main__":
    main()
