"""``synth --workers N`` against one worker: wall time, CPU and manifest hash of alternating builds of one config.

Builds ``--config`` (default ``configs/synth/full.yaml``, 8,000 maps) with 1 and ``--workers`` processes in turn,
``--repeat`` times each into fresh folders, and prints every build (wall, CPU of the process and its workers, the
load average before it, the benchmark hash) and then the best wall time of each, their ratio and the ratio of each
pair. Other work on the machine takes cores from the workers, so compare builds from one run only. Usage:
``python benchmarks/bench_synth_workers.py [--workers 2] [--repeat 3] [--dir D]``.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.synth.build import SynthConfig, build_benchmark

REPO = Path(__file__).resolve().parents[1]


def process_cpu() -> float:
    """CPU seconds of this process and its finished children (worker processes included)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "synth" / "full.yaml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: a temporary folder)")
    args = parser.parse_args()
    config = SynthConfig.from_yaml(args.config)
    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="synth-workers-"))
    walls: dict[int, list[float]] = {1: [], args.workers: []}
    hashes = set()
    try:
        for _ in range(args.repeat):
            for workers in walls:
                out = work / f"w{workers}"
                shutil.rmtree(out, ignore_errors=True)
                load = os.getloadavg()[0]
                start, cpu = time.perf_counter(), process_cpu()
                root = build_benchmark(config, out, progress=False, workers=workers)
                wall, cpu = time.perf_counter() - start, process_cpu() - cpu
                walls[workers].append(wall)
                hashes.add(Benchmark.load(root, verify=False).hash)
                print(f"workers {workers}: wall {wall:.2f} s, cpu {cpu:.2f} s, load before {load:.2f}, "
                      f"hash {Benchmark.load(root, verify=False).hash[:16]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one, many = min(walls[1]), min(walls[args.workers])
    print(f"best: 1 worker {one:.2f} s, {args.workers} workers {many:.2f} s, {one / many:.2f}x; pairs: "
          + ", ".join(f"{a / b:.2f}x" for a, b in zip(walls[1], walls[args.workers]))
          + f"; {'one manifest hash' if len(hashes) == 1 else 'HASHES DIFFER'}")


if __name__ == "__main__":
    main()
