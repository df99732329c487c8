"""How long does `wafersage demo` take from a cold work folder (target: under 60 s after installation)?

Runs the demo's steps (baselines only, so no API calls) into a temporary folder, then once more on the same folder
(everything reused), and prints wall and CPU seconds per step, the totals and the size of the HTML page.

    .venv/bin/python benchmarks/bench_demo.py [--config configs/synth/demo.yaml]
"""
from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

from rich.console import Console

from wafersage.demo import STEPS, DemoContext


def timed_demo(work: Path, out: Path, config: Path) -> list[tuple[str, float, float]]:
    ctx = DemoContext(work=work, out=out, config_path=config, console=Console(file=io.StringIO()), env_models=False)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for title, step in STEPS:
        wall, cpu = time.perf_counter(), time.process_time()
        step(ctx)
        rows.append((title, time.perf_counter() - wall, time.process_time() - cpu))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/synth/demo.yaml"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work, out = Path(tmp) / "demo_out", Path(tmp) / "leaderboard.html"
        for label in ("cold", "rerun"):
            rows = timed_demo(work, out, args.config)
            print(f"{label}:")
            for title, wall, cpu in rows:
                print(f"  {title:<16} {wall:6.2f} s wall {cpu:6.2f} s CPU (this process)")
            print(f"  {'total':<16} {sum(r[1] for r in rows):6.2f} s wall {sum(r[2] for r in rows):6.2f} s CPU")
        print(f"leaderboard.html: {out.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
