"""Sentences that state a rubric's facts: one per dimension, each naming every must-hit term of that dimension.

Descriptions (Stage 0b) and reference answers (Stage 2) are written from these, so an answer always agrees with
its rubric. Terms the vocabulary knows are slotted into a sentence; any other must-hit term (from a model-built
rubric) is listed after it, so it still appears verbatim.
"""
from __future__ import annotations

from .schema import Rubric, Term
from .vocab import CLOCK_TERMS, DENSITY_TERMS, DISTRIBUTION_TERMS, PATTERN_TERMS, TYPE_NAMES, ZONE_TERMS

_ZONES = {t.term for t in ZONE_TERMS.values()}
_CLOCKS = {t.term: k for k, t in CLOCK_TERMS.items()}
_DISTRIBUTIONS = {t.term for t in DISTRIBUTION_TERMS.values()}
_PATTERNS = {t.term for t in PATTERN_TERMS.values()}
_DENSITIES = {t.term for t in DENSITY_TERMS.values()}
_NO_PATTERN = PATTERN_TERMS["none"].term
_DISTRIBUTION_PHRASE = {"isolated dies": "limited to isolated dies"}


def join(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _split(terms: list[Term], *known: set[str]) -> tuple[list[list[str]], list[str]]:
    groups: list[list[str]] = [[] for _ in known]
    other = []
    for term in terms:
        for group, names in zip(groups, known):
            if term.term in names:
                group.append(term.term)
                break
        else:
            other.append(term.term)
    return groups, other


def _others(other: list[str], lead: str) -> str:
    return f" {lead}: {join(other)}." if other else ""


def type_sentence(types: list[str]) -> str:
    """Names the defect types, e.g. 'The map shows two overlapping patterns: Center and Scratch.'"""
    names = [TYPE_NAMES.get(t, t) for t in types]
    if types == ["none"]:
        return f"No defect pattern is present: the class is {names[0]}, a normal wafer."
    if len(names) == 1:
        return f"The map shows a {names[0]} pattern."
    return f"The map shows {len(names)} overlapping patterns: {join(names)}."


def spatial_sentence(rubric: Rubric) -> str:
    (zones, clocks, dists), other = _split(rubric.spatial.must_hit, _ZONES, set(_CLOCKS), _DISTRIBUTIONS)
    clocks.sort(key=_CLOCKS.__getitem__)
    text = "The failures are " + join([_DISTRIBUTION_PHRASE.get(d, d) for d in dists]) if dists else "The failures"
    if zones:
        plural = "s" if len(zones) > 1 else ""
        text += f"{' and' if dists else ''} lie in the {join(zones)} zone{plural}"
    elif not dists:
        text += f" lie in the {rubric.spatial.zone} area"
    if clocks:
        text += f", around {join(clocks)}"
    return text + "." + _others(other, "Location facts")


def morphology_sentence(rubric: Rubric) -> str:
    morph = rubric.morphology
    (patterns, densities), other = _split(morph.must_hit, _PATTERNS, _DENSITIES)
    structure = morph.geometric_structure
    other = [o for o in other if o != structure]
    density = join(densities) if densities else morph.density
    if patterns == [_NO_PATTERN]:
        head = f"There is {_NO_PATTERN}: the failing dies are {structure}"
    else:
        names = join(patterns) if patterns else morph.pattern_type
        head = f"The failing dies form {article(structure)}, {article(names)} pattern"
    return f"{head}; the failure is {density}, with {morph.texture_description}." + _others(other, "Also")


def root_cause_sentence(rubric: Rubric) -> str:
    cause = rubric.root_cause
    equipment = [t.term for t in cause.must_hit if t.term in cause.equipment_category]
    facts = [t.term for t in cause.must_hit if t.term not in cause.equipment_category]
    if equipment:
        head = f"Investigate {join(equipment)} first: the signature points to {cause.process_step}."
    else:
        head = f"No equipment needs investigating: {cause.process_step}."
    return head + (f" Likely causes: {join(facts)}." if facts else "")
