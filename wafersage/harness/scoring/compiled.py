"""Rubric terms prepared for the rule scorer: which must-hit terms an item is scored on, and how each is matched.

:func:`scored_terms` picks an item's terms: its ``targets`` when it has them, else every must-hit term of the
dimension (less, in morphology, the terms that ARE a defect-type label, when others remain). A
:class:`CompiledTerm` is found through its closed-vocabulary values (:mod:`wafersage.harness.scoring.claims`: exact,
synonym-aware, un-negated) or, for open wordings, by :func:`wafersage.harness.scoring.matching.term_score`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable

from ...tasks.bench.schema import Rubric, Term
from ...tasks.synth.vocab import PATTERN_TERMS
from ...tasks.maps.wafer import LABELS
from .claims import Truth, closed_value
from .matching import TYPE_PHRASES, exact_hit, normalise, term_score

#: normalised must-hit terms that only name a defect type (dropped from whole-dimension morphology scoring)
TYPE_LABEL_TERMS = frozenset(
    {normalise(PATTERN_TERMS[label].term).strip() for label in PATTERN_TERMS}
    | {normalise(label).strip() for label in LABELS}
    | {phrase for phrases in TYPE_PHRASES.values() for phrase in phrases}
)


@dataclass(frozen=True)
class CompiledTerm:
    """A term prepared for matching: its closed-vocabulary values (found through :func:`claims.claims`, so any
    synonym counts and longer phrases win) and its other wordings (open: exact or fuzzy)."""

    name: str
    values: frozenset[tuple[str, str]]  # (slot, value) of the variants that are closed-vocabulary wordings
    open_wordings: tuple[str, ...]  # normalised variants that are not

    @classmethod
    def of(cls, name: str, variants: Iterable[str], dimension: str) -> "CompiledTerm":
        words = dict.fromkeys(normalise(v).strip() for v in variants)
        values = {w: closed_value(w, dimension) for w in words if w}
        return cls(name, frozenset(v for v in values.values() if v), tuple(w for w, v in values.items() if v is None))

    def score(self, text: str, said: set[tuple[str, str]]) -> float:
        """100 when found (closed: exactly, un-negated), else the best fuzzy score of an open wording, else 0."""
        if self.values & said:
            return 100.0
        best = 0.0
        for wording in self.open_wordings:
            best = max(best, term_score(wording, text) if not self.values else 100.0 * exact_hit(wording, text))
            if best >= 100.0:
                break
        return best


@dataclass(frozen=True)
class CompiledDimension:
    """A rubric dimension (or an item's targets in it) prepared for matching: hit and avoid terms, off-rubric
    vocabulary, the closed-vocabulary truth."""

    hits: tuple[CompiledTerm, ...]
    avoid: tuple[CompiledTerm, ...]
    off_rubric: frozenset[str]  # vocabulary terms that count as extras for this rubric
    clocks: frozenset[int]  # true clock positions (spatial only)
    truth: Truth

    @cached_property
    def off_rubric_long(self) -> tuple[str, ...]:
        """Off-rubric terms of more than four words (the rest are looked up among the answer's word runs)."""
        return tuple(t for t in self.off_rubric if t.count(" ") >= 4)

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.hits)


def scored_terms(rubric: Rubric, dimension: str, targets: tuple[str, ...]) -> list[Term]:
    """The must-hit terms an item is scored on (see the module docstring); unknown targets are a clear error."""
    must_hit = list(rubric.dimension(dimension).must_hit)
    if targets:
        by_name = {t.term: t for t in must_hit}
        unknown = [t for t in targets if t not in by_name]
        if unknown:
            raise ValueError(f"wafer {rubric.wafer_id}: targets {unknown} are not must-hit terms of its {dimension} "
                             f"rubric ({sorted(by_name)}); rebuild the benchmark or fix the item's targets")
        return [by_name[t] for t in targets]
    if dimension == "morphology":
        return [t for t in must_hit if normalise(t.term).strip() not in TYPE_LABEL_TERMS] or must_hit
    return must_hit
