"""One model behind several endpoints: `wafersage eval` throughput, its CPU per request, failover and --workers.

Starts ``--servers`` test servers (``python -m wafersage.models.testing.server``, each its own process, a fixed
``--latency-ms``) and evaluates the demo benchmark (every split, repeated up to ``--requests`` image requests) with
one openai config listing all of them, ``--per-endpoint`` requests in flight each. The ideal is servers x
per-endpoint / latency (640 req/s for 4 x 16 at 100 ms). It prints:

0. the machine's ceiling at that moment: the same requests from a bare aiohttp pool (no runner, retries, limits or
   records), its throughput and CPU per request;
1. one process (``run_eval``): throughput, its ratio to the ideal, and the eval process's CPU per request
   (user + system of everything ``run_eval`` does: loading the benchmark, building requests, encoding images,
   HTTP, JSON, the cache and the fsynced sample writer; interpreter start-up excluded), and the servers' CPU;
2. ``--transport both``: the same with the official openai client's HTTP stack (``transport: openai``);
3. ``wafersage eval --workers 1`` and ``--workers 2``, each in its own process: throughput and CPU per request
   (user + system of the eval process and its workers, less what the same command costs on the finished run:
   interpreter start-up, loading the benchmark, reading the run back; a worker's own start-up stays in), and
   whether the two run folders hold the same answers;
4. failover: ``wafersage eval`` in its own process, one server killed (SIGKILL) a third of the way in: the exit
   code, and whether every item was answered exactly once.

Every line ends with the 1-minute load average: other jobs on the machine lower every ratio.

    .venv/bin/python benchmarks/bench_endpoints.py [--requests 6000] [--servers 4] [--per-endpoint 16]
                                                   [--latency-ms 100] [--transport aiohttp|openai|both]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
import yaml
from bench_eval import ServerProcess, pool  # the test server in its own process, a fixed pool of tasks

from wafersage.harness.run.folder import SAMPLES, load_run, read_samples
from wafersage.harness.run.runner import make_units, run_eval
from wafersage.models.base import GenerationParams, ModelRequest
from wafersage.models.images import encode_image
from wafersage.models.openai_backend import OpenAIOptions
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.synth.build import SynthConfig, build_benchmark

DEMO = Path(__file__).resolve().parents[1] / "configs" / "synth" / "demo.yaml"


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def served(servers: list[ServerProcess]) -> list[int]:
    """Chat requests each server has answered so far (its /stats)."""
    counts = []
    for server in servers:
        with urllib.request.urlopen(server.url.removesuffix("/v1") + "/stats", timeout=5) as reply:
            counts.append(json.load(reply)["chat_requests"])
    return counts


def config_for(servers: list[ServerProcess], per_endpoint: int, transport: str) -> dict:
    return {"name": "replicas", "backend": "openai", "base_url": [s.url for s in servers], "model": "wafersage-test",
            "max_concurrency": per_endpoint, "timeout": 30, "max_retries": 2, "transport": transport}


def timed_run(bench: Path, spec: str, out: Path, servers: list[ServerProcess], concurrency: int, repeats: int,
              label: str, ideal: float) -> None:
    before = served(servers)
    server_cpu = sum(s.cpu_seconds() for s in servers)
    wall, cpu = time.perf_counter(), time.process_time()
    info = run_eval(bench, spec, split="all", out_dir=out, concurrency=concurrency, repeats=repeats,
                    cache_path=out.with_suffix(".sqlite"), progress=False)
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    server_cpu = sum(s.cpu_seconds() for s in servers) - server_cpu
    spread = [after - b for after, b in zip(served(servers), before)]
    n = info.n_ok + info.n_failed
    print(f"{label}: {info.n_ok} ok / {info.n_failed} failed in {wall:.2f} s = {n / wall:,.0f} req/s, "
          f"{n / wall / ideal:.1%} of the ideal {ideal:,.0f}; eval CPU {1000 * cpu / n:.3f} ms per request "
          f"({cpu / wall:.0%} of a core); servers {1000 * server_cpu / n:.3f} ms per request; per server "
          f"{spread}; {load()}", flush=True)


async def bare_aiohttp(servers: list[ServerProcess], requests: list[ModelRequest], workers: int) -> tuple[int, float]:
    """The requests sent round-robin to the servers by a bare aiohttp pool; (ok answers, wall seconds)."""
    urls = [f"{server.url}/chat/completions" for server in servers]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def send(indexed: tuple[int, ModelRequest]) -> bool:
            index, request = indexed
            image = {"type": "image_url", "image_url": {"url": encode_image(request.images[0]).data_url}}
            system, user = request.messages
            body = {"model": "wafersage-test", "max_tokens": request.params.max_tokens, "messages": [
                {"role": "system", "content": system.content},
                {"role": "user", "content": [image, {"type": "text", "text": user.content}]}]}
            async with session.post(urls[index % len(urls)], json=body) as response:
                return response.status == 200 and bool(json.loads(await response.read())["choices"])

        answers, wall = await pool(send, list(enumerate(requests)), workers)
    return sum(answers), wall


def reference_run(bench: Path, servers: list[ServerProcess], repeats: int, concurrency: int, ideal: float) -> None:
    loaded = Benchmark.load(bench, verify=False)
    units = make_units(loaded.items("all"), loaded, repeats, GenerationParams(), OpenAIOptions(
        base_url=servers[0].url, model="wafersage-test").sent_image)
    wall, cpu = time.perf_counter(), time.process_time()
    ok, wall = asyncio.run(bare_aiohttp(servers, [unit.request for unit in units], concurrency))
    cpu = time.process_time() - cpu
    print(f"bare aiohttp pool (the machine's ceiling now): {ok} ok of {len(units)} in {wall:.2f} s = "
          f"{len(units) / wall:,.0f} req/s, {len(units) / wall / ideal:.1%} of the ideal; client CPU "
          f"{1000 * cpu / len(units):.3f} ms per request; {load()}", flush=True)


def eval_command(bench: Path, spec: Path, out: Path, repeats: int, concurrency: int, workers: int) -> list[str]:
    return [sys.executable, "-c", "from wafersage.cli import main; main()", "eval", "--bench", str(bench),
            "--split", "all", "--model", str(spec), "--out", str(out), "--repeats", str(repeats), "--concurrency",
            str(concurrency), "--workers", str(workers), "--cache", str(out.with_suffix(".sqlite")), "--no-progress"]


def workers_run(bench: Path, spec: Path, out: Path, repeats: int, concurrency: int, workers: int,
                ideal: float) -> None:
    command = eval_command(bench, spec, out, repeats, concurrency, workers)
    wall, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - wall, children_cpu() - cpu
    fixed = children_cpu()
    subprocess.run(command, capture_output=True, check=True)  # the finished run: no model calls
    fixed = children_cpu() - fixed
    info = load_run(out).info
    n = info.n_ok + info.n_failed
    print(f"wafersage eval --workers {workers}: exit code {done.returncode}, {info.n_ok} ok / {info.n_failed} failed "
          f"in {wall:.2f} s = {n / wall:,.0f} req/s, {n / wall / ideal:.1%} of the ideal; CPU "
          f"{1000 * (cpu - fixed) / n:.3f} ms per request ({cpu:.1f} s in all, less {fixed:.1f} s for the same "
          f"command on the finished run); {load()}", flush=True)


def answers(folder: Path) -> dict:
    return {(s.item_id, s.repeat): (s.response.text, s.response.error) for s in load_run(folder).samples}


def failover(bench: Path, root: Path, latency_ms: float, count: int, per_endpoint: int, repeats: int) -> bool:
    servers = [ServerProcess("--latency-ms", f"{latency_ms:g}") for _ in range(count)]
    out = root / "failover"
    try:
        spec = root / "failover.yaml"
        spec.write_text(yaml.safe_dump(config_for(servers, per_endpoint, "aiohttp")))
        command = eval_command(bench, spec, out, repeats, count * per_endpoint, 1)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        items = len(load_run_items(bench)) * repeats
        while process.poll() is None and _lines(out / SAMPLES) < items // 3:
            time.sleep(0.05)
        killed_at = _lines(out / SAMPLES)
        os.kill(servers[1].process.pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=600)
    finally:
        for server in servers:
            server.close()
    lines = read_samples(out / SAMPLES)[0]
    keys = [(s.item_id, s.repeat) for s in lines]
    once = len(keys) == len(set(keys)) == items
    ok = sum(s.ok for s in lines)
    taken_out = "taken out" in output
    print(f"failover: server 2 of {count} killed after {killed_at} of {items} answers; exit code {process.returncode}"
          f", {ok} ok / {len(lines) - ok} failed, every item answered exactly once: {once}; the log names the "
          f"endpoint taken out: {taken_out}; {load()}", flush=True)
    return process.returncode == 0 and once


def load_run_items(bench: Path) -> list:
    from wafersage.tasks.bench.folder import Benchmark

    return Benchmark.load(bench, verify=False).items("all")


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=6000, help="requests per run (the demo items, repeated)")
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--per-endpoint", type=int, default=16, help="max_concurrency of each endpoint")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--transport", choices=["aiohttp", "openai", "both"], default="both")
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--skip-failover", action="store_true")
    args = parser.parse_args()
    ideal = args.servers * args.per_endpoint / (args.latency_ms / 1000)
    concurrency = args.servers * args.per_endpoint
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench = build_benchmark(SynthConfig.from_yaml(DEMO), root / "bench", progress=False)
        repeats = math.ceil(args.requests / len(load_run_items(bench)))
        servers = [ServerProcess("--latency-ms", f"{args.latency_ms:g}") for _ in range(args.servers)]
        print(f"{args.servers} test servers (own processes), {args.latency_ms:g} ms latency, {args.per_endpoint} in "
              f"flight each, one 256x256 PNG per request, {len(load_run_items(bench)) * repeats} requests per run; "
              f"{os.cpu_count()} cores, {load()} before the runs", flush=True)
        try:
            reference_run(bench, servers, repeats, concurrency, ideal)
            transports = ["aiohttp", "openai"] if args.transport == "both" else [args.transport]
            for transport in transports:
                spec = root / f"{transport}.yaml"
                spec.write_text(yaml.safe_dump(config_for(servers, args.per_endpoint, transport)))
                timed_run(bench, str(spec), root / f"one-{transport}", servers, concurrency, repeats,
                          f"1 process (run_eval), transport {transport}", ideal)
            if not args.skip_workers:
                spec = root / "workers.yaml"
                spec.write_text(yaml.safe_dump(config_for(servers, args.per_endpoint, "aiohttp")))
                for workers in (1, 2):
                    workers_run(bench, spec, root / f"workers-{workers}", repeats, concurrency, workers, ideal)
                same = answers(root / "workers-1") == answers(root / "workers-2")
                print(f"--workers 2 run folder holds the same answers as --workers 1: {same}", flush=True)
        finally:
            for server in servers:
                server.close()
        if not args.skip_failover and not failover(bench, root, args.latency_ms, args.servers, args.per_endpoint,
                                                   repeats):
            sys.exit(1)


if __name__ == "__main__":
    main()
