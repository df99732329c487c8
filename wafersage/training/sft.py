"""Supervised fine-tuning (``wafersage train sft``): TRL's SFTTrainer with a LoRA adapter on the SFT share of the
train split (image + question -> ``<REASONING>…</REASONING><SOLUTION>answer</SOLUTION>``)."""
from __future__ import annotations

import time
from pathlib import Path

from .config import SFTSettings
from .data import load_training_bench, partition_train, sft_rows, to_dataset
from .logging import MetricsCSVCallback
from .workdir import TrainResult, device_plan, finish_run, load_policy, prepare_run_dir, resume_checkpoint


def run_sft(bench_dir: str | Path, model_dir: str | Path, out_dir: str | Path, settings: SFTSettings | None = None,
            *, max_steps: int | None = None) -> TrainResult:
    """Train, save the adapter, export merged weights to ``<out>/merged``; a rerun on ``out_dir`` resumes."""
    from trl import SFTTrainer

    started = time.perf_counter()
    settings = settings or SFTSettings()
    bench = load_training_bench(bench_dir)
    items = partition_train(bench, settings.sft_share, settings.split_seed).sft[:settings.limit]
    dataset = to_dataset(sft_rows(bench, items, settings.system_prompt))
    plan = device_plan(settings)
    layout = prepare_run_dir(out_dir, settings)
    model, processor = load_policy(model_dir, plan)
    trainer = SFTTrainer(
        model=model, args=settings.to_trl(layout.checkpoints, plan.use_cpu, plan.bf16, max_steps),
        train_dataset=dataset, processing_class=processor, peft_config=settings.lora.peft_config(),
        callbacks=[MetricsCSVCallback(layout.root)],
    )
    trainer.train(resume_from_checkpoint=resume_checkpoint(layout))
    ids = [it.id for it in items]
    return finish_run(trainer, processor, layout, stage="sft", model_dir=Path(model_dir), bench=bench,
                      settings=settings, trained_ids=ids, seen_ids=ids, started=started)
