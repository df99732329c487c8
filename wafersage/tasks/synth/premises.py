"""Consistency (yes/no) questions: premises that are true or false for a map, worded so the question's words alone
do not give the answer away.

Premises come from several fact kinds (:data:`PREMISE_KINDS`): the failing share, a radial zone's failure rate,
a clock position, a quadrant, symmetry (all around vs one side), texture (the share of isolated failing dies) and
the number of separate failing groups. The question writer (:func:`wafersage.tasks.synth.vqa.write_items`) draws a
wafer's kinds among those its map decides clearly (:func:`decided_kinds`) and whose facts no other question of the
wafer asks (:data:`PREMISE_SLOTS`), and their truth independently (two items: one true, one false; one item: a fair
coin), so every kind is true half the time.

Each kind words true and false premises alike. A numeric kind states the build's one threshold for it, drawn from
the population of wafers (:mod:`wafersage.tasks.blindness.population`), and is asked only of wafers clearly away
from it; "more than" or "fewer than" is then chosen to make the premise hold or fail. A zone is asked "above" or
"below the wafer's average"; the symmetry premise flips its phrasing with the truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Protocol

import numpy as np

from ..geometry.measure import Geometry
from ..bench.schema import Rubric
from ..blindness.population import NUMERIC_KINDS, ZONES, PremiseThresholds, clearly_above, zone_sides
from .vocab import NUMBER_WORDS



class PremiseContext(Protocol):
    """What a premise needs of a wafer (``vqa._Context``)."""

    rubric: Rubric
    geom: Geometry
    clocks: tuple[int, ...]
    avoid_clocks: tuple[int, ...]
    spatial: str
    morphology: str
    thresholds: PremiseThresholds
    numeric: tuple[float, float, float]  # blindness.population.numeric_values of the map
    zone_choice: tuple[str, bool] | None  # set by decided_kinds: the zone a zone premise asks, and its side

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


def _side(ctx: PremiseContext, kind: str) -> bool | None:
    """Whether the map's value of numeric ``kind`` is clearly above (below: False) the build's threshold."""
    return clearly_above(kind, ctx.numeric[NUMERIC_KINDS.index(kind)], ctx.thresholds.of(kind))


def _comparator(ctx: PremiseContext, kind: str, truth: bool) -> str:
    """"more" or "fewer" so that the premise holds exactly when ``truth`` (compared strictly for the rare map
    that decides no kind clearly and is asked the share all the same)."""
    side = _side(ctx, kind)
    value = ctx.numeric[NUMERIC_KINDS.index(kind)]
    return "more" if truth == (side if side is not None else value > ctx.thresholds.of(kind)) else "fewer"


def _share_premise(ctx: PremiseContext, truth: bool, rng: np.random.Generator) -> Premise:
    return Premise(f"Do {_comparator(ctx, 'share', truth)} than {_percent(ctx.thresholds.share)}% of the dies on "
                   "this wafer fail?", truth, "morphology", f"About {_percent(ctx.numeric[0])}% of the dies fail.",
                   ctx.targets("density"))


def _texture_premise(ctx: PremiseContext, truth: bool, rng: np.random.Generator) -> Premise:
    return Premise(f"Are {_comparator(ctx, 'texture', truth)} than {_percent(ctx.thresholds.texture)}% of the "
                   "failing dies isolated, outside groups of five or more touching dies?", truth, "morphology",
                   f"About {_percent(ctx.numeric[1])}% of the failing dies lie outside such groups.",
                   ctx.targets("structure"))


def _region_premise(ctx: PremiseContext, truth: bool, rng: np.random.Generator) -> Premise:
    count = int(ctx.numeric[2])
    return Premise(f"Do the failing dies form {_comparator(ctx, 'regions', truth)} than {ctx.thresholds.regions:g} "
                   "separate groups?", truth, "morphology",
                   f"They form {count} separate group{'' if count == 1 else 's'}.", ctx.targets("structure"))


def _zone_status(ctx: PremiseContext) -> dict[bool, list[str]]:
    """Zones whose failure rate is clearly above (True) or below (False) the wafer's."""
    sides = zone_sides(ctx.geom)
    return {True: [z for z, side in zip(ZONES, sides) if side > 0], False: [z for z, side in zip(ZONES, sides) if side < 0]}


_ZONE_WORDS = {"center": "inner", "middle": "middle", "edge": "outer"}


