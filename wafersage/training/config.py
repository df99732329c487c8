"""Typed training configs (TRL style: every field says what it does, combinations are checked on load).

``SFTSettings`` and ``GSPOSettings`` are read from YAML (``configs/train/sft.yaml``, ``configs/train/gspo.yaml``)
with :func:`load_settings`; unknown keys are errors. They turn into TRL's own configs with ``to_trl``. Defaults are
the paper's: LoRA r 16, alpha 16, dropout 0; SFT lr 2e-4, batch 2 x 4, max length 2048; GSPO lr 5e-5, 32 samples
per prompt, sequence-level importance ratio with TRL's documented GSPO clipping (epsilon 3e-4 / 4e-4, beta 0).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..configio import load_validated_yaml
from ..tasks.bench.schema import DIFFICULTIES, Difficulty

TRAIN_SYSTEM_PROMPT = (
    "You are a semiconductor yield engineer analysing a wafer map. In the image each small square is a die: "
    "passing dies and failing dies are drawn in different colours and the area outside the wafer is blank. "
    "Think about the spatial pattern of the failing dies, its shape and its likely process cause inside "
    "<REASONING></REASONING> tags, then give your final answer in 1-3 sentences inside <SOLUTION></SOLUTION> "
    "tags. If the question is a yes/no question, start the solution with Yes or No."
)

S = TypeVar("S", bound=BaseModel)


class TrainConfigError(ValueError):
    """A training config (file or combination of values) is invalid; the message names the file, field and fix."""


class LoraSettings(BaseModel):
    """LoRA adapter (peft) trained on top of the frozen model."""

    model_config = ConfigDict(extra="forbid")
    r: int = Field(16, ge=1, description="LoRA rank")
    alpha: int = Field(16, ge=1, description="LoRA alpha (scaling = alpha / r)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: str | list[str] = Field(
        "all-linear", description="modules that get adapters: 'all-linear' or a list of module names")

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, task_type="CAUSAL_LM")


class CommonSettings(BaseModel):
    """Fields every training stage has."""

    model_config = ConfigDict(extra="forbid")
    seed: int = Field(0, description="seed of the trainer (init, sampling, data order where shuffled)")
    learning_rate: float = Field(gt=0, description="peak learning rate of AdamW")
    per_device_train_batch_size: int = Field(ge=1, description="sequences per device per forward pass")
    gradient_accumulation_steps: int = Field(ge=1, description="forward passes per optimiser step")
    num_train_epochs: float = Field(1.0, gt=0, description="passes over the dataset (ignored when max_steps > 0)")
    max_steps: int = Field(-1, description="optimiser steps; -1 runs num_train_epochs")
    lr_scheduler_type: str = Field("linear", description="transformers scheduler name (linear, cosine, constant)")
    warmup_steps: float = Field(0, ge=0, description="lr warm-up: an integer number of steps, or a ratio in [0, 1) "
                                                     "of the total steps")
    logging_steps: int = Field(1, ge=1, description="log (and write metrics.csv) every N steps")
    save_steps: int = Field(100, ge=1, description="write a resumable checkpoint every N steps")
    save_total_limit: int = Field(2, ge=1, description="keep at most this many checkpoints")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto: bf16 on a GPU that has it, fp32 otherwise (always fp32 on the CPU)")
    gradient_checkpointing: bool = Field(False, description="trade compute for memory (large models on a GPU)")
    lora: LoraSettings = Field(default_factory=LoraSettings, description="LoRA adapter settings")
    system_prompt: str = Field(TRAIN_SYSTEM_PROMPT, min_length=1,
                               description="system turn; asks for <REASONING> and <SOLUTION> tags")
    sft_share: float = Field(
        0.5, gt=0, le=1, description="share of the train split's wafers used by SFT; GSPO learns on the rest "
                                     "(the learning stream) and reviews the SFT share (the review stream)")
    split_seed: int = Field(0, description="seed of the wafer-level SFT / RL partition of the train split")
    limit: int | None = Field(None, ge=1, description="use at most N items (smoke runs)")
    deepspeed: Path | None = Field(
        None, description="DeepSpeed JSON (e.g. deepspeed_zero2.json next to the shipped configs; relative to the "
                          "config file); launch with accelerate")
    report_to: list[str] = Field(default_factory=list, description="extra trackers (wandb, tensorboard); metrics.csv "
                                                                   "and metrics.png are always written")

    def common_trl_kwargs(self, output_dir: Path, use_cpu: bool, bf16: bool, max_steps: int | None) -> dict[str, Any]:
        from transformers import TrainingArguments

        # transformers 5 renamed gradient_checkpointing (TRL defaults it to True); pass the name it knows
        checkpointing = ("activation_checkpointing" if "activation_checkpointing" in
                         TrainingArguments.__dataclass_fields__ else "gradient_checkpointing")
        return dict(
            output_dir=str(output_dir), seed=self.seed, learning_rate=self.learning_rate,
            per_device_train_batch_size=self.per_device_train_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps, num_train_epochs=self.num_train_epochs,
            max_steps=self.max_steps if max_steps is None else max_steps, lr_scheduler_type=self.lr_scheduler_type,
            warmup_steps=self.warmup_steps, logging_steps=self.logging_steps, save_steps=self.save_steps,
            save_total_limit=self.save_total_limit, use_cpu=use_cpu, bf16=bf16,
            report_to=self.report_to or "none", **{checkpointing: self.gradient_checkpointing},
            deepspeed=str(self.deepspeed) if self.deepspeed else None,
        )


class SFTSettings(CommonSettings):
    """Supervised fine-tuning on the train split's VQA pairs (``wafersage train sft``)."""

    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate (paper: 2e-4)")
    per_device_train_batch_size: int = Field(2, ge=1, description="sequences per device per step (paper: 2)")
    gradient_accumulation_steps: int = Field(4, ge=1, description="accumulated steps (paper: 4, batch 2 x 4)")
    max_length: int = Field(2048, ge=64, description="tokens per sequence, image tokens included (paper: 2048)")
    completion_only_loss: bool = Field(True, description="loss on the answer tokens only, not the prompt")

    def to_trl(self, output_dir: Path, use_cpu: bool, bf16: bool, max_steps: int | None = None):
        from trl import SFTConfig

        return SFTConfig(max_length=self.max_length, completion_only_loss=self.completion_only_loss,
                         **self.common_trl_kwargs(output_dir, use_cpu, bf16, max_steps))


