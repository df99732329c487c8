"""Consistency (yes/no) questions: premises that are true or false for a map, worded so the question's words alone
do not give the answer away.

Premises come from several fact kinds (:data:`PREMISE_KINDS`): the failing share, a radial zone's failure rate,
a clock position, a quadrant, symmetry (all around vs one side), texture (the share of isolated failing dies) and
the number of separate failing groups. A wafer's items draw their kinds first, among those its map decides
clearly, and their truth independently (two items: one true, one false; one item: a fair coin), so every kind is
true half the time; a wafer gets at most one item per kind, so the failing share is at most half of them.

Each kind words true and false premises alike. Numeric kinds use a threshold at the wafer's own value times or
divided by :data:`SHARE_FACTOR`, drawn independently of the truth, with "more than" or "fewer than" chosen to make
the premise hold or fail: each comparator is true half the time and each threshold value as often true as false.
A zone is asked "above" or "below the wafer's average" with the same construction; the symmetry premise flips its
phrasing with the truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Protocol

import numpy as np

from ..geometry.measure import Geometry
from ..bench.schema import Rubric
from .vocab import NUMBER_WORDS, ZONE_TERMS

SHARE_FACTOR = 2.0  # a numeric premise's threshold is the wafer's own value times or divided by this
ZONE_CLEAR = 1.3  # a zone's failure rate is clearly above (below) the wafer's at this factor (its inverse)
REGION_MIN_AREA = 0.005  # a failing region counts towards the region-count premise from this share of the dies


class PremiseContext(Protocol):
    """What a premise needs of a wafer (``vqa._Context``)."""

    rubric: Rubric
    geom: Geometry
    clocks: tuple[int, ...]
    avoid_clocks: tuple[int, ...]
    spatial: str
    morphology: str

    def targets(self, *kinds: str) -> list[str]: ...


@dataclass(frozen=True)
class Premise:
    question: str
    truth: bool
    dimension: Literal["spatial", "morphology"]
    detail: str  # a sentence stating the fact that decides the premise ("" when the facts sentence does)
    targets: list[str]


PremiseBuilder = Callable[[PremiseContext, bool, np.random.Generator], Premise]


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _percent(value: float) -> str:
    return f"{float(f'{value:.2g}'):g}"


def _threshold(value: float, below: bool, floor: float) -> float:
    """A threshold clearly above (``below``: the value lies below it) or clearly under ``value``."""
    return max(value * SHARE_FACTOR, floor) if below else value / SHARE_FACTOR


def _comparator(truth: bool, below: bool) -> str:
    """"more" or "fewer" so that the premise holds exactly when ``truth`` (the value is below the threshold when
    ``below``); drawn with ``below`` independent of the truth, each word is true half the time."""
    return "more" if truth != below else "fewer"


def _share_premise(ctx: PremiseContext, truth: bool, rng: np.random.Generator) -> Premise:
    share = ctx.geom.fail_ratio * 100
    below = bool(rng.random() < 0.5) or share == 0
    threshold = _threshold(share, below, 1.0)
    return Premise(f"Do {_comparator(truth, below)} than {_percent(threshold)}% of the dies on this wafer fail?",
                    truth, "morphology", f"About {_percent(share)}% of the dies fail.", ctx.targets("density"))


def _isolated_share(ctx: PremiseContext) -> float:
    """Percent of the failing dies outside groups of five or more (the texture: 0 for fully clustered)."""
    return (1.0 - ctx.geom.clustered_fraction) * 100


def _texture_premise(ctx: PremiseContext, truth: bool, rng: np.random.Generator) -> Premise:
    isolated = _isolated_share(ctx)
    below = bool(rng.random() < 0.5) or isolated == 0
    threshold = _threshold(isolated, below, 1.0)
    return Premise(f"Are {_comparator(truth, below)} than {_percent(threshold)}% of the failing dies isolated, "
                    "outside groups of five or more touching dies?", truth, "morphology",
                    f"About {_percent(isolated)}% of the failing dies lie outside such groups.", ctx.targets("structure"))


def _region_count(ctx: PremiseContext) -> int:
    return sum(r.area_fraction >= REGION_MIN_AREA for r in ctx.geom.regions)


def _region_premise(ctx: PremiseContext, truth: bool, rng: np.random.Generator) -> Premise:
    count = _region_count(ctx)
    below = bool(rng.random() < 0.5) or count < 2
    threshold = 2 * count if below else count // 2
    return Premise(f"Do the failing dies form {_comparator(truth, below)} than {threshold} separate groups?", truth,
                    "morphology", f"They form {count} separate group{'s' if count > 1 else ''}.",
                    ctx.targets("structure"))


def _zone_status(ctx: PremiseContext) -> dict[bool, list[str]]:
    """Zones whose failure rate is clearly above (True) or below (False) the wafer's."""
    fr, rates = ctx.geom.fail_ratio, ctx.geom.zone_fail_ratio
    return {True: [z for z in ZONE_TERMS if rates[z] >= ZONE_CLEAR * fr],
            False: [z for z in ZONE_TERMS if rates[z] * ZONE_CLEAR <= fr]}


