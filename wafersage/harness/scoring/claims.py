"""Closed-vocabulary facts in an answer: what it states about zone, distribution, direction, density, texture and
equipment, whether each statement is negated, and which statements contradict a rubric.

A closed vocabulary has a small set of values with fixed wordings (:mod:`wafersage.tasks.synth.vocab`, the knowledge
table's equipment names): "moderate density" is not "high density", "radially asymmetric" is not "radially
symmetric", "3 o'clock" is not "9 o'clock". Such facts are matched exactly (whole words, any synonym, plural
allowed), never fuzzily. Longest phrases win, so "moderately dense" is a moderate density, not "dense", and
"compact blob" is a shape, not the density "compact".

A statement is *negated* (:func:`wafersage.harness.scoring.matching.is_negated`: "no failures near the center", "not
radially symmetric"); a negated fact is never a hit, and negating a true fact is a contradiction.

:func:`contradictions` lists the statements that contradict a rubric dimension: a value the rubric does not hold
(zones, distributions, density, texture, equipment), a clock position more than one hour from every true one, a
direction ("upper left", "right side") holding no true clock position, or a true value negated. Slots a rubric
does not state in known words (a model-built rubric's free-form zone) are not checked.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ...tasks.synth.knowledge import load_knowledge
from ...tasks.bench.schema import Rubric
from ...tasks.synth.vocab import DENSITY_TERMS, DISTRIBUTION_TERMS, PATTERN_TERMS, STRUCTURE_TERMS, ZONE_TERMS
from .matching import CLOCK_RE, clock_hours, is_negated, normalise

#: clock hours each direction word covers (a direction contradicts a map with no true clock position among them)
DIRECTION_HOURS: dict[str, frozenset[int]] = {
    "upper right": frozenset({12, 1, 2, 3}), "lower right": frozenset({3, 4, 5, 6}),
    "lower left": frozenset({6, 7, 8, 9}), "upper left": frozenset({9, 10, 11, 12}),
    "right side": frozenset({2, 3, 4}), "left side": frozenset({8, 9, 10}),
    "top": frozenset({11, 12, 1}), "bottom": frozenset({5, 6, 7}),
}
_DIRECTION_WORDS = {
    "upper right": ("upper right", "top right", "upper right quadrant", "top right quadrant", "northeast"),
    "lower right": ("lower right", "bottom right", "lower right quadrant", "bottom right quadrant", "southeast"),
    "lower left": ("lower left", "bottom left", "lower left quadrant", "bottom left quadrant", "southwest"),
    "upper left": ("upper left", "top left", "upper left quadrant", "top left quadrant", "northwest"),
    "right side": ("right side", "right hand side", "right half"),
    "left side": ("left side", "left hand side", "left half"),
    "top": ("top", "top side", "upper half", "top half"),
    "bottom": ("bottom", "bottom side", "lower half", "bottom half"),
}
_TEXTURE_WORDS = {
    "clustered": ("clustered", "contiguous", "grouped together", "clumped"),
    "scattered": ("scattered", "isolated", "spread apart", "apart from each other"),
}
_ONE_SIDED = ("one side", "one side only", "on one side", "one sided", "single side")


def _norm(phrase: str) -> str:
    return normalise(phrase).strip()


def _equipment_words() -> dict[str, tuple[str, ...]]:
    kb = load_knowledge()
    return {name: (name, *synonyms) for name, synonyms in kb.equipment_categories.items()}


def _slot_table() -> dict[str, dict[tuple[str, str], tuple[str, ...]]]:
    """dimension -> (slot, value) -> wordings; slot "shape" is only masked (never a contradiction)."""
    spatial: dict[tuple[str, str], tuple[str, ...]] = {}
    for zone, term in ZONE_TERMS.items():
        extra = {"center": ("inner zone", "inner radial zone"), "middle": ("middle zone", "middle radial zone"),
                 "edge": ("outer zone", "outer radial zone", "rim")}[zone]
        spatial[("zone", zone)] = (*term.variants, *extra)
    for key, term in DISTRIBUTION_TERMS.items():
        extra = ("whole wafer", "entire wafer") if key == "wafer-wide" else ()
        spatial[("distribution", key)] = (*term.variants, *extra)
    spatial[("distribution", "one-sided")] = _ONE_SIDED
    for direction, words in _DIRECTION_WORDS.items():
        spatial[("direction", direction)] = words
    morphology: dict[tuple[str, str], tuple[str, ...]] = {}
    for key, term in DENSITY_TERMS.items():
        morphology[("density", key)] = tuple(term.variants)
    for key, words in _TEXTURE_WORDS.items():
        morphology[("texture", key)] = words
    for key, term in [*PATTERN_TERMS.items(), *(("s-" + k, t) for k, t in STRUCTURE_TERMS.items())]:
        morphology[("shape", key)] = tuple(term.variants)
    root_cause = {("equipment", name): words for name, words in _equipment_words().items()}
    return {"spatial": spatial, "morphology": morphology, "root_cause": root_cause}


@dataclass(frozen=True)
class _Compiled:
    regex: re.Pattern[str]
    meaning: dict[str, tuple[str, str]]  # normalised wording -> (slot, value)


@lru_cache(maxsize=None)
def _compiled(dimension: str) -> _Compiled:
    meaning: dict[str, tuple[str, str]] = {}
    for slot_value, words in _slot_table()[dimension].items():
        for word in words:
            meaning.setdefault(_norm(word), slot_value)
    alternatives = sorted(meaning, key=len, reverse=True)
    regex = re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(w) for w in alternatives) + r")(?:s|es)?(?![a-z0-9])")
    return _Compiled(regex, meaning)


@lru_cache(maxsize=None)
def closed_value(phrase: str, dimension: str) -> tuple[str, str] | None:
    """(slot, value) of a normalised closed-vocabulary wording in ``dimension`` (clock terms: ("clock", "3")), or
    None for an open phrase."""
    hours = clock_hours(f" {phrase} ")
    if hours and CLOCK_RE.fullmatch(phrase):
        return "clock", str(min(hours))
    return _compiled(dimension).meaning.get(phrase)


@dataclass(frozen=True)
class Claim:
    slot: str  # zone, distribution, direction, clock, density, texture, shape, equipment
    value: str
    wording: str  # the normalised words matched
    negated: bool


@lru_cache(maxsize=16384)
def claims(text: str, dimension: str) -> tuple[Claim, ...]:
    """Closed-vocabulary statements in normalised ``text`` for a rubric dimension, in order."""
    if dimension not in ("spatial", "morphology", "root_cause"):
        return ()
    compiled = _compiled(dimension)
    found = []
    for match in compiled.regex.finditer(text):
        wording = match.group(1)
        slot, value = compiled.meaning[wording]
        found.append((match.start(), Claim(slot, value, wording, is_negated(text, match.start()))))
    if dimension == "spatial":
        for match in CLOCK_RE.finditer(text):
            hour = next(iter(clock_hours(match.group(0))))
            found.append((match.start(), Claim("clock", str(hour), match.group(0).strip(),
                                               is_negated(text, match.start()))))
    return tuple(claim for _, claim in sorted(found, key=lambda pair: pair[0]))


@dataclass(frozen=True)
class Truth:
    """What a rubric dimension holds per closed slot; a slot missing from ``values`` is not checked."""

    values: dict[str, frozenset[str]]
    clocks: frozenset[int]
    said: frozenset[str]  # the dimension's own must-hit wordings (true by definition)


def _known(parts: list[str], allowed) -> frozenset[str] | None:
    return frozenset(parts) if parts and all(p in allowed for p in parts) else None


def truth_of(rubric: Rubric, dimension: str) -> Truth:
    """The closed-vocabulary truth of one rubric dimension."""
    dim = rubric.dimension(dimension)
    said = frozenset(_norm(v) for term in dim.must_hit for v in term.variants)
    values: dict[str, frozenset[str]] = {}
    clocks: set[int] = set()
    if dimension == "spatial":
        zone = rubric.spatial.zone.strip().lower()
        zones = frozenset() if zone in ("whole wafer", "none") else _known(zone.split(" and "), ZONE_TERMS)
        distributions = _known([d.strip() for d in rubric.spatial.distribution.split(",")], DISTRIBUTION_TERMS)
        if zones is not None:
            values["zone"] = zones
        if distributions is not None:
            one_sided = {"one-sided"} if distributions & {"localized", "linear"} else set()
            values["distribution"] = distributions | one_sided
        clocks = set(rubric.spatial.clock_positions)
        for phrase in said:
            clocks |= clock_hours(f" {phrase} ")
    elif dimension == "morphology":
        density = closed_value(_norm(rubric.morphology.density), "morphology")
        if density and density[0] == "density":
            values["density"] = frozenset({density[1]})
        texture = rubric.morphology.texture_description.lower()
        if texture:
            values["texture"] = frozenset(k for k, words in _TEXTURE_WORDS.items()
                                          if any(w in texture for w in words))
    else:
        equipment = [closed_value(_norm(e), "root_cause") for e in rubric.root_cause.equipment_category]
        values["equipment"] = frozenset(e[1] for e in equipment if e)
    return Truth(values, frozenset(clocks), said)


def _holds(claim: Claim, truth: Truth) -> bool | None:
    """Whether the (un-negated) statement is true for the rubric; None when its slot is not checked."""
    if claim.slot == "clock":
        hour = int(claim.value)
        return any(min((hour - c) % 12, (c - hour) % 12) <= 1 for c in truth.clocks)
    if claim.slot == "direction":
        return bool(DIRECTION_HOURS[claim.value] & truth.clocks)
    if claim.slot not in truth.values:
        return None
    return claim.value in truth.values[claim.slot]


def contradictions(found: tuple[Claim, ...], truth: Truth) -> list[str]:
    """The statements (as worded) that contradict the rubric dimension; see the module docstring."""
    out = []
    for claim in found:
        if claim.slot == "shape" or (not claim.negated and claim.wording in truth.said):
            continue
        holds = _holds(claim, truth)
        if holds is None:
            continue
        if holds == claim.negated:
            out.append(("not " if claim.negated else "") + claim.wording)
    return out