class CurriculumSettings(BaseModel):
    """Order of the GSPO prompts: stages of difficulty, each alternating review and learning blocks."""

    model_config = ConfigDict(extra="forbid")
    stages: list[list[Difficulty]] = Field(
        default_factory=lambda: [["easy"], ["medium"], ["hard"]],
        description="difficulties per stage, in training order; every difficulty at most once")
    block_size: int = Field(4, ge=1, description="prompts per block; blocks alternate review, learning, review, …")
    review: bool = Field(True, description="interleave the review stream (items seen in SFT); off: learning only")
    shuffle_within_stage: bool = Field(True, description="shuffle each stream inside a stage (seeded)")

    @model_validator(mode="after")
    def _check_stages(self) -> "CurriculumSettings":
        flat = [d for stage in self.stages for d in stage]
        if not self.stages or any(not stage for stage in self.stages):
            raise ValueError(f"curriculum.stages needs at least one non-empty stage, e.g. {[[d] for d in DIFFICULTIES]}")
        repeated = sorted({d for d in flat if flat.count(d) > 1})
        if repeated:
            raise ValueError(f"curriculum.stages lists {repeated} more than once; each difficulty belongs to one stage")
        return self


class RewardSettings(BaseModel):
    """The GSPO reward: the rule score of the <SOLUTION> against the item's rubric, times a format bonus."""

    model_config = ConfigDict(extra="forbid")
    format_bonus: float = Field(
        0.1, ge=0, le=1, description="reward = content x (1 + format_bonus x well_formed): the format term scales "
                                     "the content score, so a well-formed empty answer still earns 0")
    missing_solution: Literal["score_all", "zero"] = Field(
        "score_all", description="no <SOLUTION> tags: score the whole completion (score_all) or give 0 (zero)")
    calibration: Path | None = Field(
        None, description="calibration.json from 'wafersage calibrate'; its constants replace the paper's")


