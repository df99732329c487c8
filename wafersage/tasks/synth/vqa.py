"""Stage 2: 8–10 question–answer pairs per wafer, written from its rubric.

Per wafer: defect type 1–2, spatial 2–3, morphology 2–3, root cause 1–2 and consistency (yes/no) 1–2 items; the
counts above the minimum are drawn with the caller's ``rng``, as are the templates and their phrasings.

Questions never name or hint a defect type: no template uses a pattern word (:data:`vocab.HINT_WORDS`: "center",
"edge", "ring", "line", "cluster", ...); location is asked with clock positions, quadrants and "radial zone", and
every question passes :func:`check_question`.

Reference answers are 1–3 sentences from :mod:`wafersage.tasks.synth.phrasing`, so each names every must-hit term of its
dimension and none of its must-avoid terms. Every item lists its ``targets``: the must-hit terms its question asks
for (a clock question the clock terms, a density question the density term, a multi-fact question all of them;
the whole dimension when the wanted kind is missing), which the scorer checks; the answer names all of them.

A consistency item states a premise that is true or false for the map (``expected_yes``), drawn from several fact
kinds so that the question's words alone do not give the answer away (:mod:`wafersage.tasks.synth.premises`); its
answer starts "Yes." or "No." and then states the facts of its dimension, and its targets are the terms that
decide the premise.

Difficulty rules (:func:`difficulty_of`), from the map and the question:

* a map is *mixed* when it has two or more patterns, *subtle* when its pattern is small (see
  :func:`wafersage.tasks.synth.facts.is_subtle`); a question is *multi-fact* when it asks for several facts at once
  (e.g. "zone, clock position and distribution");
* **easy**: one fact about a single clear pattern (or a normal wafer);
* **hard**: a multi-fact question about a mixed or subtle map, or any question about a map with three or more
  patterns;
* **medium**: everything else (one fact on a mixed or subtle map, several facts on a clear single pattern).

Item ids are ``{wafer_id}-q{qa_index}`` with ``qa_index`` counting from 0 in the order written.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Literal

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from .facts import is_subtle
from ..geometry.measure import Geometry
from .premises import consistency_items
from .phrasing import FactSentences, join
from .prompt_templates import generate_validated, render_prompt
from ..bench.schema import CATEGORIES, DIMENSIONS, Difficulty, Rubric, VQAItem
from .vocab import (CLOCK_TERM_RE, CLOCK_TERMS, DENSITY_TERMS, DISTRIBUTION_TERMS, HINT_RE, HINT_WORDS, NUMBER_WORDS,
                    QUADRANT_TERMS, STRUCTURE_TERMS, ZONE_TERMS)
from ..maps.wafer import LABELS, WaferMap

CATEGORY_RANGES: dict[str, tuple[int, int]] = {
    "defect_type": (1, 2), "spatial": (2, 3), "morphology": (2, 3), "root_cause": (1, 2), "consistency": (1, 2),
}
ITEMS_RANGE = (8, 10)


def check_question(question: str, labels: list[str] | tuple[str, ...]) -> None:
    """Raise ValueError naming the word if ``question`` names or hints any of ``labels``."""
    leak = _leak(question, tuple(labels))
    if leak:
        raise ValueError(f"question hints the defect type {leak[0]!r} with the word {leak[1]!r}: {question!r}; "
                         "ask with clock positions, quadrants or 'radial zone' instead")


@lru_cache(maxsize=8192)
def _leak(question: str, labels: tuple[str, ...]) -> tuple[str, str] | None:
    for label in labels:
        found = HINT_RE[label].search(question)
        if found:
            return label, found.group(0)
    return None


def difficulty_of(n_patterns: int, subtle: bool, multi_fact: bool) -> Difficulty:
    """The documented difficulty rule (see the module docstring)."""
    if n_patterns >= 3 or ((n_patterns >= 2 or subtle) and multi_fact):
        return "hard"
    if n_patterns >= 2 or subtle or multi_fact:
        return "medium"
    return "easy"


_ZONE_NAMES = {t.term for t in ZONE_TERMS.values()}
_CLOCK_NAMES = {t.term for t in CLOCK_TERMS.values()}
_DISTRIBUTION_NAMES = {t.term for t in DISTRIBUTION_TERMS.values()}
_STRUCTURE_NAMES = {t.term for t in STRUCTURE_TERMS.values()}
_DENSITY_NAMES = {t.term for t in DENSITY_TERMS.values()}


@dataclass(frozen=True)
class _Context:
    rubric: Rubric
    geom: Geometry
    clocks: tuple[int, ...]
    avoid_clocks: tuple[int, ...]
    types: str  # the fact sentences of the types and of each dimension, written once per wafer
    spatial: str
    morphology: str
    root_cause: str
    terms: dict[str, tuple[str, ...]]  # target groups: must-hit term names by kind of fact (shared: read only)

    @classmethod
    def of(cls, rubric: Rubric, geom: Geometry, sentences: FactSentences | None = None) -> "_Context":
        said = sentences or FactSentences.of(rubric)
        avoid_clocks = _clocks_in(tuple(rubric.spatial.must_avoid))
        return cls(rubric, geom, tuple(rubric.spatial.clock_positions), avoid_clocks, said.types, said.spatial,
                   said.morphology, said.root_cause, _target_groups(rubric))

    def targets(self, *kinds: str) -> list[str]:
        """The term names of the first kind this rubric has terms of; else every term of the kind's dimension."""
        for kind in kinds:
            if self.terms[kind]:
                return list(self.terms[kind])
        return list(self.terms[_DIMENSION_OF[kinds[0]]])


