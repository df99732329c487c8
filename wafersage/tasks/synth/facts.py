"""The facts of one wafer, read once from its labels (or inferred types) and measured geometry.

Descriptions (Stage 0b), rubrics (Stage 1) and questions (Stage 2) all state these facts, so they never disagree.
Rules (documented here, tested in ``tests/test_rubric_*.py``):

* types: the wafer's labels when known, else :func:`~wafersage.tasks.geometry.infer.infer_types`;
* zones: a zone is *affected* when its fail ratio is >= ``ZONE_ENRICHMENT`` x the wafer's and it holds >=
  ``ZONE_MIN_SHARE`` of the failing dies; the zones a pattern defines (Center -> center, Donut -> middle,
  Edge-Ring/Edge-Loc -> edge) are always affected. A zone *contradicts* the map when it is not affected, fails at
  most ``ZONE_CLEAR`` x the most affected zone's rate and no more than the wafer's average;
* clock positions: only for directional patterns (Edge-Loc, Loc, Scratch): the generator's ground truth when the
  map has it (the clock of each Edge-Loc arc and off-centre Loc cluster), else the measured dominant clocks (at
  most two), else the clock of the largest off-centre region; the opposite position contradicts each of them
  unless a measurable share of failures sits there (or near another hit position);
* a generated Loc cluster's ground-truth zone is always affected;
* distribution: from the pattern (radially symmetric, localized, linear, wafer-wide; isolated dies when none);
* density: dense / moderate / sparse from the clustered share and neighbour excess (Near-full is dense, Random and
  none sparse); structure: that of the most prominent pattern; texture: the measured texture.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..bench.schema import FactSheet
from ..geometry.measure import ZONES, Geometry, measure
from ..geometry.infer import infer_types
from ..maps.wafer import WaferMap

ZONE_ENRICHMENT = 1.3
ZONE_MIN_SHARE = 0.2
ZONE_CLEAR = 0.6
OPPOSITE_MAX_SHARE = 0.05
SUBTLE_MAX_AREA = 0.02
SUBTLE_MAX_FAIL = 0.03

PATTERN_ZONE = {"Center": "center", "Donut": "middle", "Edge-Ring": "edge", "Edge-Loc": "edge"}
DIRECTIONAL = frozenset({"Edge-Loc", "Loc", "Scratch"})
WAFER_WIDE = frozenset({"Random", "Near-full"})
DISTRIBUTION = {
    "Center": "radially symmetric", "Donut": "radially symmetric", "Edge-Ring": "radially symmetric",
    "Edge-Loc": "localized", "Loc": "localized", "Scratch": "linear", "Random": "wafer-wide",
    "Near-full": "wafer-wide", "none": "sparse",
}
TEXTURE = {
    "clustered": "clustered, contiguous failing dies", "scattered": "scattered, mostly isolated failing dies",
    "mixed": "a clustered core among scattered failing dies", "clean": "no failing dies",
}


@dataclass(frozen=True)
class WaferFacts:
    """Everything the synthesis stages state about one wafer."""

    types: tuple[str, ...]  # canonical labels; ("none",) for a normal wafer
    labels_known: bool
    zones: tuple[str, ...]  # affected zones, center -> edge
    avoid_zones: tuple[str, ...]
    distributions: tuple[str, ...]
    clocks: tuple[int, ...]
    avoid_clocks: tuple[int, ...]
    quadrant: str | None  # the quadrant holding most failures, when directional and clear
    density: str
    structure: str  # the pattern whose structure the map shows most clearly (key of vocab.STRUCTURE_TERMS)
    texture: str
    coordinates_hint: str
    fail_ratio: float
    subtle: bool
    zone_rates: tuple[float, ...] = ()  # fail rate of the dies in each of ZONES

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(t for t in self.types if t != "none")


def _zones(wafer: WaferMap, geom: Geometry, types: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if geom.n_fail == 0 or not set(types) - WAFER_WIDE - {"none"}:
        return (), ()
    fr = geom.fail_ratio
    hit = {z for z in ZONES
           if geom.zone_fail_ratio[z] >= ZONE_ENRICHMENT * fr and geom.zone_share[z] >= ZONE_MIN_SHARE}
    hit |= {PATTERN_ZONE[t] for t in types if t in PATTERN_ZONE}
    hit |= {t.params["zone"] for t in wafer.truth if t.pattern == "Loc" and t.params.get("zone") in ZONES}
    if not hit and geom.dominant_zone:
        hit.add(geom.dominant_zone)
    top = max(geom.zone_fail_ratio[z] for z in hit)
    avoid = tuple(z for z in ZONES if z not in hit
                  and geom.zone_fail_ratio[z] <= min(ZONE_CLEAR * top, fr))
    return tuple(z for z in ZONES if z in hit), avoid


def _truth_clocks(wafer: WaferMap) -> list[int]:
    clocks = [int(t.params["clock"]) for t in wafer.truth
              if t.pattern in ("Edge-Loc", "Loc") and "clock" in t.params and t.params.get("zone") != "center"]
    return list(dict.fromkeys(clocks))[:2]


def _clocks(wafer: WaferMap, geom: Geometry, types: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if not DIRECTIONAL & set(types):
        return (), ()
    clocks = _truth_clocks(wafer) or list(geom.dominant_clocks[:2])
    if not clocks:
        off_centre = [rg for rg in geom.regions if rg.r > 0.25]
        if not off_centre:
            return (), ()
        clocks = [off_centre[0].clock]
    avoid = []
    for k in clocks:
        opposite = (k + 5) % 12 + 1
        near_hit = any(min((opposite - h) % 12, (h - opposite) % 12) <= 2 for h in clocks)
        if not near_hit and geom.clock_share[opposite % 12] <= OPPOSITE_MAX_SHARE and opposite not in avoid:
            avoid.append(opposite)
    return tuple(clocks), tuple(avoid)


def _density(geom: Geometry, types: tuple[str, ...]) -> str:
    if "Near-full" in types:
        return "dense"
    if set(types) <= {"Random", "none"}:
        return "sparse"
    if geom.clustered_fraction >= 0.6 and geom.neighbour_excess >= 0.3:
        return "dense"
    if geom.clustered_fraction < 0.3:
        return "sparse"
    return "moderate"


def _coordinates_hint(geom: Geometry, clocks: tuple[int, ...]) -> str:
    big = geom.largest
    if big is None:
        return "no failing region"
    where = f"largest failing region centred at x={big.x:+.2f}, y={big.y:+.2f} (r={big.r:.2f} of the radius)"
    return where + (f", clock {big.clock}" if clocks else "")


def is_subtle(geom: Geometry, types: tuple[str, ...]) -> bool:
    """A pattern that is easy to miss: small overall, or its largest region is tiny (not for Random/none)."""
    if not set(types) - WAFER_WIDE - {"none"}:
        return False
    big = geom.largest
    return geom.fail_ratio < SUBTLE_MAX_FAIL or big is None or big.area_fraction < SUBTLE_MAX_AREA


def wafer_facts(wafer: WaferMap, geom: Geometry) -> WaferFacts:
    """Read the facts of ``wafer`` (labels when known, otherwise types inferred from ``geom``)."""
    types = tuple(wafer.labels) if wafer.labels else tuple(infer_types(geom))
    zones, avoid_zones = _zones(wafer, geom, types)
    clocks, avoid_clocks = _clocks(wafer, geom, types)
    quadrant = None
    if clocks:
        best = max(geom.quadrant_share, key=geom.quadrant_share.__getitem__)
        quadrant = best if geom.quadrant_share[best] >= 0.5 else None
    distributions = tuple(dict.fromkeys(DISTRIBUTION[t] for t in types))
    primary = types[0] if len(types) == 1 else _primary(types, geom)
    return WaferFacts(
        types=types, labels_known=bool(wafer.labels), zones=zones, avoid_zones=avoid_zones,
        distributions=distributions, clocks=clocks, avoid_clocks=avoid_clocks, quadrant=quadrant,
        density=_density(geom, types), structure=primary, texture=TEXTURE[geom.texture],
        coordinates_hint=_coordinates_hint(geom, clocks), fail_ratio=geom.fail_ratio,
        subtle=is_subtle(geom, types), zone_rates=tuple(round(float(geom.zone_fail_ratio[z]), 4) for z in ZONES),
    )


def _primary(types: tuple[str, ...], geom: Geometry) -> str:
    """The pattern whose structure the largest region most likely shows."""
    if "Scratch" in types and geom.line_likeness >= 0.5:
        return "Scratch"
    for pattern in ("Near-full", "Edge-Ring", "Donut", "Center", "Edge-Loc", "Loc", "Scratch", "Random"):
        if pattern in types:
            return pattern
    return types[0]


#: a texture description back to its key (rubrics state the description)
TEXTURE_KEY = {phrase: key for key, phrase in TEXTURE.items()}


def fact_sheet(facts: WaferFacts) -> FactSheet:
    """The structured facts the scorer grades against (stored in the rubric)."""
    return FactSheet.model_construct(
        types=list(facts.types), zones=list(facts.zones), avoid_zones=list(facts.avoid_zones),
        clocks=list(facts.clocks), density=facts.density, texture=TEXTURE_KEY[facts.texture],
        fail_ratio=round(float(facts.fail_ratio), 4), zone_rates=dict(zip(ZONES, facts.zone_rates)))


def sheet_of_map(wafer: WaferMap) -> FactSheet:
    """Measure ``wafer`` and read its fact sheet (for maps whose benchmark stored none)."""
    return fact_sheet(wafer_facts(wafer, measure(wafer)))
