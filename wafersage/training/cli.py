"""``wafersage train``: SFT, curriculum GSPO and LoRA export. Exit code 2 for config and input errors."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from ..tasks.bench.folder import BenchmarkError
from .config import GSPOSettings, SFTSettings, TrainConfigError, load_settings

BENCH = click.option("--bench", "bench_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="benchmark folder (made by 'wafersage synth'); its train split is used")
MODEL = click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="transformers checkpoint folder to start from (e.g. a base Qwen3-VL or <sft run>/merged)")
OUT = click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                   help="run folder; rerunning on it resumes from the latest checkpoint")
MAX_STEPS = click.option("--max-steps", type=int, default=None, help="stop after N optimiser steps (overrides config)")
LIMIT = click.option("--limit", type=int, default=None, help="use only the first N items (overrides config)")


@contextmanager
def _usage_errors_exit_2(ctx: click.Context) -> Iterator[None]:
    """Config and input errors print their message and exit 2 (no traceback)."""
    from ..harness.scoring.calibrate import CalibrationError
    from .merge import ExportError

    try:
        yield
    except (TrainConfigError, BenchmarkError, ExportError, CalibrationError) as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(2)


def _report(result) -> None:
    click.echo(f"{result.stage}: {result.steps} steps on {result.n_items} items in {result.seconds:.1f} s")
    for key in ("loss", "reward", "reward_std", "frac_reward_zero_std"):
        if key in result.final_metrics:
            click.echo(f"  {key:<22}{result.final_metrics[key]:.4f}")
    click.echo(f"  metrics        {result.metrics_csv}")
    click.echo(f"  merged model   {result.merged_dir}  (evaluate: wafersage eval --model hf:{result.merged_dir} …)")


@click.group()
def train() -> None:
    """Fine-tune a VLM on a benchmark's train split: SFT, then curriculum GSPO on rubric rewards."""


@train.command("sft")
@BENCH
@MODEL
@OUT
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="settings YAML (e.g. configs/train/sft.yaml) [default: the paper's settings]")
@MAX_STEPS
@LIMIT
@click.pass_context
def sft(ctx: click.Context, bench_dir: Path, model_dir: Path, out_dir: Path, config_path: Path | None,
        max_steps: int | None, limit: int | None) -> None:
    """Supervised fine-tuning with LoRA on image + question -> <REASONING>…<SOLUTION>answer."""
    with _usage_errors_exit_2(ctx):
        settings = load_settings(config_path, SFTSettings, limit=limit)
        from .sft import run_sft

        result = run_sft(bench_dir, model_dir, out_dir, settings, max_steps=max_steps)
    _report(result)


@train.command("gspo")
@BENCH
@MODEL
@OUT
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="settings YAML (e.g. configs/train/gspo.yaml) [default: the paper's settings]")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="calibration.json whose rule constants the reward uses (overrides the config)")
@click.option("--num-generations", type=int, default=None, help="group size (overrides config; paper 32)")
@MAX_STEPS
@LIMIT
@click.pass_context
def gspo(ctx: click.Context, bench_dir: Path, model_dir: Path, out_dir: Path, config_path: Path | None,
         calibration: Path | None, num_generations: int | None, max_steps: int | None, limit: int | None) -> None:
    """Curriculum GSPO with LoRA; reward = rubric rule score of the <SOLUTION> (x format bonus)."""
    with _usage_errors_exit_2(ctx):
        settings = load_settings(config_path, GSPOSettings, limit=limit, num_generations=num_generations)
        if calibration is not None:
            settings.reward.calibration = calibration
        from .gspo import run_gspo

        result = run_gspo(bench_dir, model_dir, out_dir, settings, max_steps=max_steps)
    _report(result)


@train.command("export")
@click.option("--adapter", "adapter_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="LoRA adapter folder (a run's 'adapter' folder)")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="folder for the merged model (weights + processor)")
@click.pass_context
def export(ctx: click.Context, adapter_dir: Path, out_dir: Path) -> None:
    """Merge a LoRA adapter into its base model and save a folder the hf backend and vLLM load."""
    from .merge import export_adapter

    with _usage_errors_exit_2(ctx):
        out = export_adapter(adapter_dir, out_dir)
    click.echo(f"merged model written to {out}")
