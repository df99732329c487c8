"""Throughput and fault tolerance of the openai backend against the test server (run in its own process).

Throughput: K concurrent workers (a fixed pool pulling from a queue, as the runner does) send image requests to a
server answering after ``--latency-ms``; the ideal is K / latency requests per second. Faults: a run with injected
429 + Retry-After, 500, hangs past the client timeout and truncated 200 bodies; every request must end ok or
failed-with-reason, none lost. ``--reference`` adds, at each K, the same pool and payloads sent by a bare aiohttp
session (no retries, no limiter, no validation): what this machine allows at that moment, to read the backend's
ratio against. Every line ends with the 1-minute load average (other jobs on the machine lower every ratio).

    .venv/bin/python benchmarks/bench_eval.py                 # K = 1, 8, 32, 64, 128; 5,000 requests per point
    .venv/bin/python benchmarks/bench_eval.py --requests 1000 --concurrency 64 --fault-requests 500 --reference
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import numpy as np
from PIL import Image

from wafersage.models.base import ChatMessage, GenerationParams, ModelRequest, ModelResponse
from wafersage.models.config import ModelConfig
from wafersage.models.images import clear_image_cache, encode_image
from wafersage.models.openai_backend import OpenAIModel

WAFER_COLOURS = np.array([[255, 255, 255], [80, 170, 80], [200, 40, 40]], dtype=np.uint8)


class ServerProcess:
    """``python -m wafersage.models.testing.server`` in a child process; ``url`` once it listens."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wafersage.models.testing.server", "--port", "0", *args],
            stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip() if self.process.stdout else ""
        if not line.startswith("http://"):
            self.process.kill()
            raise RuntimeError(f"the test server did not start (said {line!r})")
        self.url = line

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()


def write_images(folder: Path, count: int, seed: int = 0) -> list[str]:
    """Small distinct wafer-like PNGs (52x52 dies, 2 px each), so no request reuses another's encoding."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:52, :52]
    inside = (yy - 25.5) ** 2 + (xx - 25.5) ** 2 <= 26 ** 2
    paths = []
    for index in range(count):
        grid = np.where(inside, np.where(rng.random((52, 52)) < 0.1, 2, 1), 0)
        path = folder / f"wafer_{index:05d}.png"
        Image.fromarray(WAFER_COLOURS[grid].repeat(2, 0).repeat(2, 1)).save(path)
        paths.append(str(path))
    return paths


def make_requests(images: list[str], count: int, tag: str) -> list[ModelRequest]:
    return [ModelRequest(
        messages=[ChatMessage(role="system", content="Answer in one sentence."),
                  ChatMessage(role="user", content=f"[{tag} {index}] Which defect pattern does this wafer show?")],
        images=[images[index % len(images)]], params=GenerationParams(max_tokens=64))
        for index in range(count)]


async def drive(model: OpenAIModel, requests: list[ModelRequest], workers: int) -> tuple[list[ModelResponse], float]:
    """A fixed pool of ``workers`` tasks pulling from a queue; returns the responses in order and the wall time."""
    async def send(request: ModelRequest) -> ModelResponse:
        return (await model.generate([request]))[0]
    return await pool(send, requests, workers)


async def pool(send, requests: list, workers: int) -> tuple[list, float]:
    """``send`` every request from a fixed pool of ``workers`` tasks; the answers in order, and the wall time."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(requests)):
        queue.put_nowait(index)
    responses: list = [None] * len(requests)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            responses[index] = await send(requests[index])

    started = time.perf_counter()
    crashed = [r for r in await asyncio.gather(*(worker() for _ in range(workers)), return_exceptions=True) if r]
    for error in crashed:  # a worker that died leaves its request without a response: it counts as lost
        print(f"a worker died: {error!r}", file=sys.stderr)
    return [r for r in responses if r is not None], time.perf_counter() - started


def model_for(url: str, concurrency: int, **options: object) -> OpenAIModel:
    config = ModelConfig(name="bench", backend="openai", base_url=url, model="wafersage-test",
                         max_concurrency=concurrency, **options)
    return OpenAIModel(config)


def report(label: str, k: int, count: int, wall: float, failed: int, latency_s: float, client_cpu: float,
           server_cpu: float) -> None:
    rate, ideal = count / wall, k / latency_s
    print(f"{label}K={k:4d}  requests={count:5d}  wall={wall:7.2f} s  throughput={rate:8.1f} req/s  "
          f"ideal={ideal:7.1f}  ratio={rate / ideal:6.1%}  failed={failed}  CPU ms/request: "
          f"client {1000 * client_cpu / count:.2f}, server {1000 * server_cpu / count:.2f} "
          f"(client busy {client_cpu / wall:.0%} of a core)  load {os.getloadavg()[0]:.1f}", flush=True)