class GSPOSettings(CommonSettings):
    """GSPO (or GRPO) with TRL's GRPOTrainer on rubric rewards (``wafersage train gspo``)."""

    learning_rate: float = Field(5e-5, gt=0, description="peak learning rate (paper: 5e-5)")
    per_device_train_batch_size: int = Field(8, ge=1, description="completions per device per forward pass")
    gradient_accumulation_steps: int = Field(8, ge=1, description="forward passes per optimiser step")
    steps_per_generation: int | None = Field(
        None, ge=1, description="forward passes served by one generation round (default: gradient_accumulation_steps)")
    num_generations: int = Field(32, ge=2, description="completions per prompt, the group size (paper: 32)")
    max_completion_length: int = Field(512, ge=1, description="new tokens per completion")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the rollouts")
    generation_kwargs: dict[str, Any] | None = Field(
        None, description="extra generation settings for the rollouts (transformers GenerationConfig or vLLM "
                          "SamplingParams fields, e.g. repetition_penalty, sequence_bias)")
    importance_sampling_level: Literal["sequence", "token"] = Field(
        "sequence", description="sequence: GSPO (one length-normalised ratio per completion); token: GRPO")
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = Field(
        "grpo", description="loss normalisation; TRL's GSPO recipe uses grpo")
    beta: float = Field(0.0, ge=0, description="KL coefficient against the reference model (0: no reference)")
    epsilon: float = Field(3e-4, gt=0, description="lower clip range of the importance ratio")
    epsilon_high: float = Field(4e-4, gt=0, description="upper clip range of the importance ratio")
    use_vllm: bool = Field(False, description="generate rollouts with vLLM (needs a GPU and the vllm extra)")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate", description="colocate: vLLM inside the training process; server: a 'trl vllm-serve' process")
    vllm_server_base_url: str | None = Field(None, description="server mode: URL of 'trl vllm-serve'")
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="colocate mode: GPU share for vLLM")
    curriculum: CurriculumSettings = Field(default_factory=CurriculumSettings, description="prompt order")
    reward: RewardSettings = Field(default_factory=RewardSettings, description="reward settings")

    @model_validator(mode="after")
    def _check_combinations(self) -> "GSPOSettings":
        generation_batch = self.per_device_train_batch_size * (self.steps_per_generation
                                                               or self.gradient_accumulation_steps)
        if generation_batch % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size x steps_per_generation = {generation_batch} completions per "
                f"generation round is not a multiple of num_generations = {self.num_generations}; make it one "
                "(e.g. raise gradient_accumulation_steps)")
        if self.epsilon_high < self.epsilon:
            raise ValueError(f"epsilon_high ({self.epsilon_high}) is below epsilon ({self.epsilon})")
        if self.importance_sampling_level == "sequence" and self.epsilon > 0.01:
            raise ValueError(
                f"importance_sampling_level 'sequence' (GSPO) with epsilon {self.epsilon}: sequence-level ratios "
                "need a clip range near 3e-4 / 4e-4 (TRL's GSPO recipe); use those or importance_sampling_level token")
        if self.importance_sampling_level == "token" and self.epsilon < 0.01:
            raise ValueError(
                f"importance_sampling_level 'token' (GRPO) with epsilon {self.epsilon}: token-level ratios use a "
                "clip range near 0.2 (epsilon 0.2, epsilon_high 0.28); set those or importance_sampling_level sequence")
        if self.use_vllm and self.vllm_mode == "server" and not self.vllm_server_base_url:
            raise ValueError("vllm_mode 'server' needs vllm_server_base_url (the URL of 'trl vllm-serve')")
        return self

    def to_trl(self, output_dir: Path, use_cpu: bool, bf16: bool, max_steps: int | None = None):
        from trl import GRPOConfig

        vllm: dict[str, Any] = {}
        if self.use_vllm:
            vllm = dict(use_vllm=True, vllm_mode=self.vllm_mode,
                        vllm_gpu_memory_utilization=self.vllm_gpu_memory_utilization)
            if self.vllm_server_base_url:
                vllm["vllm_server_base_url"] = self.vllm_server_base_url
        return GRPOConfig(
            num_generations=self.num_generations, max_completion_length=self.max_completion_length,
            steps_per_generation=self.steps_per_generation, temperature=self.temperature,
            generation_kwargs=self.generation_kwargs,
            importance_sampling_level=self.importance_sampling_level, loss_type=self.loss_type, beta=self.beta,
            epsilon=self.epsilon, epsilon_high=self.epsilon_high, shuffle_dataset=False,  # keep the curriculum
            **vllm, **self.common_trl_kwargs(output_dir, use_cpu, bf16, max_steps),
        )


def load_settings(path: str | Path | None, cls: type[S], **overrides: Any) -> S:
    """Read a settings YAML (or the defaults when ``path`` is None), apply non-None overrides, validate."""
    settings = load_validated_yaml(cls, path, TrainConfigError, f"training config ({cls.__name__})",
                                   "learning_rate, lora, …", **overrides)
    if path is not None:  # relative paths in a config file are relative to the file, like the synth configs
        base = Path(path).resolve().parent
        if settings.deepspeed is not None and not settings.deepspeed.is_absolute():
            settings.deepspeed = base / settings.deepspeed
        if isinstance(settings, GSPOSettings) and settings.reward.calibration is not None \
                and not settings.reward.calibration.is_absolute():
            settings.reward.calibration = base / settings.reward.calibration
    return settings
