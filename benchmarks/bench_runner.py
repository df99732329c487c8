"""Throughput of the whole eval runner (queue, cache, fsynced samples), not just the backend.

1. the oracle over the demo benchmark: the runner's own overhead per item;
2. the openai backend against the test server (a separate process) with 100 ms latency at K workers: items/s and
   the ratio to the ideal K / latency;
3. the same command again: a finished run, no model calls, answered from the run folder.

Every line ends with the 1-minute load average: other jobs on the machine lower every ratio.

Usage: ``.venv/bin/python benchmarks/bench_runner.py [--workers 64] [--repeats 16] [--latency-ms 100]``
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench_eval import ServerProcess  # the test server in its own process (benchmarks/bench_eval.py)

from wafersage.harness.run.runner import run_eval
from wafersage.models.config import ModelConfig
from wafersage.tasks.synth.build import SynthConfig, build_benchmark

DEMO = Path(__file__).resolve().parents[1] / "configs" / "synth" / "demo.yaml"


def timed(**kwargs) -> tuple[object, float, float]:
    """The run's record, its wall time and the CPU seconds this process spent on it."""
    start, cpu = time.perf_counter(), time.process_time()
    info = run_eval(progress=False, **kwargs)
    return info, time.perf_counter() - start, time.process_time() - cpu


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=16,
                        help="answers per item (16 x the demo's test items is over 5,000 samples)")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench = build_benchmark(SynthConfig.from_yaml(DEMO), root / "bench", progress=False)
        info, seconds, cpu = timed(bench_dir=bench, model_spec="oracle", out_dir=root / "runs" / "oracle",
                                   concurrency=args.workers, repeats=args.repeats)
        n = info.n_ok
        print(f"oracle: {n} samples in {seconds:.2f} s = {n / seconds:,.0f} items/s, {1000 * cpu / n:.2f} ms CPU "
              f"per item (runner overhead; every line fsynced, group commit); {load()}", flush=True)

        server = ServerProcess("--latency-ms", f"{args.latency_ms:g}")
        try:
            config = ModelConfig(name="bench", backend="openai", base_url=server.url, model="wafersage-test",
                                 max_concurrency=args.workers, timeout=30)
            run = dict(bench_dir=bench, model_spec=config, out_dir=root / "runs" / "api",
                       concurrency=args.workers, repeats=args.repeats)
            info, seconds, cpu = timed(**run)
            ideal = args.workers / (args.latency_ms / 1000)
            rate = info.n_ok / seconds
            print(f"openai backend, K={args.workers}, latency {args.latency_ms:g} ms: {info.n_ok} ok / "
                  f"{info.n_failed} failed in {seconds:.2f} s = {rate:,.0f} items/s, {rate / ideal:.1%} of ideal "
                  f"{ideal:,.0f}/s, {1000 * cpu / info.n_ok:.2f} ms CPU per item; {load()}", flush=True)
            info, seconds, _ = timed(**run)
            print(f"rerun of the finished run: {seconds:.2f} s, {info.n_ok} ok, no model calls; {load()}")
        finally:
            server.close()


if __name__ == "__main__":
    main()
