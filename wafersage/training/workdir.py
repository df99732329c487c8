"""What SFT and GSPO share: the run folder, device and precision, loading the policy, finishing a run.

Run folder layout (``--out``)::

    config.yaml           the settings used (after overrides)
    checkpoints/          trainer checkpoints; a rerun with the same --out resumes from the latest
    adapter/              the trained LoRA adapter (+ processor)
    merged/               merged full weights + processor: load with hf:<out>/merged, vLLM, lm-eval
    metrics.csv, metrics.png
    run.json              summary: stage, model, benchmark, items, steps, final metrics
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from ..tasks.bench.folder import Benchmark
from .config import CommonSettings, TrainConfigError
from .merge import TRAINING_MANIFEST, export_merged


@dataclass(frozen=True)
class RunLayout:
    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def merged(self) -> Path:
        return self.root / "merged"


@dataclass(frozen=True)
class DevicePlan:
    use_cpu: bool
    bf16: bool

    @property
    def dtype_name(self) -> str:
        return "bfloat16" if self.bf16 else "float32"


class TrainResult(BaseModel):
    """What a training command produced."""

    stage: str
    run_dir: Path
    merged_dir: Path
    adapter_dir: Path
    metrics_csv: Path
    steps: int
    n_items: int
    seconds: float
    final_metrics: dict[str, float]


def device_plan(settings: CommonSettings, require_gpu: bool = False) -> DevicePlan:
    """CPU without CUDA (fp32); on a GPU bf16 when asked or when ``auto`` and the card has it."""
    import torch

    cuda = torch.cuda.is_available()
    if require_gpu and not cuda:
        raise TrainConfigError("use_vllm needs a CUDA GPU and torch sees none; set use_vllm: false")
    if settings.precision == "bf16" and not cuda:
        raise TrainConfigError("precision bf16 needs a CUDA GPU and torch sees none; use precision: auto or fp32")
    bf16 = cuda and (settings.precision == "bf16" or (settings.precision == "auto" and torch.cuda.is_bf16_supported()))
    return DevicePlan(use_cpu=not cuda, bf16=bf16)


def load_policy(model_dir: str | Path, plan: DevicePlan):
    """(model, processor) of a full checkpoint folder; adapter folders are refused with the fix."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = Path(model_dir).resolve()  # adapters record this path as their base
    if (folder / "adapter_config.json").is_file():
        raise TrainConfigError(f"{folder} is a LoRA adapter folder; train from a full checkpoint such as the "
                               "'merged' folder of the previous run (or 'wafersage train export' the adapter first)")
    if not (folder / "config.json").is_file():
        raise TrainConfigError(f"{folder}: no config.json; --model must be a transformers checkpoint folder "
                               "(config.json + weights + processor files)")
    processor = AutoProcessor.from_pretrained(folder)
    if not getattr(processor, "chat_template", None):
        raise TrainConfigError(f"{folder}: the processor has no chat template; save one with the processor")
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=getattr(torch, plan.dtype_name))
    return model, processor


def prepare_run_dir(out_dir: str | Path, settings: BaseModel) -> RunLayout:
    """Create the run folder and write the settings used."""
    layout = RunLayout(Path(out_dir))
    layout.root.mkdir(parents=True, exist_ok=True)
    (layout.root / "config.yaml").write_text(
        yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return layout


def resume_checkpoint(layout: RunLayout) -> str | None:
    """The latest checkpoint in the run folder, so a rerun loses nothing already trained."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(layout.checkpoints)) if layout.checkpoints.is_dir() else None


def finish_run(trainer: Any, processor: Any, layout: RunLayout, *, stage: str, model_dir: Path, bench: Benchmark,
               settings: BaseModel, trained_ids: list[str], seen_ids: list[str], started: float) -> TrainResult:
    """Save the adapter, export merged weights, write run.json; returns the summary."""
    from .logging import METRICS_CSV

    trainer.save_model(str(layout.adapter))
    processor.save_pretrained(layout.adapter)
    logs = [h for h in trainer.state.log_history if "train_runtime" not in h]
    final = {k: float(v) for k, v in (logs[-1] if logs else {}).items() if isinstance(v, (int, float))}
    manifest = {
        "stage": stage, "base_model": str(Path(model_dir).resolve()), "bench_name": bench.name,
        "bench_hash": bench.hash, "trained_item_ids": trained_ids, "seen_item_ids": seen_ids,
        "steps": trainer.state.global_step, "system_prompt": getattr(settings, "system_prompt", None),
        "settings": settings.model_dump(mode="json"),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (layout.adapter / TRAINING_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    export_merged(trainer.model, processor, layout.merged, manifest)
    result = TrainResult(stage=stage, run_dir=layout.root, merged_dir=layout.merged, adapter_dir=layout.adapter,
                         metrics_csv=layout.root / METRICS_CSV, steps=trainer.state.global_step,
                         n_items=len(trained_ids), seconds=time.perf_counter() - started, final_metrics=final)
    (layout.root / "run.json").write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return result
