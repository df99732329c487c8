"""Training rows from a benchmark's train split: SFT pairs and GSPO prompts.

The train split's wafers are partitioned (per wafer, seeded, stable) into an SFT share and an RL share: SFT trains
on the first, GSPO learns on the second (the learning stream) and revisits the first (the review stream). Rows are
TRL's conversational format with the wafer image in an ``image`` column:

* SFT: ``prompt`` (system + user question), ``completion`` (the assistant turn), ``image``.
* GSPO: ``prompt``, ``image`` and ``item_id`` (the reward looks the item and its rubric up by id), ``difficulty``,
  ``stream`` (review or learning).

The SFT target wraps the reference answer in the paper's format,
``<REASONING>{rubric summary}</REASONING><SOLUTION>{answer}</SOLUTION>``: the rubric summary is the wafer's
ground-truth description (pattern, zone, density, likely equipment), the reasoning a model should learn to give.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..tasks.bench.folder import Benchmark, BenchmarkError
from ..tasks.bench.schema import Rubric, VQAItem

TRAIN_SPLIT = "train"


@dataclass(frozen=True)
class TrainPartition:
    """The train split's items in the SFT share (seen in SFT) and the RL share (new to GSPO)."""

    sft: list[VQAItem]
    rl: list[VQAItem]


def load_training_bench(bench_dir: str | Path) -> Benchmark:
    """Load a benchmark and check it has train items to learn from."""
    bench = Benchmark.load(bench_dir)
    if not bench.items(TRAIN_SPLIT):
        raise BenchmarkError(
            f"{bench.root}: items.jsonl has no items in the '{TRAIN_SPLIT}' split, nothing to train on; rebuild the "
            "benchmark with a config whose splits.train is above 0 (wafersage synth --config …)")
    return bench


def _wafer_rank(wafer_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{wafer_id}".encode()).hexdigest()


def partition_train(bench: Benchmark, sft_share: float, seed: int) -> TrainPartition:
    """Split the train items by wafer: ``round(sft_share × wafers)`` wafers (at least one) go to SFT."""
    items = bench.items(TRAIN_SPLIT)
    wafers = sorted({it.wafer_id for it in items}, key=lambda w: _wafer_rank(w, seed))
    n_sft = max(1, round(sft_share * len(wafers)))
    sft_wafers = set(wafers[:n_sft])
    return TrainPartition(sft=[it for it in items if it.wafer_id in sft_wafers],
                          rl=[it for it in items if it.wafer_id not in sft_wafers])


def format_target(reasoning: str, answer: str) -> str:
    """The paper's output format."""
    return f"<REASONING>{reasoning.strip()}</REASONING>\n<SOLUTION>{answer.strip()}</SOLUTION>"


def sft_target(item: VQAItem, rubric: Rubric) -> str:
    return format_target(rubric.summary, item.answer)


def prompt_messages(item: VQAItem, system_prompt: str) -> list[dict[str, str]]:
    """System and user turns; TRL inserts the image placeholder before the user text."""
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": item.question}]


def _rubric(bench: Benchmark, item: VQAItem) -> Rubric:
    try:
        return bench.rubrics[item.wafer_id]
    except KeyError:
        raise BenchmarkError(f"{bench.root}/items.jsonl: item {item.id} names wafer {item.wafer_id!r}, which has no "
                             "rubric in rubrics.jsonl; rebuild the benchmark") from None


def sft_rows(bench: Benchmark, items: Sequence[VQAItem], system_prompt: str) -> list[dict[str, Any]]:
    return [{
        "prompt": prompt_messages(it, system_prompt),
        "completion": [{"role": "assistant", "content": sft_target(it, _rubric(bench, it))}],
        "image": str(bench.image_path(it)),
        "item_id": it.id,
    } for it in items]


def gspo_rows(bench: Benchmark, ordered: Sequence[tuple[VQAItem, str]], system_prompt: str) -> list[dict[str, Any]]:
    """Prompt rows for ``(item, stream)`` pairs, in the given (curriculum) order."""
    return [{
        "prompt": prompt_messages(it, system_prompt),
        "image": str(bench.image_path(it)),
        "item_id": it.id,
        "difficulty": it.difficulty,
        "stream": stream,
    } for it, stream in ordered]


def to_dataset(rows: list[dict[str, Any]]):
    """A ``datasets.Dataset`` whose ``image`` column decodes the PNG paths to PIL images."""
    from datasets import Dataset, Image

    missing = [r["image"] for r in rows if not Path(r["image"]).is_file()]
    if missing:
        raise BenchmarkError(f"image {missing[0]} (and {len(missing) - 1} more) is missing; rebuild the benchmark")
    return Dataset.from_list(rows).cast_column("image", Image())
