"""Sentences that state a rubric's facts: one per dimension, each naming every must-hit term of that dimension.

Descriptions (Stage 0b) and reference answers (Stage 2) are written from these, so an answer always agrees with
its rubric. Terms the vocabulary knows are slotted into a sentence; any other must-hit term (from a model-built
rubric) is listed after it, so it still appears verbatim.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..bench.schema import Rubric, Term
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


def _names(terms: list[Term]) -> tuple[str, ...]:
    return tuple(t.term for t in terms)


def _split(terms: tuple[str, ...], *known: set[str]) -> tuple[list[list[str]], list[str]]:
    groups: list[list[str]] = [[] for _ in known]
    other = []
    for term in terms:
        for group, names in zip(groups, known):
            if term in names:
                group.append(term)
                break
        else:
            other.append(term)
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


# The sentences are cached by exactly the rubric fields they read: maps share few combinations of must-hit terms.

def spatial_sentence(rubric: Rubric) -> str:
    return _spatial_sentence(_names(rubric.spatial.must_hit), rubric.spatial.zone)


@lru_cache(maxsize=4096)
def _spatial_sentence(must_hit: tuple[str, ...], zone: str) -> str:
    (zones, clocks, dists), other = _split(must_hit, _ZONES, set(_CLOCKS), _DISTRIBUTIONS)
    clocks.sort(key=_CLOCKS.__getitem__)
    text = "The failures are " + join([_DISTRIBUTION_PHRASE.get(d, d) for d in dists]) if dists else "The failures"
    if zones:
        plural = "s" if len(zones) > 1 else ""
        text += f"{' and' if dists else ''} lie in the {join(zones)} zone{plural}"
    elif not dists:
        text += f" lie in the {zone} area"
    if clocks:
        text += f", around {join(clocks)}"
    return text + "." + _others(other, "Location facts")


def morphology_sentence(rubric: Rubric) -> str:
    morph = rubric.morphology
    return _morphology_sentence(_names(morph.must_hit), morph.geometric_structure, morph.density, morph.pattern_type,
                                morph.texture_description)


@lru_cache(maxsize=4096)
def _morphology_sentence(must_hit: tuple[str, ...], structure: str, density: str, pattern_type: str,
                         texture: str) -> str:
    (patterns, densities), other = _split(must_hit, _PATTERNS, _DENSITIES)
    other = [o for o in other if o != structure]
    density = join(densities) if densities else density
    if patterns == [_NO_PATTERN]:
        head = f"There is {_NO_PATTERN}: the failing dies are {structure}"
    else:
        names = join(patterns) if patterns else pattern_type
        head = f"The failing dies form {article(structure)}, {article(names)} pattern"
    return f"{head}; the failure is {density}, with {texture}." + _others(other, "Also")


def root_cause_sentence(rubric: Rubric) -> str:
    cause = rubric.root_cause
    return _root_cause_sentence(_names(cause.must_hit), tuple(cause.equipment_category), cause.process_step)


@lru_cache(maxsize=4096)
def _root_cause_sentence(must_hit: tuple[str, ...], equipment_category: tuple[str, ...], process_step: str) -> str:
    equipment = [t for t in must_hit if t in equipment_category]
    facts = [t for t in must_hit if t not in equipment_category]
    if equipment:
        head = f"Investigate {join(equipment)} first: the signature points to {process_step}."
    else:
        head = f"No equipment needs investigating: {process_step}."
    return head + (f" Likely causes: {join(facts)}." if facts else "")


@dataclass(frozen=True)
class FactSentences:
    """A rubric's four fact sentences. The builder writes them once per wafer and passes them to both the describer
    and the question writer, which would otherwise each write them again."""

    types: str
    spatial: str
    morphology: str
    root_cause: str

    @classmethod
    def of(cls, rubric: Rubric) -> "FactSentences":
        return cls(type_sentence(rubric.defect_types), spatial_sentence(rubric), morphology_sentence(rubric),
                   root_cause_sentence(rubric))