async def throughput(server: ServerProcess, images: list[str], k: int, count: int, latency_s: float) -> None:
    model = model_for(server.url, k, timeout=30)
    clear_image_cache()
    await drive(model, make_requests(images, k, "warm-up"), k)  # open the connections
    client_cpu, server_cpu = time.process_time(), server.cpu_seconds()
    responses, wall = await drive(model, make_requests(images, count, f"k{k}"), k)
    client_cpu, server_cpu = time.process_time() - client_cpu, server.cpu_seconds() - server_cpu
    await model.aclose()
    report("", k, len(responses), wall, sum(not r.ok for r in responses), latency_s, client_cpu, server_cpu)


async def reference(server: ServerProcess, images: list[str], k: int, count: int, latency_s: float) -> None:
    """The same pool and payloads over a bare aiohttp session: no retries, limiter, validation or records."""
    chat_url = f"{server.url}/chat/completions"
    clear_image_cache()

    async with aiohttp.ClientSession() as session:
        async def send(request: ModelRequest) -> bool:
            image = {"type": "image_url", "image_url": {"url": encode_image(request.images[0]).data_url}}
            body = {"model": "wafersage-test", "max_tokens": request.params.max_tokens, "messages": [
                {"role": "system", "content": request.messages[0].content},
                {"role": "user", "content": [image, {"type": "text", "text": request.messages[1].content}]}]}
            async with session.post(chat_url, json=body) as response:
                return response.status == 200 and bool(json.loads(await response.read())["choices"])

        await pool(send, make_requests(images, k, "warm-up"), k)
        client_cpu, server_cpu = time.process_time(), server.cpu_seconds()
        answers, wall = await pool(send, make_requests(images, count, f"ref{k}"), k)
        client_cpu, server_cpu = time.process_time() - client_cpu, server.cpu_seconds() - server_cpu
    report("reference (bare aiohttp) ", k, count, wall, answers.count(False), latency_s, client_cpu, server_cpu)


async def fault_run(url: str, images: list[str], k: int, count: int, timeout: float) -> int:
    model = model_for(url, k, timeout=timeout, max_retries=2)
    requests = make_requests(images, count, "faults")
    responses, wall = await drive(model, requests, k)
    await model.aclose()
    reasons = Counter((r.error or "").split(":")[0] for r in responses if not r.ok)
    ok, lost = sum(r.ok for r in responses), len(requests) - len(responses)
    print(f"fault run: {count} requests, K={k}, wall {wall:.1f} s: ok={ok} "
          f"failed-with-reason={sum(reasons.values())} {dict(reasons)} lost={lost}; "
          f"concurrency limit at the end {model.current_concurrency}/{k}; load {os.getloadavg()[0]:.1f}", flush=True)
    return lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per concurrency point (K > 1)")
    parser.add_argument("--k1-requests", type=int, default=300, help="requests at K=1 (5,000 would take 500 s)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64, 128])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--fault-requests", type=int, default=2000)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--reference", action="store_true", help="also time a bare aiohttp client at each K")
    args = parser.parse_args()
    latency_s = args.latency_ms / 1000
    with tempfile.TemporaryDirectory() as tmp:
        images = write_images(Path(tmp), max(args.requests, args.k1_requests, args.fault_requests))
        server = ServerProcess("--latency-ms", str(args.latency_ms))
        try:
            print(f"server {server.url} (separate process), latency {args.latency_ms:g} ms, one 104x104 PNG per "
                  f"request; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before the run")
            for k in args.concurrency:
                count = args.k1_requests if k == 1 else args.requests
                if k == 1:
                    print(f"(K=1 uses {count} requests: {args.requests} at {args.latency_ms:g} ms would take "
                          f"{args.requests * latency_s:.0f} s)")
                asyncio.run(throughput(server, images, k, count, latency_s))
                if args.reference:
                    asyncio.run(reference(server, images, k, count, latency_s))
        finally:
            server.close()
        server = ServerProcess("--latency-ms", str(args.latency_ms), "--fault-rate", str(args.fault_rate),
                               "--retry-after-s", "1", "--hang-s", "30", "--seed", "7")
        try:
            print(f"fault mix: {args.fault_rate:.0%} of attempts get 429 (Retry-After 1 s), 500, a hang past the "
                  f"2 s client timeout or a truncated 200 body, in equal parts")
            lost = asyncio.run(fault_run(server.url, images, 64, args.fault_requests, timeout=2.0))
        finally:
            server.close()
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    main()
