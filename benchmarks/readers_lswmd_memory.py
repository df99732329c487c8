"""Peak memory and speed of importing a WM-811K-format ``LSWMD.pkl`` (Python 2 / pandas 0.x pickle).

Writes a synthetic pickle in the original format (tests/readers_legacy_pickle.py) with WM-811K-like grid sizes,
then, in a fresh process, imports it into a map store with ``read_lswmd`` + ``write_store``. Prints the file size,
the peak RSS above the process's resident size before the import, its ratio to the file size and the time per map,
extrapolated to the 811,457-map, 2 GB file. (``pandas.read_pickle`` cannot read this format on pandas 3 at all:
``ModuleNotFoundError: pandas.indexes``.)

    .venv/bin/python benchmarks/readers_lswmd_memory.py [--maps 20000]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FULL_MAPS = 811_457
#: the most common WM-811K grid sizes (domain notes) plus a few large ones
SHAPES = [(32, 29), (25, 27), (49, 39), (26, 26), (35, 35), (52, 52), (64, 71), (100, 120)]
WEIGHTS = [0.25, 0.2, 0.15, 0.15, 0.12, 0.08, 0.04, 0.01]


def _write(path: Path, count: int) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from readers_legacy_pickle import lswmd_frame, write_legacy_lswmd

    rng = np.random.default_rng(0)
    labels = [np.zeros((0, 0)), np.array([["none"]]), np.array([["Loc"]]), np.array([["Center"]])]
    rows = []
    for i in range(count):
        rows_, cols = SHAPES[rng.choice(len(SHAPES), p=WEIGHTS)]
        yy, xx = np.mgrid[:rows_, :cols]
        grid = (((yy - rows_ / 2) / (rows_ / 2)) ** 2 + ((xx - cols / 2) / (cols / 2)) ** 2 <= 1).astype(np.uint8)
        grid[(grid == 1) & (rng.random(grid.shape) < 0.1)] = 2
        label = labels[i % 4]
        split = np.zeros((0, 0)) if label.size == 0 else np.array([["Training" if i % 3 else "Test"]])
        rows.append(dict(waferMap=grid, dieSize=float(rows_ * cols), lotName=f"lot{i // 25 + 1}",
                         waferIndex=float(i % 25 + 1), trianTestLabel=split, failureType=label))
    write_legacy_lswmd(lswmd_frame(rows), path)


def _status_mb(field: str) -> float:
    """VmRSS (resident now) or VmHWM (peak) of this process in MiB. Not ru_maxrss: Linux carries that over exec
    from the parent at fork time, which would count the parent's synthetic rows."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _measure(path: Path) -> dict:
    """Run in a child process: import into a store; peak RSS above the resident size just before."""
    from wafersage.tasks.maps.readers.lswmd import read_lswmd
    from wafersage.tasks.maps.store import write_store

    base = _status_mb("VmRSS")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        count = write_store(read_lswmd(path), out)
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    return {"maps": count, "seconds": seconds, "peak_mb": peak - base}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", type=int, default=20_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(Path(args.child))))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "LSWMD.pkl"
        _write(path, args.maps)
        size_mb = path.stat().st_size / 2**20
        print(f"synthetic LSWMD.pkl (Python 2 / pandas 0.x format): {args.maps} maps, {size_mb:.1f} MiB")
        child = subprocess.run([sys.executable, __file__, "--child", str(path)],
                               capture_output=True, text=True, cwd=REPO, check=True)
        result = json.loads(child.stdout)
        ratio, per_map = result["peak_mb"] / size_mb, result["seconds"] / result["maps"]
        print(f"read_lswmd -> write_store: peak RSS +{result['peak_mb']:.0f} MiB = {ratio:.2f}x the file; "
              f"{per_map * 1e6:.0f} us/map")
        print(f"extrapolated to {FULL_MAPS} maps / 2 GB: ~{ratio * 2:.1f} GB peak, ~{per_map * FULL_MAPS / 60:.0f} min")


if __name__ == "__main__":
    main()