_DIMENSION_OF = {"location": "spatial", "zone": "spatial", "clock": "spatial", "distribution": "spatial", "spatial": "spatial",
                 "structure": "morphology", "density": "morphology", "morphology": "morphology",
                 "equipment": "root_cause", "cause": "root_cause", "root_cause": "root_cause"}


def _target_groups(rubric: Rubric) -> dict[str, tuple[str, ...]]:
    spatial, morphology, root_cause = (tuple(t.term for t in rubric.dimension(d).must_hit) for d in DIMENSIONS)
    return _groups_of_terms(spatial, morphology, root_cause, tuple(rubric.root_cause.equipment_category))


@lru_cache(maxsize=4096)
def _groups_of_terms(spatial: tuple[str, ...], morphology: tuple[str, ...], root: tuple[str, ...],
                     equipment_category: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Must-hit term names by kind of fact (cached: wafers share few term lists, so callers must not change it)."""
    equipment = set(equipment_category)
    shape_facts = [t for t in morphology if t in _STRUCTURE_NAMES or t in _DENSITY_NAMES]
    return {
        "location": tuple(t for t in spatial if t in _ZONE_NAMES or t in _CLOCK_NAMES),
        "zone": tuple(t for t in spatial if t in _ZONE_NAMES), "clock": tuple(t for t in spatial if t in _CLOCK_NAMES),
        "distribution": tuple(t for t in spatial if t in _DISTRIBUTION_NAMES), "spatial": tuple(spatial),
        "structure": tuple(t for t in morphology if t in _STRUCTURE_NAMES),
        "density": tuple(t for t in morphology if t in _DENSITY_NAMES),
        "morphology": tuple(shape_facts or morphology),
        "equipment": tuple(t for t in root if t in equipment), "cause": tuple(t for t in root if t not in equipment),
        "root_cause": tuple(root),
    }


@dataclass(frozen=True)
class _Template:
    category: str
    phrasings: tuple[str, ...]
    multi_fact: bool
    answer: Callable[[_Context], str]
    targets: tuple[str, ...] = ()  # kinds of fact asked, first present wins (see _Context.targets); () = none
    focus: tuple[str, ...] = ()  # the fact slots the question asks for (what the rule scorer grades)
    applies: Callable[[_Context], bool] = lambda ctx: True


def _clock_lead(ctx: _Context) -> str:
    return f"Around {join([CLOCK_TERMS[k].term for k in ctx.clocks])}. " + ctx.spatial


def _top_quadrant(geom: Geometry) -> tuple[str, float]:
    best = max(geom.quadrant_share, key=geom.quadrant_share.__getitem__)
    return best, geom.quadrant_share[best]


def _quadrant_lead(ctx: _Context) -> str:
    return f"Mostly the {QUADRANT_TERMS[_top_quadrant(ctx.geom)[0]].term}. " + ctx.spatial


def _zone_lead(ctx: _Context) -> str:
    zone = ctx.rubric.spatial.zone
    lead = "No single radial zone stands out. " if zone in ("whole wafer", "none") else ""
    return lead + ctx.spatial


def _types(ctx: _Context) -> str:
    return ctx.types


TEMPLATES: tuple[_Template, ...] = (
    _Template("defect_type", (
        "What defect pattern type does this wafer map show?",
        "Which failure class best describes this wafer map?",
        "Classify the failure signature on this wafer bin map.",
    ), False, _types),
    _Template("defect_type", (
        "How many distinct failure signatures does this wafer show, and which classes are they?",
        "Name every defect class present on this wafer map; several may overlap.",
        "Which WM-811K defect classes apply to this map? List all that are present.",
    ), True, _types),
    _Template("spatial", (
        "Where on the wafer do most failing dies lie?",
        "Describe where the failing dies are located on this wafer map.",
        "Which part of the wafer is affected by the failures?",
    ), False, lambda ctx: ctx.spatial, ("location", "distribution"), ("zone",)),
    _Template("spatial", (
        "Which radial zone (inner, middle or outer) holds most of the failing dies?",
        "In terms of distance from the wafer's midpoint, where do the failures occur?",
        "How far from the wafer's midpoint are most failing dies, by radial zone?",
    ), False, _zone_lead, ("zone", "distribution"), ("zone",)),
    _Template("spatial", (
        "How are the failing dies distributed over the wafer?",
        "Are the failing dies concentrated in one place, spread symmetrically around the midpoint, or spread over "
        "the whole map?",
        "Describe the spatial distribution of the failing dies.",
    ), False, lambda ctx: ctx.spatial, ("distribution",), ("extent",)),
    _Template("spatial", (
        "At which clock position are the failures concentrated (12 o'clock at the top)?",
        "Using clock positions, where do the failing dies sit?",
        "Which clock direction, counted clockwise from 12 o'clock at the top, points to the failures?",
    ), False, _clock_lead, ("clock",), ("clock",), lambda ctx: bool(ctx.clocks)),
    _Template("spatial", (
        "Which quadrant of the wafer contains most of the failing dies?",
        "Which quarter of the wafer is most affected?",
    ), False, _quadrant_lead, ("clock",), ("clock",),
        lambda ctx: bool(ctx.clocks) and _top_quadrant(ctx.geom)[1] >= 0.5),
    _Template("spatial", (
        "Give the location of the failures: radial zone, clock position if any, and how they are distributed.",
        "Summarise the spatial signature of the failures (zone, direction and distribution).",
    ), True, lambda ctx: ctx.spatial, ("spatial",), ("zone", "clock", "extent")),
    _Template("morphology", (
        "What shape do the failing dies form?",
        "Describe the geometric structure of the failure pattern.",
        "What does the failing region look like?",
    ), False, lambda ctx: ctx.morphology, ("structure",), ("shape",)),
    _Template("morphology", (
        "How densely packed are the failing dies within the affected area?",
        "Is the failure dense or sparse?",
    ), False, lambda ctx: ctx.morphology, ("density",), ("density",)),
    _Template("morphology", (
        "Are the failing dies grouped together or apart from each other?",
        "Describe the texture of the failing area.",
    ), False, lambda ctx: ctx.morphology, ("structure",), ("texture",)),
    _Template("morphology", (
        "Characterise the morphology of the failure signature: its shape, density and texture.",
        "Describe the failure pattern's shape, how dense it is and its texture.",
    ), True, lambda ctx: ctx.morphology, ("morphology",), ("shape", "density", "texture")),
    _Template("root_cause", (
        "Which equipment category should be investigated first for this failure signature?",
        "Which tool group most likely caused this signature?",
    ), False, lambda ctx: ctx.root_cause, ("equipment",), ("equipment",)),
    _Template("root_cause", (
        "Which process step most likely produced this failure signature?",
        "At which process step would you look for the origin of these failures?",
    ), False, lambda ctx: ctx.root_cause, ("cause",), ("process",)),
    _Template("root_cause", (
        "What are the most likely root causes of this failure signature, and at which process step and equipment?",
        "Give the probable equipment, process step and causes behind this signature.",
    ), True, lambda ctx: ctx.root_cause, ("root_cause",), ("equipment", "process")),
)
_BY_CATEGORY = {c: tuple(t for t in TEMPLATES if t.category == c) for c in CATEGORIES}


_MIN_COUNTS = {c: lo for c, (lo, _) in CATEGORY_RANGES.items()}
_ROOM = [c for c, (lo, hi) in CATEGORY_RANGES.items() for _ in range(hi - lo)]  # one entry per optional item


def _counts(rng: np.random.Generator) -> dict[str, int]:
    counts = dict(_MIN_COUNTS)
    extra = int(rng.integers(ITEMS_RANGE[0], ITEMS_RANGE[1] + 1)) - sum(counts.values())
    for i in rng.permutation(len(_ROOM))[:extra].tolist():
        counts[_ROOM[i]] += 1
    return counts


@lru_cache(maxsize=4096)
def _clocks_in(terms: tuple[str, ...]) -> tuple[int, ...]:
    found = []
    for text in terms:
        m = CLOCK_TERM_RE.search(text)
        if m:
            word = m.group(1).lower()
            k = (NUMBER_WORDS.index(word) or 12) if word in NUMBER_WORDS else int(word)
            if k not in found:
                found.append(k)
    return tuple(found)


_ITEM_LIST = TypeAdapter(list[VQAItem])


def make_items(wafer: WaferMap, geom: Geometry, rubric: Rubric, *, rng: np.random.Generator, image: str,
               split: str, sentences: FactSentences | None = None) -> list[VQAItem]:
    """Write 8–10 VQA items for one wafer from its rubric (see the module docstring for the rules). ``sentences``:
    the rubric's :class:`~.phrasing.FactSentences` when the caller has already written them (the builder does)."""
    ctx = _Context.of(rubric, geom, sentences)
    types = list(rubric.defect_types)
    n_patterns = sum(t != "none" for t in types)
    subtle = is_subtle(geom, tuple(types))
    banned = tuple(dict.fromkeys([*types, *wafer.labels]))
    labels = list(wafer.labels) or types
    rows: list[tuple[str, str, str, str, bool, bool | None, list[str], tuple[str, ...]]] = []  # + multi, yes,
    # targets, focus
    for category, count in _counts(rng).items():
        if category == "consistency":
            for premise, answer in consistency_items(ctx, count, rng):
                rows.append((category, premise.dimension, premise.question, answer, False, premise.truth,
                             premise.targets, ()))
            continue
        pool = [t for t in _BY_CATEGORY[category] if t.applies(ctx)]
        for index in rng.permutation(len(pool))[:count].tolist():
            template = pool[index]
            question = template.phrasings[int(rng.integers(len(template.phrasings)))]
            targets = ctx.targets(*template.targets) if template.targets else []
            rows.append((category, category, question, template.answer(ctx), template.multi_fact, None, targets,
                         template.focus))
    for row in rows:
        check_question(row[2], banned)
    # one validation call for the wafer's items (~20% faster than one VQAItem(...) each)
    return _ITEM_LIST.validate_python([dict(
        id=f"{wafer.id}-q{qa_index}", wafer_id=wafer.id, image=image, question=question, answer=answer,
        category=category, dimension=dimension, difficulty=difficulty_of(n_patterns, subtle, multi),
        labels=labels, qa_index=qa_index, split=split, expected_yes=yes, targets=targets, focus=list(focus),
    ) for qa_index, (category, dimension, question, answer, multi, yes, targets, focus) in enumerate(rows)])


class VQAResult(BaseModel):
    """Model-written items for one wafer, or the reason they failed. Failed results are kept, never dropped."""

    wafer_id: str
    items: list[VQAItem] = Field(default_factory=list)
    status: Literal["ok", "failed"]
    reason: str | None = None
    attempts: int = Field(ge=0)


def items_from_json(data: object, rubric: Rubric, *, image: str, split: str, labels: list[str]) -> list[VQAItem]:
    """Validate a model's JSON list of pairs against the Stage-2 rules (counts, categories, no type leak)."""
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list):
        raise ValueError(f"expected a JSON list of question objects, got {type(data).__name__}")
    if not ITEMS_RANGE[0] <= len(data) <= ITEMS_RANGE[1]:
        raise ValueError(f"{len(data)} pairs; write {ITEMS_RANGE[0]} to {ITEMS_RANGE[1]}")
    banned = list(dict.fromkeys([*rubric.defect_types, *labels]))
    items = []
    for qa_index, raw in enumerate(data):
        if not isinstance(raw, dict):
            raise ValueError(f"pair {qa_index} is not an object")
        category = raw.get("category")
        if category not in CATEGORY_RANGES:
            raise ValueError(f"pair {qa_index}: category {category!r} is not one of {', '.join(CATEGORY_RANGES)}")
        dimension = raw.get("dimension") or ("spatial" if category == "consistency" else category)
        yes = raw.get("expected_yes") if category == "consistency" else None
        if category == "consistency" and not isinstance(yes, bool):
            raise ValueError(f"pair {qa_index}: a consistency question needs expected_yes true or false")
        check_question(str(raw.get("question", "")), banned)
        try:
            items.append(VQAItem(
                id=f"{rubric.wafer_id}-q{qa_index}", wafer_id=rubric.wafer_id, image=image,
                question=raw.get("question"), answer=raw.get("answer"), category=category, dimension=dimension,
                difficulty=raw.get("difficulty"), labels=labels, qa_index=qa_index, split=split, expected_yes=yes))
        except ValidationError as exc:
            raise ValueError(f"pair {qa_index}: {exc}") from None
    for category, (lo, hi) in CATEGORY_RANGES.items():
        n = sum(it.category == category for it in items)
        if not lo <= n <= hi:
            raise ValueError(f"{n} {category} pairs; write {lo} to {hi}")
    return items


class ModelVQAWriter:
    """Stage 2 by a model: ``generate(prompt) -> reply`` (JSON list); invalid replies are retried with the error."""

    def __init__(self, generate: Callable[[str], str], max_retries: int = 2):
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.generate = generate
        self.max_retries = max_retries

    def prompt(self, rubric: Rubric) -> str:
        from .rubric import rubric_json

        banned = [w for label in LABELS for w in HINT_WORDS[label][:2]]
        return render_prompt("vqa_writer", wafer_id=rubric.wafer_id, rubric_json=rubric_json(rubric),
                             min_items=ITEMS_RANGE[0], max_items=ITEMS_RANGE[1], banned=list(dict.fromkeys(banned)))

    def write(self, rubric: Rubric, *, image: str, split: str, labels: list[str] | None = None) -> VQAResult:
        labels = list(labels) if labels else list(rubric.defect_types)
        out = generate_validated(
            self.generate, self.prompt(rubric),
            lambda data: items_from_json(data, rubric, image=image, split=split, labels=labels), self.max_retries)
        return VQAResult(wafer_id=rubric.wafer_id, items=out.value or [], reason=out.reason,
                         status="ok" if out.value is not None else "failed", attempts=out.attempts)
