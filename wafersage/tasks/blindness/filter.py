"""The vision-indispensable filter: items a cross-fitted blind adversary gets right with high confidence.

An item is *blind-answerable* when one of the fact-level adversaries of :mod:`.adversary`, fitted on other wafers,
predicts its asked value and gives that prediction a probability of at least ``threshold``. What happens to such
items is :class:`BlindFilterOptions`' ``mode``: ``drop`` (the default) removes them from the wafers of the listed
``splits`` (default val and test, the held-out splits a model is measured on; train stays as written, so a model
can still learn the common cases), ``flag`` keeps every item and lists the blind-answerable ones in the manifest,
``off`` runs no adversary at all.

On a dropping split synthesis writes spare items beyond the wafer's drawn count (:attr:`~.answers.ItemRecord.spare`),
and the filter keeps, in written order, the items no adversary answers until the wafer has its drawn count
(each question category within its range). Where too few remain, the least confidently answered of the dropped
items come back, first to fill each category's minimum and then the wafer's floor (:data:`MIN_ITEMS`,
:data:`MIN_ITEMS_NORMAL` for a normal wafer); the manifest counts them as ``kept_back``.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from .adversary import Guesses, confident_hit, cross_fitted_guesses
from .answers import ItemRecord

#: items a wafer keeps at least after the filter (a normal wafer: MIN_ITEMS_NORMAL, it has fewer facts to ask)
MIN_ITEMS = 8
MIN_ITEMS_NORMAL = 7


class BlindFilterOptions(BaseModel):
    """How synthesis treats items a blind adversary answers (see :mod:`wafersage.tasks.blindness.filter`)."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["drop", "flag", "off"] = Field(
        "drop", description="'drop': remove blind-answerable items from the wafers of 'splits' (spares replace "
                            "them); 'flag': keep every item and list the blind-answerable ones in the manifest; "
                            "'off': no blind adversaries at build time.")
    splits: list[Literal["train", "val", "test"]] = Field(
        default_factory=lambda: ["val", "test"],
        description="Splits whose blind-answerable items are dropped (mode 'drop'); the others are kept as written.")
    threshold: float = Field(
        0.5, gt=0.0, le=1.0, description="An adversary's probability for its (right) prediction from which the "
                                         "item counts as blind-answerable.")
    folds: int = Field(5, ge=2, le=20, description="Folds by wafer for cross-fitting the adversaries.")

    def writes_spares(self, split: str) -> bool:
        """Whether a wafer of ``split`` gets spare items (its blind-answerable items may be dropped)."""
        return self.mode == "drop" and split in self.splits


class FilterResult(BaseModel):
    """Which records stay, and the manifest's account of the filter."""

    keep: list[bool]
    report: dict


def _select(rows: list[int], records: Sequence[ItemRecord], hits: list, ranges: dict[str, tuple[int, int]]) -> set[int]:
    """The rows one wafer keeps (see the module docstring)."""
    target = sum(not records[i].spare for i in rows)
    floor = MIN_ITEMS_NORMAL if records[rows[0]].normal else MIN_ITEMS
    kept: set[int] = set()
    per_category: Counter = Counter()

    def take(i: int) -> None:
        kept.add(i)
        per_category[records[i].category] += 1

    def room_for(i: int) -> bool:
        """Taking row i leaves room, within the target, for every category's unmet minimum."""
        category = records[i].category
        if per_category[category] >= ranges[category][1]:
            return False
        unmet = sum(max(0, lo - per_category[c] - (c == category)) for c, (lo, _) in ranges.items())
        return len(kept) + 1 + unmet <= target

    for i in rows:
        if hits[i] is None and room_for(i):
            take(i)
    answered = sorted((i for i in rows if hits[i] is not None), key=lambda i: (hits[i][1], i))
    for category, (lo, _) in ranges.items():
        for i in answered:
            if per_category[category] >= lo:
                break
            if records[i].category == category and i not in kept:
                take(i)
    for i in answered:
        if len(kept) >= floor:
            break
        if i not in kept and per_category[records[i].category] < ranges[records[i].category][1]:
            take(i)
    return kept


def blind_filter(records: Sequence[ItemRecord], options: BlindFilterOptions, ranges: dict[str, tuple[int, int]],
                 seed: int) -> FilterResult:
    """Run the cross-fitted adversaries over ``records`` (every wafer's items, all splits, in file order) and
    decide which stay. ``ranges``: items per question category a wafer may carry (min, max)."""
    if options.mode == "off" or not records:
        return FilterResult(keep=[True] * len(records), report={"mode": options.mode})
    guesses: list[Guesses] = cross_fitted_guesses(records, options.folds, seed)
    hits = [confident_hit(r, g, options.threshold) for r, g in zip(records, guesses)]
    keep = [True] * len(records)
    if options.mode == "drop":
        by_wafer: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(records):
            if r.split in options.splits:
                by_wafer[r.wafer_id].append(i)
        for rows in by_wafer.values():
            kept = _select(rows, records, hits, ranges)
            for i in rows:
                keep[i] = i in kept
    answerable = [i for i, h in enumerate(hits) if h is not None]
    dropped = [i for i in answerable if not keep[i]]
    report = {
        "mode": options.mode, "splits": list(options.splits), "threshold": options.threshold,
        "folds": options.folds,
        "blind_answerable_per_split": dict(sorted(Counter(records[i].split for i in answerable).items())),
        "blind_answerable_per_adversary": dict(sorted(Counter(hits[i][0] for i in answerable).items())),
        "dropped": len(dropped),
        "dropped_per_category": dict(sorted(Counter(records[i].category for i in dropped).items())),
        "dropped_per_template": dict(sorted(Counter(records[i].template for i in dropped).items())),
        "kept_back": sum(keep[i] for i in answerable if records[i].split in options.splits)
        if options.mode == "drop" else 0,
        "spares_unused": sum(not keep[i] and hits[i] is None for i in range(len(records))),
    }
    if options.mode == "flag":
        report["flagged"] = sorted(records[i].item_id for i in answerable)
    return FilterResult(keep=keep, report=report)
