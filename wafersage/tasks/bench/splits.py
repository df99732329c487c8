"""Train / val / test splits by wafer: lot-disjoint where lots exist, never an exact-duplicate grid in two splits.

Maps are first joined into groups that must share a split: the same lot, the same wafer id, or the same grid
(sha256 of shape + bytes). Groups are then dealt class after class (a group's class is its most common label
set), in a seeded random order within each class, each to the split furthest below its target share of everything dealt so far — so every split
gets its share of every class, a class of one or two wafers lands wherever the running totals need it (not always
in train), and the result is identical for the same maps and seed.
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from typing import NamedTuple, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .schema import SPLITS
from ..maps.wafer import WaferMap


class SplitFractions(BaseModel):
    """Share of wafers in each split; the three must sum to 1."""

    model_config = ConfigDict(extra="forbid")
    train: float = Field(0.7, ge=0, le=1, description="Share of wafers for training.")
    val: float = Field(0.1, ge=0, le=1, description="Share of wafers for validation.")
    test: float = Field(0.2, ge=0, le=1, description="Share of wafers for the test split (what `eval` runs).")

    @model_validator(mode="after")
    def _sum_to_one(self) -> "SplitFractions":
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions train+val+test sum to {total:g}; they must sum to 1")
        return self

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, s) for s in SPLITS])


def grid_hash(grid: np.ndarray) -> str:
    """Identity of a grid's content: sha256 over its shape and bytes."""
    h = hashlib.sha256(repr(tuple(grid.shape)).encode())
    h.update(np.ascontiguousarray(grid, dtype=np.uint8).tobytes())
    return h.hexdigest()


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class SplitKey(NamedTuple):
    """What decides a map's split: its id, its grid's hash, its lot (``source:lot``; None without one) and its label
    set. A build's workers compute these, so the splits are dealt over every map at once without holding the grids."""

    id: str
    grid: str
    lot: str | None
    label: str


def split_key(wafer: WaferMap) -> SplitKey:
    return SplitKey(wafer.id, grid_hash(wafer.grid), f"{wafer.source}:{wafer.lot}" if wafer.lot else None,
                    wafer.label_text)


def _groups(keys: Sequence[SplitKey]) -> list[list[int]]:
    """Indices of maps that must share a split, each group in input order, groups by their first member."""
    uf = _UnionFind(len(keys))
    first_seen: dict[tuple[str, str], int] = {}
    for i, key in enumerate(keys):
        links = [("id", key.id), ("grid", key.grid)]
        if key.lot:
            links.append(("lot", key.lot))
        for link in links:
            if link in first_seen:
                uf.union(first_seen[link], i)
            else:
                first_seen[link] = i
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(keys)):
        members[uf.find(i)].append(i)
    return [members[root] for root in sorted(members)]


def assign_splits(wafers: Sequence[WaferMap], fractions: SplitFractions, seed: int) -> list[str]:
    """The split name of each map, aligned with ``wafers``."""
    return assign_split_keys([split_key(w) for w in wafers], fractions, seed)


def assign_split_keys(keys: Sequence[SplitKey], fractions: SplitFractions, seed: int) -> list[str]:
    """The split name of each map given by its :class:`SplitKey`, aligned with ``keys``."""
    rng = np.random.default_rng(seed)
    target = fractions.as_array()
    groups = _groups(keys)
    by_class: dict[str, list[list[int]]] = defaultdict(list)
    for group in groups:
        label = Counter(keys[i].label for i in group).most_common(1)[0][0]
        by_class[label].append(group)
    out = [""] * len(keys)
    filled = np.zeros(len(SPLITS))
    for label in sorted(by_class):
        class_groups = by_class[label]
        for pos in rng.permutation(len(class_groups)):
            group = class_groups[pos]
            deficit = target * (filled.sum() + len(group)) - filled
            choice = int(np.argmax(np.where(target > 0, deficit, -np.inf)))
            filled[choice] += len(group)
            for i in group:
                out[i] = SPLITS[choice]
    return out
