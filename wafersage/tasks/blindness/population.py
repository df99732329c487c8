"""Thresholds of the numeric consistency premises, drawn from the whole build's population of wafers.

A premise "Do more than T% of the dies fail?" whose T came from the wafer's own value would tell a blind reader
the answer by its magnitude. Here each numeric kind has one threshold per build (a global step, like cleaning and
splits): the friendly number (:data:`FRIENDLY`) between the population's 40th and 60th percentile that best
balances the wafers clearly above it against those clearly below. A wafer is asked the kind only when its own value
is clearly away from the threshold (ratio :data:`MARGIN` for percentages; at least one group apart for counts), so
the premise's number is the same for every wafer.

The side a wafer lies on is still a fact with a prior (more wafers may lie above the threshold than below it;
the inner zone fails above the wafer's average more often than below it). Since the writer makes the premise hold
or fail by its comparator ("more"/"fewer", "above"/"below"), a wording's chance of a yes is the share of asked
wafers on one side. :attr:`PremiseThresholds.keep` evens it out: a wafer on the more common side is asked with
the probability minority / majority (numeric kinds and symmetry; for zones, per zone among the wafers that have a
zone clearly above and one clearly below, each of its zones with a clear side drawn alike).

The values a template asks are spread the same way: a template that asks one of :data:`SPREAD_SLOTS` is offered to
a wafer with the probability (share of the slot's rarest value) / (share of this wafer's value) in the population
(:meth:`PremiseThresholds.spread_weight`; the wafer's category keeps its minimum of templates all the same), so
"dense" is no longer the answer to two thirds of density questions.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..geometry.measure import Geometry

#: numeric premise kinds, in the column order of :func:`numeric_values`
NUMERIC_KINDS: tuple[str, ...] = ("share", "texture", "regions")
#: radial zones, in the column order of :func:`zone_sides` (after the numeric kinds in a survey's rows)
ZONES: tuple[str, ...] = ("center", "middle", "edge")
#: a zone's failure rate is clearly above (below) the wafer's at this factor (its inverse)
ZONE_CLEAR = 1.3
#: a percentage is clearly away from a threshold T when it is >= T * MARGIN or <= T / MARGIN
MARGIN = 1.5
#: a failing region counts towards the region-count premise from this share of the dies
REGION_MIN_AREA = 0.005
#: thresholds a question may state (percent of dies, percent of failing dies, number of groups)
FRIENDLY: tuple[float, ...] = (0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90)
#: fact slots whose questions are drawn against the population's value shares (see the module docstring)
SPREAD_SLOTS: tuple[str, ...] = ("density", "texture", "extent")
#: the percentile range a threshold is drawn from
PERCENTILES = (40.0, 60.0)


def numeric_values(geom: Geometry) -> tuple[float, float, float]:
    """A wafer's values for :data:`NUMERIC_KINDS`: percent of dies failing, percent of failing dies outside groups
    of five or more (0 for fully clustered), number of failing regions of at least :data:`REGION_MIN_AREA`."""
    return (geom.fail_ratio * 100, (1.0 - geom.clustered_fraction) * 100,
            float(sum(r.area_fraction >= REGION_MIN_AREA for r in geom.regions)))


def zone_sides(geom: Geometry) -> tuple[float, float, float]:
    """Per zone of :data:`ZONES`: 1 when its failure rate is clearly above the wafer's, -1 clearly below, else 0."""
    fr, rates = geom.fail_ratio, geom.zone_fail_ratio
    return tuple(1.0 if rates[z] >= ZONE_CLEAR * fr else -1.0 if rates[z] * ZONE_CLEAR <= fr else 0.0
                 for z in ZONES)


#: columns of a survey row: numeric values, zone sides, all around (1), one-sided (-1) or neither (0)
SURVEY_COLUMNS = len(NUMERIC_KINDS) + len(ZONES) + 1


def survey_row(geom: Geometry, all_around: bool | None) -> tuple[float, ...]:
    """What the population step needs of one map: :func:`numeric_values`, :func:`zone_sides`, and whether its
    failures lie all around the wafer (the symmetry premise's fact, from its defect types; None: neither)."""
    return (*numeric_values(geom), *zone_sides(geom), 0.0 if all_around is None else 1.0 if all_around else -1.0)


def clearly_above(kind: str, value: float, threshold: float) -> bool | None:
    """True (False) when ``value`` is clearly above (below) ``threshold`` for ``kind``; None within the margin."""
    if kind == "regions":
        return None if abs(value - threshold) < 1 else value > threshold
    if value >= threshold * MARGIN:
        return True
    return False if value <= threshold / MARGIN else None


