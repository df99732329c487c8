"""GPU check of the vllm backend: throughput and peak GPU memory over N wafer-map image requests.

Run on a machine with a CUDA GPU and the ``vllm`` extra::

    python benchmarks/gpu_vllm.py                      # builds the tiny Qwen3-VL (a smoke test of the plumbing)
    python benchmarks/gpu_vllm.py --model PATH -n 256  # a real checkpoint folder
    python benchmarks/gpu_vllm.py --also-hf            # the same requests through the hf backend, for comparison

Prints engine start-up time, requests/s, output tokens/s, failures and the peak GPU memory in use on the device
(sampled every 50 ms; it includes the KV cache vLLM reserves, i.e. about ``--gpu-memory-utilization``).
Exits with status 2 and a message when vLLM or a GPU is missing.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from wafersage.models.base import ChatMessage, GenerationParams, ModelRequest
from wafersage.models.config import ModelConfig
from wafersage.tasks.maps.palette import COLOUR

QUESTIONS = ("Which defect pattern does this wafer map show?", "Where on the wafer are the failed dies?",
             "What is the most likely root cause, and which equipment family?")


def gpu_problem() -> str:
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed: pip install -e '.[vllm]' -c constraints.txt (on a CUDA machine)"
    import torch

    return "" if torch.cuda.is_available() else "torch sees no CUDA GPU; vLLM needs one"


class PeakMemory:
    """Samples device-wide GPU memory in use (all processes, so vLLM's engine process counts) until stopped."""

    def __init__(self, interval_s: float = 0.05):
        self.interval_s, self.peak, self.total = interval_s, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _used(self) -> tuple[int, int]:
        try:
            import pynvml  # ships with vLLM (nvidia-ml-py); does not create a CUDA context

            pynvml.nvmlInit()
            info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0))
            return int(info.used), int(info.total)
        except Exception:
            import torch

            free, total = torch.cuda.mem_get_info()
            return total - free, total

    def _run(self) -> None:
        while not self._stop.is_set():
            used, self.total = self._used()
            self.peak = max(self.peak, used)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def wafer_images(folder: Path, n: int, side: int, seed: int = 0) -> list[str]:
    """``n`` wafer-like PNGs: a disc of pass dies with one random cluster of fail dies each."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1:1:side * 1j, -1:1:side * 1j]
    paths = []
    for i in range(n):
        codes = np.where(x**2 + y**2 <= 1, 1, 0)
        cx, cy, r = rng.uniform(-0.7, 0.7), rng.uniform(-0.7, 0.7), rng.uniform(0.1, 0.4)
        codes[((x - cx) ** 2 + (y - cy) ** 2 < r * r) & (codes == 1)] = 2
        path = folder / f"wafer_{i:04d}.png"
        Image.fromarray(COLOUR[codes]).save(path)
        paths.append(str(path))
    return paths


async def run(model, requests: list[ModelRequest], batch_size: int) -> tuple[float, list]:
    started = time.perf_counter()
    responses = []
    for start in range(0, len(requests), batch_size):
        responses += await model.generate(requests[start:start + batch_size])
    return time.perf_counter() - started, responses


def report(label: str, seconds: float, responses: list) -> None:
    ok = [r for r in responses if r.ok]
    out_tokens = sum(r.output_tokens for r in ok)
    print(f"{label}: {len(responses)} requests in {seconds:.2f} s -> {len(responses) / seconds:.1f} requests/s, "
          f"{out_tokens / seconds:.0f} output tokens/s, {len(responses) - len(ok)} failed")
    for r in responses:
        if not r.ok:
            print(f"  first failure: {r.error}")
            break


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint folder (default: build the tiny Qwen3-VL)")
    parser.add_argument("-n", "--requests", type=int, default=128)
    parser.add_argument("--image-side", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.5)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--enforce-eager", action="store_true", help="skip CUDA graph capture")
    parser.add_argument("--also-hf", action="store_true", help="also time the hf backend on the same requests")
    args = parser.parse_args()
    problem = gpu_problem()
    if problem:
        print(f"gpu_vllm: cannot run: {problem}", file=sys.stderr)
        return 2

    from wafersage.models.vllm_backend import VLLMModel

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.model:
            path = Path(args.model)
        else:
            from wafersage.models.testing.tiny import build_tiny_qwen3_vl

            path = build_tiny_qwen3_vl(folder / "tiny_qwen3_vl")
        images = wafer_images(folder, args.requests, args.image_side)
        requests = [ModelRequest(messages=[ChatMessage(role="user", content=QUESTIONS[i % len(QUESTIONS)])],
                                 images=[image], params=GenerationParams(max_tokens=args.max_tokens))
                    for i, image in enumerate(images)]
        config = ModelConfig(name=path.name, backend="vllm", path=str(path), batch_size=args.batch_size,
                             gpu_memory_utilization=args.gpu_memory_utilization,
                             max_model_len=args.max_model_len, enforce_eager=args.enforce_eager)
        print(f"model {path} | {args.requests} requests, {args.image_side}px images, "
              f"max_tokens {args.max_tokens}, batch {args.batch_size}")
        model = VLLMModel(config)
        with PeakMemory() as memory:
            started = time.perf_counter()
            asyncio.run(model.generate(requests[:1]))
            print(f"vllm engine start + first request: {time.perf_counter() - started:.1f} s")
            seconds, responses = asyncio.run(run(model, requests, args.batch_size))
        report("vllm", seconds, responses)
        print(f"peak GPU memory in use (device-wide): {memory.peak / 2**30:.2f} GiB of {memory.total / 2**30:.1f} GiB")
        asyncio.run(model.aclose())
        if args.also_hf:
            from wafersage.models.hf_backend import HFModel

            hf = HFModel(ModelConfig(name=path.name, backend="hf", path=str(path),
                                     batch_size=min(args.batch_size, 16)))
            asyncio.run(hf.generate(requests[:1]))
            hf_seconds, hf_responses = asyncio.run(run(hf, requests, hf.batch_size))
            report("hf (transformers)", hf_seconds, hf_responses)
    return 1 if any(not r.ok for r in responses) else 0


if __name__ == "__main__":
    sys.exit(main())
