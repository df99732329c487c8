"""Root-cause knowledge: defect pattern -> equipment categories, process step, potential causes.

The table lives in ``data/root_causes.yaml`` (engineering heuristics, editable). A fab passes its own file with the
same layout to :func:`load_knowledge`; every label must be present and every equipment name must be one of the
file's ``equipment_categories``.
"""
from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path
from typing import Iterable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ...configio import read_yaml_mapping
from ..bench.schema import Term
from ..maps.wafer import LABELS, canonical_label

DEFAULT_PATH = Path(__file__).with_name("data") / "root_causes.yaml"


class KnowledgeError(ValueError):
    """A knowledge file is missing, unreadable or inconsistent; the message names the file and the fix."""


class PatternKnowledge(BaseModel):
    """What one defect pattern points to."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    equipment: list[str] = Field(description="equipment categories to investigate, most likely first")
    process_step: str = Field(min_length=1, description="the process step the signature points to")
    causes: list[str] = Field(min_length=1, description="potential causes, most likely first")
    key_terms: list[list[str]] = Field(min_length=1, description="must-hit facts: [term, synonym, ...] each")
    avoid: list[str] = Field(default_factory=list, description="equipment or causes the signature contradicts")

    @model_validator(mode="after")
    def _check(self) -> "PatternKnowledge":
        if any(not group or not all(w.strip() for w in group) for group in self.key_terms):
            raise ValueError("every key_terms entry must be a non-empty list of non-empty phrases")
        said = {w.lower() for w in self.equipment} | {w.lower() for g in self.key_terms for w in g}
        clash = sorted(said & {a.lower() for a in self.avoid})
        if clash:
            raise ValueError(f"avoid repeats terms this pattern names: {clash}")
        return self

    @cached_property
    def terms(self) -> list[Term]:
        return [Term(term=group[0], synonyms=group[1:]) for group in self.key_terms]


class Knowledge(BaseModel):
    """The whole table plus the equipment vocabulary. Build with :func:`load_knowledge`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    equipment_categories: dict[str, list[str]]
    patterns: dict[str, PatternKnowledge]
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> "Knowledge":
        missing = [label for label in LABELS if label not in self.patterns]
        if missing:
            raise ValueError(f"no entry for labels {missing}; add them under 'patterns'")
        unknown = sorted({e for p in self.patterns.values() for e in p.equipment} - set(self.equipment_categories))
        if unknown:
            raise ValueError(f"equipment {unknown} not among equipment_categories {list(self.equipment_categories)}")
        return self

    @cached_property
    def _equipment_terms(self) -> dict[str, Term]:
        return {name: Term(term=name, synonyms=list(syn)) for name, syn in self.equipment_categories.items()}

    def equipment_term(self, category: str) -> Term:
        return self._equipment_terms[category]

    def for_labels(self, labels: Iterable[str]) -> list[PatternKnowledge]:
        return [self.patterns[label] for label in labels]


def load_knowledge(path: str | Path | None = None) -> Knowledge:
    """Read and check a knowledge YAML file (the packaged default when ``path`` is None)."""
    return _load(str(Path(path).resolve()) if path is not None else str(DEFAULT_PATH))


@lru_cache(maxsize=8)
def _load(path: str) -> Knowledge:
    raw = read_yaml_mapping(path, KnowledgeError, "knowledge file", "equipment_categories, patterns")
    patterns = raw.get("patterns") or {}
    try:
        raw["patterns"] = {canonical_label(k, record=path): v for k, v in patterns.items()}
        return Knowledge.model_validate(raw | {"source": path})
    except (ValidationError, ValueError) as exc:
        raise KnowledgeError(f"{path}: invalid knowledge file: {exc}; see wafersage/tasks/synth/data/root_causes.yaml "
                             "for the expected layout") from exc


def resolve_knowledge(knowledge: Knowledge | str | Path | None) -> Knowledge:
    """Accept a loaded table, a file path or None (the packaged default)."""
    return knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)
