"""Validated schemas of the benchmark: rubrics (Stage 1) and VQA items (Stage 2)."""
from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DIMENSIONS: tuple[str, ...] = ("spatial", "morphology", "root_cause")
CATEGORIES: tuple[str, ...] = ("defect_type", "spatial", "morphology", "root_cause", "consistency")
DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")
SPLITS: tuple[str, ...] = ("train", "val", "test")

Dimension = Literal["spatial", "morphology", "root_cause"]
Category = Literal["defect_type", "spatial", "morphology", "root_cause", "consistency"]
Difficulty = Literal["easy", "medium", "hard"]


class Term(BaseModel):
    """A must-hit fact: its canonical wording plus accepted synonyms ("4 o'clock", "four o'clock", …)."""

    model_config = ConfigDict(frozen=True)
    term: str = Field(min_length=1, max_length=60)
    synonyms: list[str] = Field(default_factory=list)

    @property
    def variants(self) -> list[str]:
        return [self.term, *self.synonyms]


class DimensionRubric(BaseModel):
    must_hit: list[Term] = Field(default_factory=list, max_length=12)
    must_avoid: list[str] = Field(default_factory=list, max_length=16)

    @model_validator(mode="after")
    def _disjoint(self) -> "DimensionRubric":
        hit: set[str] = set()
        for t in self.must_hit:
            hit |= _folded((t.term, *t.synonyms))
        clash = sorted(hit & _folded(tuple(self.must_avoid)))
        if clash:
            raise ValueError(f"terms both in must_hit and must_avoid: {clash}")
        return self


@lru_cache(maxsize=4096)
def _folded(phrases: tuple[str, ...]) -> frozenset[str]:
    """Phrases as the disjointness check compares them (cached: rubrics reuse the vocabulary's terms and lists)."""
    return frozenset(p.strip().lower() for p in phrases)


class SpatialRubric(DimensionRubric):
    zone: str
    distribution: str
    clock_positions: list[int] = Field(default_factory=list)
    coordinates_hint: str = ""


class MorphologyRubric(DimensionRubric):
    pattern_type: str
    density: str
    geometric_structure: str
    texture_description: str


class RootCauseRubric(DimensionRubric):
    equipment_category: list[str]
    process_step: str
    potential_causes: list[str]


class FactSheet(BaseModel):
    """The wafer's facts as structured values, read from its map and labels: what the rule scorer grades against
    (:mod:`wafersage.tasks.synth.facts` documents each rule). Several values where a mixture has several."""

    model_config = ConfigDict(frozen=True)
    types: list[str] = Field(description="defect labels; ['none'] for a normal wafer")
    zones: list[str] = Field(default_factory=list, description="affected radial zones (center, middle, edge)")
    avoid_zones: list[str] = Field(default_factory=list, description="zones clearly free of failures")
    clocks: list[int] = Field(default_factory=list, description="clock positions of directional patterns")
    density: str = Field(description="dense, moderate or sparse")
    texture: str = Field(description="clustered, scattered, mixed or clean")
    fail_ratio: float = Field(ge=0, le=1, description="share of dies that fail")
    zone_rates: dict[str, float] = Field(default_factory=dict,
                                         description="share of the dies failing in each radial zone")


class Rubric(BaseModel):
    """One wafer's rubric, following the paper's Stage-1 JSON with must-hit/must-avoid lists per dimension."""

    wafer_id: str
    defect_types: list[str]
    spatial: SpatialRubric
    morphology: MorphologyRubric
    root_cause: RootCauseRubric
    summary: str
    facts: FactSheet | None = Field(None, description="structured facts (format 3 and later); older benchmarks "
                                                       "have none and the scorer reads them from the maps")

    def dimension(self, name: str) -> DimensionRubric:
        return getattr(self, name)


class VQAItem(BaseModel):
    """One question about one wafer. ``image`` is relative to the benchmark folder."""

    id: str
    wafer_id: str
    image: str
    question: str
    answer: str
    category: Category
    dimension: Dimension | Literal["defect_type"]
    difficulty: Difficulty
    labels: list[str]
    qa_index: int
    split: Literal["train", "val", "test"]
    expected_yes: bool | None = None  # consistency items: the truth of the premise
    focus: list[str] = Field(
        default_factory=list,
        description="the fact slots the question asks for (zone, clock, extent, shape, density, texture, equipment, "
                    "process), set by its template; empty = read from the category and wording")
    targets: list[str] = Field(
        default_factory=list,
        description="the must-hit term names (Term.term) of its dimension that the question asks for; empty = the "
                    "whole dimension (a consistency item without targets is scored on its verdict alone)")
