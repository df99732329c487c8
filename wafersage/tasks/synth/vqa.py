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
decide the premise. The premises are drawn first, and no other question of the wafer asks a fact slot a premise
states, true or false (:data:`~.premises.PREMISE_SLOTS` against each template's ``focus``): a premise is taken
only while every other category keeps enough templates for its count.

With ``spares`` (a wafer of a split the blind filter drops from, :mod:`wafersage.tasks.blindness.filter`) every
category is written up to its maximum: the drawn items come first, the spares after them, to replace the items
the filter drops.

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
from typing import Callable

import numpy as np
from pydantic import TypeAdapter

from .facts import is_subtle
from ..geometry.measure import Geometry
from .premises import PREMISE_SLOTS, decided_kinds, write_premise
from ..blindness.answers import ItemRecord, asked_value
from ..blindness.population import DEFAULT_THRESHOLDS, PremiseThresholds, numeric_values
from .phrasing import FactSentences, join
from ..bench.schema import CATEGORIES, DIMENSIONS, Difficulty, Rubric, VQAItem
from .vocab import (CLOCK_TERM_RE, CLOCK_TERMS, DENSITY_TERMS, DISTRIBUTION_TERMS, HINT_RE, NUMBER_WORDS,
                    QUADRANT_TERMS, STRUCTURE_TERMS, ZONE_TERMS)
from ..maps.wafer import WaferMap

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


@dataclass
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
    thresholds: PremiseThresholds
    numeric: tuple[float, float, float]
    zone_choice: tuple[str, bool] | None = None  # set by premises.decided_kinds

    @classmethod
    def of(cls, rubric: Rubric, geom: Geometry, sentences: FactSentences | None = None,
           thresholds: PremiseThresholds = DEFAULT_THRESHOLDS) -> "_Context":
        said = sentences or FactSentences.of(rubric)
        avoid_clocks = _clocks_in(tuple(rubric.spatial.must_avoid))
        return cls(rubric, geom, tuple(rubric.spatial.clock_positions), avoid_clocks, said.types, said.spatial,
                   said.morphology, said.root_cause, _target_groups(rubric), thresholds, numeric_values(geom))

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
#: each template's key in records and the manifest's answer balance: category/index in it:focus slots
TEMPLATE_KEYS: dict[int, str] = {id(t): f"{c}/{i}:{'+'.join(t.focus) or 'types'}"
                                 for c in CATEGORIES for i, t in enumerate(_BY_CATEGORY[c])}


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
#: a wafer's value of each spread slot, as the survey counts it (blindness.population.SPREAD_SLOTS)
_SLOT_VALUE: dict[str, Callable[[Rubric], str]] = {
    "density": lambda rubric: rubric.facts.density if rubric.facts else "",
    "texture": lambda rubric: rubric.facts.texture if rubric.facts else "",
    "extent": lambda rubric: rubric.spatial.distribution,
}


@dataclass
class WrittenItems:
    """A wafer's items, and their records for the blind filter and the answer balance (same order)."""

    items: list[VQAItem]
    records: list[ItemRecord]


def _premise_kinds(ctx: _Context, n: int, pools: dict[str, list[_Template]], rng: np.random.Generator) -> list[str]:
    """Up to ``n`` premise kinds the map decides, in a random order, each taken only while every other category
    keeps at least its minimum of templates that ask none of the premises' slots. Where the population's asking
    probabilities leave none, the kinds are drawn without them; a map that decides no kind at all gets a share
    premise all the same (:func:`~.premises.write_premise` then compares strictly)."""
    for even in (True, False):
        kinds = decided_kinds(ctx, rng, even)
        chosen: list[str] = []
        for i in rng.permutation(len(kinds)).tolist():
            if len(chosen) == n:
                break
            slots = frozenset().union(*(PREMISE_SLOTS[k] for k in (*chosen, kinds[i])))
            if all(sum(not slots & set(t.focus) for t in pool) >= _MIN_COUNTS[c] for c, pool in pools.items()):
                chosen.append(kinds[i])
        if chosen:
            return chosen
    return ["share"]


def _fit_counts(counts: dict[str, int], capacity: dict[str, int]) -> dict[str, int]:
    """``counts`` with each category cut to its ``capacity`` (templates left to it) and the items cut moved, in
    category order, to categories with room, so the wafer keeps its number of items."""
    fitted = {c: min(n, capacity[c]) for c, n in counts.items()}
    surplus = sum(counts.values()) - sum(fitted.values())
    for c, (_, hi) in CATEGORY_RANGES.items():
        more = min(surplus, min(hi, capacity[c]) - fitted[c])
        if more > 0:
            fitted[c] += more
            surplus -= more
    return fitted


def _spread(pool: list[_Template], ctx: _Context, rng: np.random.Generator, least: int) -> list[_Template]:
    """``pool`` less the templates a draw leaves out: one asking a spread slot stays with the probability
    :meth:`~..blindness.population.PremiseThresholds.spread_weight` of this wafer's value, so the values it asks
    are spread over the benchmark as evenly as the population allows; left-out templates come back, in pool
    order, while fewer than ``least`` (the category's minimum) remain. It runs after the premises are chosen,
    so the choice of premise kinds does not depend on the wafer's values (which would let a premise's wording
    tell its verdict); where premises leave a category few templates, the spread gives way."""
    draws = rng.random(len(pool))
    stays = [not (len(t.focus) == 1 and t.focus[0] in _SLOT_VALUE)
             or u < ctx.thresholds.spread_weight(t.focus[0], _SLOT_VALUE[t.focus[0]](ctx.rubric))
             for t, u in zip(pool, draws)]
    for i in range(len(pool)):
        if sum(stays) >= least:
            break
        stays[i] = True
    return [t for t, stay in zip(pool, stays) if stay]


def write_items(wafer: WaferMap, geom: Geometry, rubric: Rubric, *, rng: np.random.Generator, image: str,
                split: str, sentences: FactSentences | None = None,
                thresholds: PremiseThresholds = DEFAULT_THRESHOLDS, spares: bool = False) -> WrittenItems:
    """Write 8–10 VQA items for one wafer from its rubric, plus spares with ``spares`` (see the module docstring).
    ``sentences``: the rubric's :class:`~.phrasing.FactSentences` when the caller has already written them (the
    builder does); ``thresholds``: the build's numeric premise thresholds."""
    ctx = _Context.of(rubric, geom, sentences, thresholds)
    types = list(rubric.defect_types)
    n_patterns = sum(t != "none" for t in types)
    subtle = is_subtle(geom, tuple(types))
    banned = tuple(dict.fromkeys([*types, *wafer.labels]))
    labels = list(wafer.labels) or types
    drawn = _counts(rng)
    pools = {c: [t for t in _BY_CATEGORY[c] if t.applies(ctx)] for c in CATEGORIES if c != "consistency"}
    kinds = _premise_kinds(ctx, CATEGORY_RANGES["consistency"][1] if spares else drawn["consistency"], pools, rng)
    stated = frozenset().union(*(PREMISE_SLOTS[k] for k in kinds))
    pools = {c: _spread([t for t in pool if not stated & set(t.focus)], ctx, rng, _MIN_COUNTS[c])
             for c, pool in pools.items()}
    capacity = {"consistency": len(kinds), **{c: len(pool) for c, pool in pools.items()}}
    counts = _fit_counts(drawn, capacity)
    wanted = {c: min(CATEGORY_RANGES[c][1], capacity[c]) if spares else n for c, n in counts.items()}
    # (category, dimension, question, answer, multi, yes, targets, focus, template key), primary rows first
    rows: tuple[list, list] = ([], [])
    for category in CATEGORY_RANGES:
        if category == "consistency":
            truths = [True, False] if len(kinds) == 2 else [bool(rng.random() < 0.5)]
            rng.shuffle(truths)
            for k, (kind, truth) in enumerate(zip(kinds, truths)):
                premise, answer = write_premise(ctx, kind, truth, rng)
                rows[k >= counts[category]].append((category, premise.dimension, premise.question, answer, False,
                                                     truth, premise.targets, (), f"consistency/{kind}"))
            continue
        pool = pools[category]
        for k, index in enumerate(rng.permutation(len(pool))[:wanted[category]].tolist()):
            template = pool[index]
            question = template.phrasings[int(rng.integers(len(template.phrasings)))]
            targets = ctx.targets(*template.targets) if template.targets else []
            rows[k >= counts[category]].append((category, category, question, template.answer(ctx),
                                                template.multi_fact, None, targets, template.focus,
                                                TEMPLATE_KEYS[id(template)]))
    written = [(row, spare) for spare in (False, True) for row in rows[spare]]
    for row, _ in written:
        check_question(row[2], banned)
    # one validation call for the wafer's items (~20% faster than one VQAItem(...) each)
    items = _ITEM_LIST.validate_python([dict(
        id=f"{wafer.id}-q{qa_index}", wafer_id=wafer.id, image=image, question=question, answer=answer,
        category=category, dimension=dimension, difficulty=difficulty_of(n_patterns, subtle, multi),
        labels=labels, qa_index=qa_index, split=split, expected_yes=yes, targets=targets, focus=list(focus),
    ) for qa_index, ((category, dimension, question, answer, multi, yes, targets, focus, _), _) in enumerate(written)])
    normal = types == ["none"]
    records = [ItemRecord(item_id=item.id, wafer_id=wafer.id, split=split, category=item.category, template=row[8],
                          question=item.question, truth=asked_value(item.category, item.focus, rubric, row[5]),
                          spare=spare, normal=normal) for item, (row, spare) in zip(items, written)]
    return WrittenItems(items, records)


def make_items(wafer: WaferMap, geom: Geometry, rubric: Rubric, *, rng: np.random.Generator, image: str,
               split: str, sentences: FactSentences | None = None,
               thresholds: PremiseThresholds = DEFAULT_THRESHOLDS) -> list[VQAItem]:
    """The 8–10 items of :func:`write_items` without spares or records."""
    return write_items(wafer, geom, rubric, rng=rng, image=image, split=split, sentences=sentences,
                       thresholds=thresholds).items