class PremiseThresholds(BaseModel):
    """One threshold per numeric premise kind (see the module docstring)."""

    model_config = ConfigDict(frozen=True)
    share: float = Field(gt=0, description="percent of the dies failing")
    texture: float = Field(gt=0, description="percent of the failing dies outside groups of five or more")
    regions: float = Field(ge=1, description="number of separate failing groups")
    keep: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="per numeric kind, per zone ('zone:center') and for symmetry, the "
                                          "probability with which a wafer clearly above (all around; first) or "
                                          "below (one-sided; second) is asked")

    value_share: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="per slot of SPREAD_SLOTS, each value's share of the population")

    def spread_weight(self, slot: str, value: str) -> float:
        """The probability of offering a template that asks ``slot`` to a wafer whose value is ``value`` (1 when
        the population does not know the value)."""
        shares = self.value_share.get(slot, {})
        return min(shares.values()) / shares[value] if value in shares else 1.0

    def of(self, kind: str) -> float:
        return getattr(self, kind)

    def keep_of(self, key: str, above: bool) -> float:
        """The probability of asking a wafer on this side (1 where the population is not known)."""
        return self.keep.get(key, (1.0, 1.0))[0 if above else 1]


#: used when no population is given (a single wafer written alone, e.g. in tests): the demo build's thresholds
DEFAULT_THRESHOLDS = PremiseThresholds(share=10, texture=10, regions=2)


def _balance(kind: str, values: np.ndarray, threshold: float) -> tuple[float, int]:
    """How far the wafers clearly above and clearly below ``threshold`` are from equal (0 = equal), and how many
    are asked at all (more is better on a tie)."""
    sides = [clearly_above(kind, float(v), threshold) for v in values]
    above, below = sum(s is True for s in sides), sum(s is False for s in sides)
    return abs(above - below) / max(above + below, 1), -(above + below)


def _evened(above: float, below: float) -> tuple[float, float]:
    """Asking probabilities that make both sides equally common (minority / majority for the majority side)."""
    if not above or not below:
        return 1.0, 1.0
    return round(min(1.0, below / above), 4), round(min(1.0, above / below), 4)


def population_thresholds(numeric: np.ndarray, slot_values: list[tuple[str, ...]] = ()) -> PremiseThresholds:
    """Thresholds and asking probabilities from the kept wafers' :func:`survey_row` rows (``numeric``; in any order: the
    result does not depend on it). Percentages pick among :data:`FRIENDLY`, counts among whole numbers >= 1; a
    population too small or too concentrated for a candidate inside the percentile range takes the candidate
    nearest its median. ``slot_values``: per wafer, its values of :data:`SPREAD_SLOTS`."""
    values = numeric
    if len(values) == 0:
        return DEFAULT_THRESHOLDS
    chosen: dict = {"keep": {}, "value_share": {}}
    for column, slot in enumerate(SPREAD_SLOTS):
        counts = Counter(row[column] for row in slot_values)
        total = sum(counts.values())
        if total:
            chosen["value_share"][slot] = {v: round(n / total, 4) for v, n in sorted(counts.items())}
    for column, kind in enumerate(NUMERIC_KINDS):
        column_values = np.sort(values[:, column])
        lo, hi = np.percentile(column_values, PERCENTILES)
        median = float(np.median(column_values))
        if kind == "regions":
            grid = [float(k) for k in range(1, int(max(column_values.max(), 1)) + 1)]
        else:
            grid = [float(f) for f in FRIENDLY]
        inside = [t for t in grid if lo <= t <= hi] or [min(grid, key=lambda t: abs(t - median))]
        chosen[kind] = min(inside, key=lambda t: (*_balance(kind, column_values, t), t))
        sides = [clearly_above(kind, float(v), chosen[kind]) for v in column_values]
        chosen["keep"][kind] = _evened(sides.count(True), sides.count(False))
    sides = values[:, len(NUMERIC_KINDS):len(NUMERIC_KINDS) + len(ZONES)]
    sides = sides[(sides > 0).any(axis=1) & (sides < 0).any(axis=1)]
    weight = 1.0 / np.maximum((sides != 0).sum(axis=1), 1)  # each wafer draws one of its zones with a clear side
    for column, zone in enumerate(ZONES):
        chosen["keep"][f"zone:{zone}"] = _evened(float(weight[sides[:, column] > 0].sum()),
                                                 float(weight[sides[:, column] < 0].sum()))
    chosen["keep"]["symmetry"] = _evened(int((values[:, -1] > 0).sum()), int((values[:, -1] < 0).sum()))
    return PremiseThresholds(**chosen)
