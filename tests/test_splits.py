"""Splits: lot-disjoint, duplicate grids together, fractions respected per class, deterministic for a seed."""
from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict

import numpy as np
import pytest
from pydantic import ValidationError

from wafersage.tasks.bench.splits import SplitFractions, assign_splits, grid_hash
from wafersage.tasks.maps.wafer import WaferMap

LABELS = ["Center", "Scratch", "Donut", "none"]


def _random_wafer(rng: np.random.Generator, i: int, *, lot: str | None = None, label: str | None = None) -> WaferMap:
    grid = np.ones((12, 12), dtype=np.uint8)
    grid[rng.random((12, 12)) < 0.2] = 2
    grid[0, 0] = 0
    return WaferMap(grid=grid, id=f"w{i:05d}", labels=(label or LABELS[i % len(LABELS)],), lot=lot)


def test_fractions_must_sum_to_one():
    with pytest.raises(ValidationError, match="sum to 1.1"):
        SplitFractions(train=0.8, val=0.1, test=0.2)


def test_grid_hash_depends_on_shape_and_content():
    a = np.ones((4, 6), dtype=np.uint8)
    assert grid_hash(a) == grid_hash(a.copy())
    assert grid_hash(a) != grid_hash(a.reshape(6, 4))
    b = a.copy()
    b[1, 1] = 2
    assert grid_hash(a) != grid_hash(b)


def test_shares_per_class_follow_fractions_and_seed_decides():
    rng = np.random.default_rng(0)
    wafers = [_random_wafer(rng, i) for i in range(1000)]
    fractions = SplitFractions(train=0.6, val=0.2, test=0.2)
    splits = assign_splits(wafers, fractions, seed=3)
    assert splits == assign_splits(wafers, fractions, seed=3)
    assert splits != assign_splits(wafers, fractions, seed=4)
    for label in LABELS:
        counts = Counter(s for w, s in zip(wafers, splits) if w.labels[0] == label)
        assert counts["train"] == pytest.approx(150, abs=2)
        assert counts["val"] == pytest.approx(50, abs=2)
        assert counts["test"] == pytest.approx(50, abs=2)


def test_lots_never_span_two_splits():
    rng = np.random.default_rng(1)
    wafers = [_random_wafer(rng, i, lot=f"lot{i // 25}", label=LABELS[(i // 3) % 4]) for i in range(500)]
    splits = assign_splits(wafers, SplitFractions(), seed=0)
    per_lot = defaultdict(set)
    for wafer, split in zip(wafers, splits):
        per_lot[wafer.lot].add(split)
    assert all(len(s) == 1 for s in per_lot.values())
    assert set(splits) == {"train", "val", "test"}


def test_duplicate_grids_and_repeated_ids_share_a_split():
    rng = np.random.default_rng(2)
    wafers = [_random_wafer(rng, i) for i in range(300)]
    dupes = [WaferMap(grid=wafers[i].grid, id=f"copy{i}", labels=wafers[i].labels) for i in range(0, 300, 7)]
    same_id = [WaferMap(grid=_random_wafer(rng, 0).grid, id=wafers[5].id, labels=("Donut",))]
    everything = wafers + dupes + same_id
    splits = assign_splits(everything, SplitFractions(train=0.4, val=0.3, test=0.3), seed=9)
    by_hash = defaultdict(set)
    by_id = defaultdict(set)
    for wafer, split in zip(everything, splits):
        by_hash[grid_hash(wafer.grid)].add(split)
        by_id[wafer.id].add(split)
    assert all(len(s) == 1 for s in by_hash.values())
    assert all(len(s) == 1 for s in by_id.values())


def test_zero_fraction_split_stays_empty():
    rng = np.random.default_rng(3)
    wafers = [_random_wafer(rng, i) for i in range(40)]
    splits = assign_splits(wafers, SplitFractions(train=0.0, val=0.0, test=1.0), seed=0)
    assert set(splits) == {"test"}


def test_classes_of_one_wafer_spread_over_splits():
    singles = ["Center", "Donut", "Edge-Loc", "Edge-Ring", "Loc", "Near-full", "Random", "Scratch", "none"]
    classes = [(s,) for s in singles] + [("Center", s) for s in ("Donut", "Edge-Loc", "Edge-Ring", "Loc", "Scratch")]
    rng = np.random.default_rng(4)
    wafers = [dataclasses.replace(_random_wafer(rng, i), labels=labels) for i, labels in enumerate(classes)]
    assert len({w.label_text for w in wafers}) == len(wafers) == 14
    splits = Counter(assign_splits(wafers, SplitFractions(train=0.5, val=0.0, test=0.5), seed=1))
    assert splits == {"train": 7, "test": 7}
