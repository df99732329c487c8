"""What is true of a wafer, slot by slot, in the values the claim reader produces.

A :class:`SlotTruth` holds *components* (one per pattern, zone, clock or equipment the wafer has; each a set of
values that state it correctly), the values that *contradict* the wafer (they fit none of its components and are
clearly wrong for every one) and values worth *partial* credit (a neighbouring density band). Tolerances:

* zone: each affected zone is a component; a zone the map leaves clearly clean contradicts (``avoid_zones``);
* extent: per pattern (table :data:`EXTENT`), e.g. Edge-Ring is "symmetric"; "one side" contradicts it;
* shape: per pattern (table :data:`SHAPE`): Donut and Edge-Ring "ring", Scratch "line", ...; background scatter
  never contradicts a wafer with a pattern;
* clock: each true position; a stated hour one hour off earns :data:`CLOCK_NEAR` of the credit, a direction word
  whose hours hold the position :data:`CLOCK_DIRECTION` of it; an hour three or more hours from every true one
  (or a direction none of whose hours is within one hour) contradicts;
* density: the band; the neighbouring band earns half, the opposite band (dense against sparse) contradicts;
* texture: clustered, scattered or, for a mixed map, either;
* equipment: each category to investigate first (the rubric's must-hit categories, else the knowledge table's
  first four for the wafer's types); the rubric's must-avoid categories contradict;
* process: per pattern, satisfied by one of the pattern's equipment categories or one of its cause cues.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from ...tasks.bench.schema import FactSheet, Rubric
from ...tasks.synth.knowledge import load_knowledge
from .lexicon import lexicon

CLOCK_NEAR = 0.75
CLOCK_DIRECTION_CREDIT = 0.75

#: extent values that state each pattern, and the ones that contradict it
EXTENT: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "Center": (frozenset({"symmetric", "localized"}), frozenset({"wafer_wide", "one_sided", "linear"})),
    "Donut": (frozenset({"symmetric"}), frozenset({"wafer_wide", "one_sided", "linear", "localized"})),
    "Edge-Ring": (frozenset({"symmetric"}), frozenset({"wafer_wide", "one_sided", "linear", "localized"})),
    "Edge-Loc": (frozenset({"localized", "one_sided"}), frozenset({"wafer_wide", "symmetric"})),
    "Loc": (frozenset({"localized", "one_sided"}), frozenset({"wafer_wide", "symmetric"})),
    "Scratch": (frozenset({"linear", "localized", "one_sided"}), frozenset({"wafer_wide", "symmetric"})),
    "Random": (frozenset({"wafer_wide", "isolated"}), frozenset({"symmetric", "localized", "one_sided", "linear"})),
    "Near-full": (frozenset({"wafer_wide"}), frozenset({"localized", "one_sided", "linear", "isolated"})),
    "none": (frozenset({"isolated", "wafer_wide"}), frozenset({"symmetric", "localized", "one_sided", "linear"})),
}
#: shape values that state each pattern, and the ones that contradict it
SHAPE: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "Center": (frozenset({"blob"}), frozenset({"ring", "line", "full", "none"})),
    "Donut": (frozenset({"ring"}), frozenset({"blob", "arc", "line", "full", "none"})),
    "Edge-Ring": (frozenset({"ring"}), frozenset({"blob", "arc", "line", "full", "none"})),
    "Edge-Loc": (frozenset({"arc", "blob"}), frozenset({"ring", "line", "full", "none"})),
    "Loc": (frozenset({"blob"}), frozenset({"ring", "line", "full", "none"})),
    "Scratch": (frozenset({"line"}), frozenset({"ring", "blob", "full", "none"})),
    "Random": (frozenset({"scatter", "none"}), frozenset({"ring", "arc", "line", "full"})),  # no coherent shape
    "Near-full": (frozenset({"full"}), frozenset({"ring", "blob", "arc", "line", "none"})),
    "none": (frozenset({"none", "scatter"}), frozenset({"ring", "blob", "arc", "line", "full"})),
}
#: where each pattern lies: in a mixture, an extent or shape counts for a pattern only when the answer also places
#: failures there or names the pattern ("a cluster near the center" describes a Center+Edge-Loc map's Center only)
PATTERN_ZONES: dict[str, frozenset[str]] = {
    "Center": frozenset({"center"}), "Donut": frozenset({"center", "middle"}), "Edge-Ring": frozenset({"edge"}),
    "Edge-Loc": frozenset({"edge"}),
}
DENSITY_ORDER = ("sparse", "moderate", "dense")
#: clock hours each direction word names
DIRECTION_HOURS: dict[str, frozenset[int]] = {
    "upper right": frozenset({1, 2}), "lower right": frozenset({4, 5}), "lower left": frozenset({7, 8}),
    "upper left": frozenset({10, 11}), "right": frozenset({2, 3, 4}), "left": frozenset({8, 9, 10}),
    "top": frozenset({11, 12, 1}), "bottom": frozenset({5, 6, 7}),
}
#: types that a description of another pattern may name without contradicting it (shared wording or background)
COMPATIBLE_TYPES = {"Loc": {"Edge-Loc"}, "Edge-Loc": {"Loc"}, "Near-full": {"Random"}}
BACKGROUND_TYPES = frozenset({"Random", "none"})


@dataclass(frozen=True)
class SlotTruth:
    components: tuple[frozenset[str], ...] = ()
    contradicting: frozenset[str] = frozenset()
    partial: dict[str, float] = field(default_factory=dict)
    weights: tuple[float, ...] = ()  # per component, summing to 1 (equal when empty)
    patterns: tuple[str, ...] = ()  # per component, the pattern it states (extent and shape), else empty

    def weight_list(self) -> list[float]:
        n = len(self.components)
        return list(self.weights) if len(self.weights) == n else [1.0 / n] * n if n else []

    @property
    def known(self) -> bool:
        return bool(self.components)


@dataclass(frozen=True)
class WaferTruth:
    types: frozenset[str]
    slots: dict[str, SlotTruth]
    clocks: tuple[int, ...]
    fail_ratio: float
    pattern_equipment: dict[str, frozenset[str]]  # per pattern: its equipment categories (the process slot)
    avoid_phrases: tuple[str, ...]  # root-cause must-avoid phrases that are not equipment categories

    @property
    def noise_is_pattern(self) -> bool:
        """A Random or normal wafer: its scatter is what it shows, not background."""
        return self.types <= BACKGROUND_TYPES

    def contradicting_types(self, named: frozenset[str], labelled: frozenset[str] = frozenset()) -> list[str]:
        """Types named that the wafer does not have (background scatter and shared wording excepted); a background
        type in ``labelled``, named as the pattern's class label, is no longer excepted as scatter."""
        allowed = set(self.types) | (BACKGROUND_TYPES - labelled)
        for t in self.types:
            allowed |= COMPATIBLE_TYPES.get(t, set())
        return sorted((named | labelled) - allowed)