_ZONE_WORDS = {"center": "inner", "middle": "middle", "edge": "outer"}


def _zone_premise(ctx: PremiseContext, truth: bool, rng: np.random.Generator) -> Premise:
    above = bool(rng.random() < 0.5)
    zone = _pick(rng, _zone_status(ctx)[above])
    side = "above" if above == truth else "below"
    return Premise(f"Is the failure rate in the {_ZONE_WORDS[zone]} radial zone {side} the wafer's average?", truth,
                    "spatial", "", ctx.targets("zone", "distribution"))


def _clock_premise(ctx: PremiseContext, truth: bool, rng: np.random.Generator) -> Premise:
    k = _pick(rng, ctx.clocks if truth else ctx.avoid_clocks)
    question = _pick(rng, (f"Are most failing dies located around the {k} o'clock position?",
                           f"Is the failure concentrated towards {NUMBER_WORDS[k % 12]} o'clock?"))
    return Premise(question, truth, "spatial", "", ctx.targets("clock"))


def _quadrant_status(ctx: PremiseContext) -> dict[bool, list[str]]:
    shares = ctx.geom.quadrant_share
    return {True: [q for q, v in shares.items() if v >= 0.5], False: [q for q, v in shares.items() if v <= 0.1]}


def _quadrant_premise(ctx: PremiseContext, truth: bool, rng: np.random.Generator) -> Premise:
    quadrant = _pick(rng, _quadrant_status(ctx)[truth]).replace("-", " ")
    return Premise(f"Is the {quadrant} quadrant the most affected part of the wafer?", truth, "spatial", "",
                    ctx.targets("clock"))


def _all_around(ctx: PremiseContext) -> bool | None:
    """True for failures all around the wafer, False for one-sided ones, None when mixed or unclear."""
    dists = set(ctx.rubric.spatial.distribution.split(", "))
    if dists and dists <= {"radially symmetric", "wafer-wide"}:
        return True
    if dists and dists <= {"localized", "linear"} and ctx.clocks:
        return False
    return None


def _symmetry_premise(ctx: PremiseContext, truth: bool, rng: np.random.Generator) -> Premise:
    question = ("Do the failures occur all around the wafer rather than on one side only?"
                if _all_around(ctx) == truth else "Are the failures confined to one side of the wafer?")
    return Premise(question, truth, "spatial", "", ctx.targets("distribution"))


#: premise kind -> (does the map decide it clearly, builder(ctx, truth, rng))
PREMISE_KINDS: dict[str, tuple[Callable[[PremiseContext], bool], PremiseBuilder]] = {
    "share": (lambda ctx: ctx.geom.fail_ratio * 100 * SHARE_FACTOR <= 95, _share_premise),
    "zone": (lambda ctx: all(_zone_status(ctx).values()), _zone_premise),
    "clock": (lambda ctx: bool(ctx.clocks and ctx.avoid_clocks), _clock_premise),
    "quadrant": (lambda ctx: bool(ctx.clocks) and all(_quadrant_status(ctx).values()), _quadrant_premise),
    "symmetry": (lambda ctx: _all_around(ctx) is not None, _symmetry_premise),
    "texture": (lambda ctx: ctx.geom.n_fail >= 5 and _isolated_share(ctx) * SHARE_FACTOR <= 95, _texture_premise),
    "regions": (lambda ctx: _region_count(ctx) >= 1, _region_premise),
}


def consistency_items(ctx: PremiseContext, count: int, rng: np.random.Generator) -> list[tuple[Premise, str]]:
    """``count`` premises of distinct kinds, drawn independently of their truth (see the module docstring)."""
    kinds = [kind for kind, (decided, _) in PREMISE_KINDS.items() if decided(ctx)] or ["share"]
    truths = [True, False] if count == 2 else [bool(rng.random() < 0.5)]
    rng.shuffle(truths)
    chosen = [kinds[i] for i in rng.permutation(len(kinds))[:count].tolist()]
    out = []
    for kind, truth in zip(chosen, truths):
        premise = PREMISE_KINDS[kind][1](ctx, truth, rng)
        facts = ctx.spatial if premise.dimension == "spatial" else ctx.morphology
        answer = ("Yes. " if premise.truth else "No. ") + (premise.detail + " " if premise.detail else "") + facts
        out.append((premise, answer))
    return out
