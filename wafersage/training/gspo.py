"""Curriculum GSPO (``wafersage train gspo``): TRL's GRPOTrainer with sequence-level importance sampling, a LoRA
adapter, the rubric reward (:mod:`.rewards`) and the prompts in curriculum order (:mod:`.curriculum`).

The review stream is the train items the model has already seen: those listed in the model folder's
``wafersage_training.json`` (written by ``wafersage train sft``) when it was made from the same benchmark, else the
SFT share of the seeded wafer partition. The learning stream is the rest of the train split.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

from ..tasks.bench.folder import Benchmark
from ..tasks.bench.schema import VQAItem
from .config import GSPOSettings, TrainConfigError
from .curriculum import LEARNING, build_curriculum, ordered_entries
from .data import TRAIN_SPLIT, gspo_rows, load_training_bench, partition_train, to_dataset
from .merge import read_training_manifest
from .logging import MetricsCSVCallback
from .rewards import RubricReward
from .workdir import TrainResult, device_plan, finish_run, load_policy, prepare_run_dir, resume_checkpoint


def streams(bench: Benchmark, model_dir: Path, settings: GSPOSettings) -> tuple[list[VQAItem], list[VQAItem]]:
    """(review, learning) items of the train split (see the module docstring)."""
    manifest = read_training_manifest(model_dir)
    if manifest and manifest.get("bench_hash") == bench.hash:
        seen = set(manifest.get("seen_item_ids", []))
        train = bench.items(TRAIN_SPLIT)
        return [it for it in train if it.id in seen], [it for it in train if it.id not in seen]
    if manifest:
        warnings.warn(f"{model_dir} was trained on another benchmark ({manifest.get('bench_name')}); the review "
                      "stream is the SFT share of this benchmark's train split", stacklevel=2)
    partition = partition_train(bench, settings.sft_share, settings.split_seed)
    return partition.sft, partition.rl


def run_gspo(bench_dir: str | Path, model_dir: str | Path, out_dir: str | Path, settings: GSPOSettings | None = None,
             *, max_steps: int | None = None) -> TrainResult:
    """Train, save the adapter, export merged weights to ``<out>/merged``; a rerun on ``out_dir`` resumes."""
    from trl import GRPOTrainer

    started = time.perf_counter()
    settings = settings or GSPOSettings()
    bench = load_training_bench(bench_dir)
    model_dir = Path(model_dir)
    review, learning = streams(bench, model_dir, settings)
    entries = ordered_entries(build_curriculum(review, learning, settings.curriculum, settings.seed))
    entries = entries[:settings.limit]
    if not entries:
        raise TrainConfigError(f"{bench.root}: the curriculum is empty (no train items with difficulties "
                               f"{settings.curriculum.stages}); check curriculum.stages and the benchmark's splits")
    reward = RubricReward.from_bench(bench, settings.reward)
    dataset = to_dataset(gspo_rows(bench, entries, settings.system_prompt))
    plan = device_plan(settings, require_gpu=settings.use_vllm)
    layout = prepare_run_dir(out_dir, settings)
    model, processor = load_policy(model_dir, plan)
    trainer = GRPOTrainer(
        model=model, args=settings.to_trl(layout.checkpoints, plan.use_cpu, plan.bf16, max_steps),
        train_dataset=dataset, processing_class=processor, reward_funcs=[reward],
        peft_config=settings.lora.peft_config(), callbacks=[MetricsCSVCallback(layout.root)],
    )
    trainer.train(resume_from_checkpoint=resume_checkpoint(layout))
    trained = [it.id for it, _ in entries]
    seen = sorted({it.id for it in review} | {it.id for it, stream in entries if stream == LEARNING})
    return finish_run(trainer, processor, layout, stage="gspo", model_dir=model_dir, bench=bench,
                      settings=settings, trained_ids=trained, seen_ids=seen, started=started)