def clock_distance(a: int, b: int) -> int:
    d = abs(a - b) % 12
    return min(d, 12 - d)


def _per_pattern(types: list[str], table: dict[str, tuple[frozenset[str], frozenset[str]]]) -> SlotTruth:
    known = [t for t in types if t in table and table[t][0]]
    if not known:
        return SlotTruth()
    fits = frozenset().union(*(table[t][0] for t in known))
    against = frozenset.intersection(*(table[t][1] for t in known)) - fits
    return SlotTruth(tuple(table[t][0] for t in known), against, patterns=tuple(known))


def _zone_weights(zones: list[str], rates: dict[str, float]) -> tuple[float, ...]:
    """Each affected zone's weight: its fail rate relative to the other affected zones' (equal if unknown), so the
    zone where the pattern is densest counts most (a large center blob spilling into the middle is "center")."""
    values = [max(rates.get(z, 0.0), 0.01) for z in zones]
    total = sum(values)
    return tuple(v / total for v in values) if rates and total > 0 else ()


def _density(level: str) -> SlotTruth:
    if level not in DENSITY_ORDER:
        return SlotTruth()
    i = DENSITY_ORDER.index(level)
    partial = {DENSITY_ORDER[j]: 0.5 for j in (i - 1, i + 1) if 0 <= j < len(DENSITY_ORDER)}
    contradicting = frozenset(v for v in DENSITY_ORDER if abs(DENSITY_ORDER.index(v) - i) == 2)
    return SlotTruth((frozenset({level}),), contradicting, partial)


def _texture(texture: str) -> SlotTruth:
    accepted = {"clustered": {"clustered"}, "scattered": {"scattered"}, "mixed": {"clustered", "scattered"}}
    return SlotTruth((frozenset(accepted[texture]),)) if texture in accepted else SlotTruth()


@lru_cache(maxsize=1)
def _equipment_names() -> frozenset[str]:
    return frozenset(value for value, _ in lexicon().slots["equipment"].values)


def _equipment(rubric: Rubric | None, types: list[str]) -> tuple[SlotTruth, tuple[str, ...]]:
    kb = load_knowledge()
    if rubric is not None:  # the categories to investigate first: those the rubric asks for (at most four)
        asked = {t.term for t in rubric.root_cause.must_hit}
        truth = [e for e in rubric.root_cause.equipment_category if e in asked] or rubric.root_cause.equipment_category
        avoid = list(rubric.root_cause.must_avoid)
    else:
        truth = list(dict.fromkeys(e for t in types for e in kb.patterns[t].equipment if t in kb.patterns))[:4]
        avoid = list(dict.fromkeys(a for t in types if t in kb.patterns for a in kb.patterns[t].avoid))
    names = _equipment_names()
    contradicting = frozenset(a for a in avoid if a in names and a not in truth)
    if any(a.lower() == "probe card" for a in avoid):
        contradicting |= {"Probe"}
    others = tuple(a.lower() for a in avoid if a not in names and a.lower() != "probe card")
    return SlotTruth(tuple(frozenset({e}) for e in truth), contradicting), others


def wafer_truth(sheet: FactSheet, rubric: Rubric | None = None) -> WaferTruth:
    """The wafer's truth from its fact sheet (and its rubric's root-cause lists, when it has a rubric)."""
    types = list(sheet.types) or ["none"]
    kb = load_knowledge()
    equipment, avoid_phrases = _equipment(rubric, types)
    slots = {
        "zone": SlotTruth(tuple(frozenset({z}) for z in sheet.zones), frozenset(sheet.avoid_zones),
                          weights=_zone_weights(sheet.zones, sheet.zone_rates)),
        "extent": _per_pattern(types, EXTENT),
        "shape": _per_pattern(types, SHAPE),
        "density": _density(sheet.density),
        "texture": _texture(sheet.texture),
        "equipment": equipment,
    }
    pattern_equipment = {t: frozenset(kb.patterns[t].equipment) for t in types if t in kb.patterns and t != "none"}
    return WaferTruth(types=frozenset(types), slots=slots, clocks=tuple(sheet.clocks), fail_ratio=sheet.fail_ratio,
                      pattern_equipment=pattern_equipment, avoid_phrases=avoid_phrases)