def _zone_choice(ctx: PremiseContext, draw: float, accept: float) -> tuple[str, bool] | None:
    """The zone to ask about and whether it lies above the wafer's average: one of the zones with a clear status,
    drawn alike (``draw`` in [0, 1)), and asked only with the population's probability for that zone and side
    (``accept`` in [0, 1) below :attr:`PremiseThresholds.keep`); None when the map decides no zone premise."""
    status = _zone_status(ctx)
    if not all(status.values()):
        return None
    options = [(zone, above) for zone in ZONES for above in (True, False) if zone in status[above]]
    zone, above = options[int(draw * len(options))]
    return (zone, above) if accept < ctx.thresholds.keep_of(f"zone:{zone}", above) else None


def _zone_premise(ctx: PremiseContext, truth: bool, rng: np.random.Generator) -> Premise:
    zone, above = ctx.zone_choice
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


def all_around_of(distributions: tuple[str, ...] | set[str], directional: bool) -> bool | None:
    """True for failures all around the wafer, False for one-sided ones (with clock positions: ``directional``),
    None when mixed or unclear; from the wafer's distribution terms (the survey reads them from its facts)."""
    dists = set(distributions)
    if dists and dists <= {"radially symmetric", "wafer-wide"}:
        return True
    if dists and dists <= {"localized", "linear"} and directional:
        return False
    return None


def _all_around(ctx: PremiseContext) -> bool | None:
    return all_around_of(set(ctx.rubric.spatial.distribution.split(", ")), bool(ctx.clocks))


def _symmetry_premise(ctx: PremiseContext, truth: bool, rng: np.random.Generator) -> Premise:
    question = ("Do the failures occur all around the wafer rather than on one side only?"
                if _all_around(ctx) == truth else "Are the failures confined to one side of the wafer?")
    return Premise(question, truth, "spatial", "", ctx.targets("distribution"))


#: premise kind -> (does the map decide it clearly, builder(ctx, truth, rng))
PREMISE_KINDS: dict[str, tuple[Callable[[PremiseContext], bool], PremiseBuilder]] = {
    "share": (lambda ctx: _side(ctx, "share") is not None, _share_premise),
    "zone": (lambda ctx: ctx.zone_choice is not None, _zone_premise),
    "clock": (lambda ctx: bool(ctx.clocks and ctx.avoid_clocks), _clock_premise),
    "quadrant": (lambda ctx: bool(ctx.clocks) and all(_quadrant_status(ctx).values()), _quadrant_premise),
    "symmetry": (lambda ctx: _all_around(ctx) is not None, _symmetry_premise),
    "texture": (lambda ctx: ctx.geom.n_fail >= 5 and _side(ctx, "texture") is not None, _texture_premise),
    "regions": (lambda ctx: ctx.geom.n_fail > 0 and _side(ctx, "regions") is not None, _region_premise),
}
#: the fact slots a premise of each kind states, true or false: no other question of its wafer may ask them
PREMISE_SLOTS: dict[str, frozenset[str]] = {
    "share": frozenset({"density"}), "texture": frozenset({"texture"}), "regions": frozenset({"shape"}),
    "zone": frozenset({"zone"}), "clock": frozenset({"clock"}), "quadrant": frozenset({"clock"}),
    "symmetry": frozenset({"extent"}),
}


def decided_kinds(ctx: PremiseContext, rng: np.random.Generator, even: bool = True) -> list[str]:
    """The premise kinds this map decides clearly, in :data:`PREMISE_KINDS` order; a numeric kind on its more
    common side (symmetry: all around or one-sided) only with the population's asking probability
    (:attr:`PremiseThresholds.keep`) when ``even``."""
    draws = rng.random(len(NUMERIC_KINDS) + 3)
    ctx.zone_choice = _zone_choice(ctx, draws[-2], draws[-1])
    sides = {kind: _side(ctx, kind) for kind in NUMERIC_KINDS} | {"symmetry": _all_around(ctx)}
    asked = {kind: draws[i] < ctx.thresholds.keep_of(kind, bool(sides[kind]))
             for i, kind in enumerate((*NUMERIC_KINDS, "symmetry"))}
    return [kind for kind, (decided, _) in PREMISE_KINDS.items() if decided(ctx) and (not even or asked.get(kind, True))]


def write_premise(ctx: PremiseContext, kind: str, truth: bool, rng: np.random.Generator) -> tuple[Premise, str]:
    """A premise of ``kind`` with the given truth, and its reference answer ("Yes."/"No." and the facts)."""
    premise = PREMISE_KINDS[kind][1](ctx, truth, rng)
    facts = ctx.spatial if premise.dimension == "spatial" else ctx.morphology
    return premise, ("Yes. " if truth else "No. ") + (premise.detail + " " if premise.detail else "") + facts
