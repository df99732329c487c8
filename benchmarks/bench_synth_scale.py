"""A large build, measured: wall time, CPU, peak memory (the building process and its largest worker) and files.

Builds ``--config`` (default ``configs/synth/wm811k.yaml``: 811,457 WM-811K-sized generated maps) or a
``--fraction`` of its maps with ``--workers`` processes, and prints the figures as one JSON object. Every per-map
step scales linearly with the number of maps (cleaning's neighbour check does not; the WM-811K-sized config has it
off), so a fraction's wall time, CPU and files times 1/fraction estimate the whole build; with workers the building
process holds about half a kilobyte per map. Usage:
``python benchmarks/bench_synth_scale.py [--fraction 0.1] [--workers 2] [--dir D] [--keep]``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from bench_synth_workers import process_cpu  # the scripts run from benchmarks/
from wafersage.tasks.synth.build import SynthConfig, build_benchmark

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "synth" / "wm811k.yaml")
    parser.add_argument("--fraction", type=float, default=1.0, help="build this share of the config's maps")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark folder")
    args = parser.parse_args()
    config = SynthConfig.from_yaml(args.config)
    n = round(config.source.n * args.fraction)
    config = config.model_copy(update={"source": config.source.model_copy(update={"n": n})})
    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="synth-scale-"))
    try:
        start, cpu = time.perf_counter(), process_cpu()
        root = build_benchmark(config, work / "bench", progress=False, workers=args.workers)
        wall, cpu = time.perf_counter() - start, process_cpu() - cpu
        files = [p for p in root.rglob("*") if p.is_file()]
        counts = json.loads((root / "manifest.json").read_text())["counts"]
        figures = {
            "maps": n, "workers": args.workers, "cpus": os.cpu_count(), "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "maps_per_s": round(n / wall),
            "peak_rss_mb_building_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "peak_rss_mb_largest_worker": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
            "files": len(files), "bytes": sum(p.stat().st_size for p in files), "wafers": counts["wafers"],
            "items": counts["items"], "load_average_after": round(os.getloadavg()[0], 2),
        }
        if args.fraction != 1.0:
            figures["whole_build_estimate"] = {key: round(figures[key] / args.fraction, 1)
                                               for key in ("maps", "wall_s", "cpu_s", "files", "bytes")}
        print(json.dumps(figures, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
