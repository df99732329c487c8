"""The GSPO curriculum: stages of rising difficulty, each alternating a review and a learning stream.

For every stage (default easy, then medium, then hard) the review stream (items of that difficulty seen in SFT)
and the learning stream (new items) are each shuffled (seeded) and then taken in alternating blocks of
``block_size``: review, learning, review, … When one stream runs out the other's remaining blocks follow. The
trainer reads the result in order (GRPOConfig ``shuffle_dataset`` is off).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from ..tasks.bench.schema import VQAItem
from .config import CurriculumSettings

REVIEW = "review"
LEARNING = "learning"


@dataclass(frozen=True)
class Stage:
    """One curriculum stage: its difficulties and its ordered ``(item, stream)`` pairs."""

    difficulties: tuple[str, ...]
    entries: tuple[tuple[VQAItem, str], ...]


def _blocks(items: list[VQAItem], size: int) -> list[list[VQAItem]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def interleave(review: list[VQAItem], learning: list[VQAItem], block_size: int) -> list[tuple[VQAItem, str]]:
    """Alternate blocks of the two streams, review first; leftovers of the longer stream follow in order."""
    out: list[tuple[VQAItem, str]] = []
    review_blocks, learning_blocks = _blocks(review, block_size), _blocks(learning, block_size)
    for i in range(max(len(review_blocks), len(learning_blocks))):
        for blocks, stream in ((review_blocks, REVIEW), (learning_blocks, LEARNING)):
            if i < len(blocks):
                out.extend((it, stream) for it in blocks[i])
    return out


def build_curriculum(review: Sequence[VQAItem], learning: Sequence[VQAItem], settings: CurriculumSettings,
                     seed: int = 0) -> list[Stage]:
    """The stages in training order; items whose difficulty no stage names are left out (listed nowhere)."""
    rng = random.Random(seed)
    stages = []
    for difficulties in settings.stages:
        wanted = set(difficulties)
        stage_review = [it for it in review if it.difficulty in wanted] if settings.review else []
        stage_learning = [it for it in learning if it.difficulty in wanted]
        if settings.shuffle_within_stage:
            rng.shuffle(stage_review)
            rng.shuffle(stage_learning)
        stages.append(Stage(tuple(difficulties), tuple(interleave(stage_review, stage_learning, settings.block_size))))
    return stages


def ordered_entries(stages: Sequence[Stage]) -> list[tuple[VQAItem, str]]:
    """All stages' entries, concatenated in order."""
    return [entry for stage in stages for entry in stage.entries]
