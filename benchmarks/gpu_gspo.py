"""GPU check of curriculum GSPO training: optimiser steps/s and peak GPU memory for a few steps.

Run on a machine with a CUDA GPU and the ``train`` extra::

    python benchmarks/gpu_gspo.py                                   # tiny Qwen3-VL + a small synthetic benchmark
    python benchmarks/gpu_gspo.py --model PATH --bench DIR --steps 10 --num-generations 8
    python benchmarks/gpu_gspo.py --use-vllm                        # rollouts through vLLM (colocate mode)

Prints the wall time of the whole run (loading, training, merge/export), steps/s over the training steps (from the
trainer's per-step ``step_time``, first step excluded when there are more), the mean reward and the peak memory
torch allocated on the GPU (``torch.cuda.max_memory_allocated``). Exits with status 2 and a message when there is
no GPU or the train extra is missing.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def gpu_problem(use_vllm: bool) -> str:
    for module in ("torch", "transformers", "trl", "peft", "datasets"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install -e '.[train]' -c constraints.txt"
    if use_vllm and importlib.util.find_spec("vllm") is None:
        return "--use-vllm needs vLLM: pip install -e '.[vllm]' -c constraints.txt"
    import torch

    return "" if torch.cuda.is_available() else "torch sees no CUDA GPU; this check measures GSPO on a GPU"


def small_bench(folder: Path) -> Path:
    from wafersage.tasks.synth.build import SynthConfig, build_benchmark

    config = SynthConfig.model_validate(dict(
        name="gpu-gspo-check", seed=0, image_size=128,
        source=dict(kind="generated", n=36, size=[52, 52], mixtures=False, balanced=True),
        splits=dict(train=0.8, val=0.0, test=0.2),
    ))
    return build_benchmark(config, folder, progress=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="checkpoint folder [default: build the tiny Qwen3-VL]")
    parser.add_argument("--bench", type=Path, help="benchmark folder with a train split [default: build one]")
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps")
    parser.add_argument("--num-generations", type=int, default=8, help="group size")
    parser.add_argument("--prompts-per-step", type=int, default=2, help="prompts per optimiser step")
    parser.add_argument("--max-completion-length", type=int, default=64, help="new tokens per completion")
    parser.add_argument("--use-vllm", action="store_true", help="generate with vLLM (colocate)")
    args = parser.parse_args()
    problem = gpu_problem(args.use_vllm)
    if problem:
        print(f"gpu_gspo: {problem}", file=sys.stderr)
        return 2

    import torch

    from wafersage.models.testing.tiny import build_tiny_qwen3_vl
    from wafersage.training.config import GSPOSettings
    from wafersage.training.gspo import run_gspo

    with tempfile.TemporaryDirectory(prefix="gpu_gspo_") as tmp:
        tmp_dir = Path(tmp)
        model = args.model or build_tiny_qwen3_vl(tmp_dir / "tiny")
        bench = args.bench or small_bench(tmp_dir / "bench")
        settings = GSPOSettings(
            num_generations=args.num_generations, per_device_train_batch_size=args.num_generations,
            gradient_accumulation_steps=args.prompts_per_step, max_completion_length=args.max_completion_length,
            use_vllm=args.use_vllm, logging_steps=1, save_steps=10_000,
        )
        torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        result = run_gspo(bench, model, tmp_dir / "run", settings, max_steps=args.steps)
        wall = time.perf_counter() - started
        metrics = pd.read_csv(result.metrics_csv)
    step_times = metrics["step_time"].dropna().tolist() if "step_time" in metrics else []
    timed = step_times[1:] if len(step_times) > 1 else step_times
    print(f"device               {torch.cuda.get_device_name(0)}")
    print(f"model                {args.model or 'tiny Qwen3-VL (built)'}")
    print(f"steps                {result.steps} (group size {args.num_generations}, "
          f"{args.prompts_per_step} prompts/step, {args.max_completion_length} new tokens, vLLM {args.use_vllm})")
    print(f"wall time            {wall:.1f} s (load, train, merge and export)")
    if timed:
        print(f"steps/s              {len(timed) / sum(timed):.3f} (over {len(timed)} steps)")
    if "reward" in metrics:
        print(f"mean reward          {metrics['reward'].dropna().mean():.4f}")
    print(f"peak GPU memory      {torch.cuda.max_memory_allocated() / 2**30:.3f} GiB (torch.cuda.max_memory_allocated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
