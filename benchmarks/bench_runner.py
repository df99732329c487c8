"""Throughput of the whole eval runner (queue, cache, fsynced samples), not just the backend.

1. the oracle over the demo benchmark: the runner's own overhead per item;
2. the openai backend against the test server (a separate process) with 100 ms latency at K workers: items/s and
   the ratio to the ideal K / latency;
3. the same command again: a finished run, no model calls, answered from the run folder.

Usage: ``.venv/bin/python benchmarks/bench_runner.py [--workers 64] [--repeats 4] [--latency-ms 100]``
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_eval import ServerProcess  # the test server in its own process (benchmarks/bench_eval.py)

from wafersage.harness.runner import run_eval
from wafersage.models.config import ModelConfig
from wafersage.tasks.synth import SynthConfig, build_benchmark

DEMO = Path(__file__).resolve().parents[1] / "configs" / "synth" / "demo.yaml"


def timed(**kwargs) -> tuple[object, float]:
    start = time.perf_counter()
    info = run_eval(progress=False, **kwargs)
    return info, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=4, help="answers per item (the demo has 509 items)")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench = build_benchmark(SynthConfig.from_yaml(DEMO), root / "bench", progress=False)
        info, seconds = timed(bench_dir=bench, model_spec="oracle", out_dir=root / "runs" / "oracle",
                              concurrency=args.workers, repeats=args.repeats)
        n = info.n_ok
        print(f"oracle: {n} samples in {seconds:.2f} s = {n / seconds:,.0f} items/s (runner overhead; every line fsynced, group commit)")

        server = ServerProcess("--latency-ms", f"{args.latency_ms:g}")
        try:
            config = ModelConfig(name="bench", backend="openai", base_url=server.url, model="wafersage-test",
                                 max_concurrency=args.workers, timeout=30)
            run = dict(bench_dir=bench, model_spec=config, out_dir=root / "runs" / "api",
                       concurrency=args.workers, repeats=args.repeats)
            info, seconds = timed(**run)
            ideal = args.workers / (args.latency_ms / 1000)
            rate = info.n_ok / seconds
            print(f"openai backend, K={args.workers}, latency {args.latency_ms:g} ms: {info.n_ok} ok / "
                  f"{info.n_failed} failed in {seconds:.2f} s = {rate:,.0f} items/s, {rate / ideal:.0%} of ideal "
                  f"{ideal:,.0f}/s")
            info, seconds = timed(**run)
            print(f"rerun of the finished run: {seconds:.2f} s, {info.n_ok} ok, no model calls")
        finally:
            server.close()


if __name__ == "__main__":
    main()
