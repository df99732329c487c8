"""End-to-end synthesis speed on the default (geometry) path: wafers/s and items/s (target >= 500 wafers/s, one core).

Builds a benchmark from generated maps ``--repeat`` times in this one process (BLAS/OpenMP pinned to one thread)
and prints each build's wafers/s, items/s and CPU per map (user and system over all threads, system being mostly
the creation of one PNG file per wafer; the main thread's CPU, the steadiest figure to compare code changes by),
then the best and the median. The builder writes its PNG files on one background thread; ``--one-core`` pins the
whole process to a single CPU so that thread cannot use a second core (the "one core" figure). Also prints what creating one file costs on the output folder's file system right now: on a shared
disk it varies about tenfold over minutes (0.05-0.7 ms seen), so compare builds from one run only.
``--profile`` adds one build under cProfile, split by stage. Usage:
``python benchmarks/bench_synth.py [--n 2000] [--size 52] [--image-size 256] [--repeat 3] [--one-core] [--dir D]``.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from wafersage.tasks.synth.build import SynthConfig, build_benchmark  # noqa: E402

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


def timed_build(cfg: SynthConfig, out: Path) -> tuple[float, float, float, float, dict]:
    """One build: (wall s, user CPU s, system CPU s, main-thread CPU s, manifest counts). User and system CPU cover
    every thread of this process; the main thread's CPU leaves out the background file writes."""
    start, start_times, start_main = time.perf_counter(), os.times(), time.thread_time()
    root = build_benchmark(cfg, out, progress=False)
    elapsed, end_times, main = time.perf_counter() - start, os.times(), time.thread_time() - start_main
    counts = json.loads((root / "manifest.json").read_text())["counts"]
    return elapsed, end_times.user - start_times.user, end_times.system - start_times.system, main, counts


def print_profile(cfg: SynthConfig, out: Path, maps: int) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(build_benchmark, cfg, out, progress=False)
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    print(f"time by stage under cProfile (main thread, total {total:.2f} s; nested stages overlap, e.g. describe "
          "calls rubric; PNG files are written on a background thread, not shown):")
    for stage, (suffix, name) in STAGES.items():
        cum = sum(v[3] for k, v in stats.stats.items() if k[0].endswith(suffix) and k[2] == name)
        print(f"  {stage:22s} {cum:7.2f} s  {cum / total:6.1%}  {cum / max(maps, 1) * 1e3:6.3f} ms/map")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="maps to generate")
    parser.add_argument("--size", type=int, default=52, help="square grid size; 0 draws WM-811K-like sizes")
    parser.add_argument("--image-size", type=int, default=256, help="long side of the rendered PNGs")
    parser.add_argument("--repeat", type=int, default=3, help="timed builds; the best and the median are printed")
    parser.add_argument("--one-core", action="store_true",
                        help="pin this process (all its threads) to one CPU, so nothing runs beside the main thread")
    parser.add_argument("--profile", action="store_true", help="also build once under cProfile, time by stage")
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: the system temp folder)")
    args = parser.parse_args()
    if args.one_core:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cfg = config(args.n, args.size or None, args.image_size)
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        create_ms = file_creation_ms(Path(tmp))
        runs = [timed_build(cfg, Path(tmp) / f"timed-{i}") for i in range(args.repeat)]
        create_ms = (create_ms + file_creation_ms(Path(tmp))) / 2
        counts = runs[0][-1]
        maps = counts["maps_read"]
        grid = f"{args.size}x{args.size}" if args.size else "WM-811K-like sizes"
        print(f"built {counts['wafers']} wafers / {counts['items']} items from {maps} maps ({grid}, "
              f"{args.image_size}px PNGs), {args.repeat} times, one process on {cores} core(s)")
        for wall, user, system, main, _ in runs:
            print(f"  {wall:6.2f} s wall  {maps / wall:6.0f} wafers/s  {counts['items'] / wall:7.0f} items/s   "
                  f"CPU per map {user / maps * 1e3:.3f} ms user + {system / maps * 1e3:.3f} ms system, "
                  f"main thread {main / maps * 1e3:.3f} ms")
        walls = sorted(run[0] for run in runs)
        print(f"  best {maps / walls[0]:.0f} wafers/s, median {maps / statistics.median(walls):.0f} wafers/s "
              f"end to end, wall clock (target >= 500 on one core)")
        print(f"  file system: creating one file costs {create_ms:.3f} ms of kernel time here now (one per wafer; "
              "it varies ~10x on a shared disk)")
        if args.profile:
            print_profile(cfg, Path(tmp) / "profiled", maps)


if __name__ == "__main__":
    main()
