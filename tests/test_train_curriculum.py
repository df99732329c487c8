"""Curriculum order: stages easy -> medium -> hard, alternating review and learning blocks, nothing lost."""
from __future__ import annotations

import itertools

from wafersage.tasks.bench.schema import VQAItem
from wafersage.training.config import CurriculumSettings
from wafersage.training.curriculum import LEARNING, REVIEW, build_curriculum, interleave, ordered_entries

RANK = {"easy": 0, "medium": 1, "hard": 2}


def _items(prefix: str, counts: dict[str, int]) -> list[VQAItem]:
    out = []
    for difficulty, n in counts.items():
        for i in range(n):
            out.append(VQAItem(id=f"{prefix}-{difficulty}-{i}", wafer_id=f"{prefix}{i}", image="images/x.png",
                               question="Where?", answer="Center.", category="spatial", dimension="spatial",
                               difficulty=difficulty, labels=["Center"], qa_index=i, split="train"))
    return out


def _runs(streams: list[str]) -> list[tuple[str, int]]:
    return [(name, len(list(group))) for name, group in itertools.groupby(streams)]


def test_stages_rise_in_difficulty_and_alternate_streams():
    review = _items("r", {"hard": 3, "easy": 5, "medium": 4})
    learning = _items("l", {"medium": 6, "easy": 7, "hard": 2})
    stages = build_curriculum(review, learning, CurriculumSettings(block_size=2), seed=1)
    entries = ordered_entries(stages)
    ranks = [RANK[it.difficulty] for it, _ in entries]
    assert ranks == sorted(ranks)  # easy, then medium, then hard
    assert sorted(it.id for it, _ in entries) == sorted(it.id for it in review + learning)  # each item once
    assert [s.difficulties for s in stages] == [("easy",), ("medium",), ("hard",)]
    easy = [stream for it, stream in stages[0].entries]
    # 5 review, 7 learning in blocks of 2: R2 L2 R2 L2 R1 L2 L1 -> runs alternate until review runs out
    assert _runs(easy) == [(REVIEW, 2), (LEARNING, 2), (REVIEW, 2), (LEARNING, 2), (REVIEW, 1), (LEARNING, 3)]
    for stage in stages:  # every entry's stream matches where it came from
        assert all(it.id.startswith("r" if s == REVIEW else "l") for it, s in stage.entries)


def test_interleave_keeps_order_inside_blocks():
    review, learning = _items("r", {"easy": 3}), _items("l", {"easy": 1})
    assert [it.id for it, _ in interleave(review, learning, 2)] == ["r-easy-0", "r-easy-1", "l-easy-0", "r-easy-2"]


def test_configurable_stages_review_off_and_seeded_shuffle():
    review = _items("r", {"easy": 4, "medium": 4, "hard": 4})
    learning = _items("l", {"easy": 4, "medium": 4, "hard": 4})
    two = build_curriculum(review, learning, CurriculumSettings(stages=[["easy", "medium"], ["hard"]]), seed=0)
    assert [len(s.entries) for s in two] == [16, 8]
    only_hard = build_curriculum(review, learning, CurriculumSettings(stages=[["hard"]], review=False), seed=0)
    assert {s for _, s in ordered_entries(only_hard)} == {LEARNING} and len(ordered_entries(only_hard)) == 4
    settings = CurriculumSettings(block_size=3)
    ids = lambda seed: [it.id for it, _ in ordered_entries(build_curriculum(review, learning, settings, seed))]  # noqa: E731
    assert ids(5) == ids(5) and ids(5) != ids(6)
    plain = CurriculumSettings(block_size=3, shuffle_within_stage=False)
    first = [it.id for it, _ in ordered_entries(build_curriculum(review, learning, plain, seed=0))][:3]
    assert first == ["r-easy-0", "r-easy-1", "r-easy-2"]
