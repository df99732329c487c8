"""Stage 1: one rubric per wafer — what a correct answer must state and what contradicts the map.

:func:`build_rubric` writes the rubric from the wafer's facts (:mod:`wafersage.tasks.synth.facts`) and the root-cause
table (:mod:`wafersage.tasks.synth.knowledge`). Must-hit terms are whole phrases from :mod:`wafersage.tasks.synth.vocab`
(never fields split on commas); must-avoid terms are chosen, not dumped: only what the geometry or the pattern
contradicts (wrong zones, the clock position opposite the defect, absent pattern types whose wording does not
overlap the present ones, equipment that does not fit), at most :data:`MAX_AVOID` per dimension, and never a
phrase that a correct description of this wafer would itself contain.

:class:`ModelRubricBuilder` asks any model (through a plain callable) to turn a Description into the same rubric.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Literal

from pydantic import BaseModel, Field, ValidationError

from .describe import Description
from .facts import WaferFacts, fact_sheet, wafer_facts
from ..geometry.measure import Geometry
from .knowledge import Knowledge, resolve_knowledge
from .prompt_templates import generate_validated, render_prompt
from ..bench.schema import MorphologyRubric, RootCauseRubric, Rubric, SpatialRubric, Term
from .vocab import (CLOCK_AVOID, CLOCK_TERMS, COMPATIBLE_WORDING, DENSITY_AVOID, DENSITY_TERMS, DISTRIBUTION_AVOID,
                    DISTRIBUTION_TERMS, PATTERN_AVOID, PATTERN_TERMS, STRUCTURE_TERMS, TYPE_NAMES, ZONE_AVOID,
                    ZONE_TERMS)
from ..maps.wafer import LABELS, PATTERNS, WaferMap, canonical_label

MAX_HIT = 8
MAX_AVOID = 8


def choose_avoid(hits: Iterable[Term], candidates: Iterable[str], said: Iterable[str] = (),
                 limit: int = MAX_AVOID) -> list[str]:
    """Keep candidates that neither overlap a must-hit variant (either way round) nor occur in ``said`` text."""
    key = (tuple((t.term, *t.synonyms) for t in hits), tuple(candidates), tuple(said), limit)
    return list(_choose_avoid(*key))


@lru_cache(maxsize=4096)
def _choose_avoid(hits: tuple[tuple[str, ...], ...], candidates: tuple[str, ...], said: tuple[str, ...],
                  limit: int) -> tuple[str, ...]:
    variants = [v.lower() for term in hits for v in term]
    texts = [s.lower() for s in said]
    chosen: list[str] = []
    for candidate in candidates:
        low = candidate.lower()
        if candidate in chosen or any(low in v or v in low for v in variants) or any(low in s for s in texts):
            continue
        chosen.append(candidate)
        if len(chosen) == limit:
            break
    return tuple(chosen)


def _spatial(f: WaferFacts) -> SpatialRubric:
    return SpatialRubric(**_spatial_fields(f.zones, f.distributions, f.clocks, f.avoid_zones, f.avoid_clocks),
                         clock_positions=list(f.clocks), coordinates_hint=f.coordinates_hint)


@lru_cache(maxsize=4096)
def _spatial_fields(zones: tuple[str, ...], distributions: tuple[str, ...], clocks: tuple[int, ...],
                    avoid_zones: tuple[str, ...], avoid_clocks: tuple[int, ...]) -> dict[str, object]:
    """The spatial rubric's fields but the wafer's own clock list and coordinates (maps share few combinations, so
    they are cached; the rubric's validation copies the lists)."""
    hits = [ZONE_TERMS[z] for z in zones] + [DISTRIBUTION_TERMS[d] for d in distributions]
    hits += [CLOCK_TERMS[k] for k in clocks]
    candidates = [w for z in avoid_zones for w in ZONE_AVOID[z]]
    candidates += [w for k in avoid_clocks for w in CLOCK_AVOID[k]]
    candidates += [w for d in distributions for w in DISTRIBUTION_AVOID[d]]
    if zones:
        zone = " and ".join(zones)
    else:
        zone = "whole wafer" if "wafer-wide" in distributions else "none"
    return dict(zone=zone, distribution=", ".join(distributions), must_hit=hits[:MAX_HIT],
                must_avoid=choose_avoid(hits, candidates))


def _morphology(f: WaferFacts) -> MorphologyRubric:
    return MorphologyRubric(**_morphology_fields(f.types, f.density, f.structure, f.texture))


@lru_cache(maxsize=4096)
def _morphology_fields(types: tuple[str, ...], density: str, structure_key: str, texture: str) -> dict[str, object]:
    """The morphology rubric's fields (cached like :func:`_spatial_fields`)."""
    structure = STRUCTURE_TERMS[structure_key]
    hits = [PATTERN_TERMS[t] for t in types] + [DENSITY_TERMS[density], structure]
    present = set(types)
    compatible = set().union(*(COMPATIBLE_WORDING.get(t, frozenset()) for t in present))
    absent = [t for t in PATTERNS if t not in present and t not in compatible]
    candidates = [PATTERN_AVOID[t][0] for t in absent] + list(DENSITY_AVOID[density])
    candidates += [w for t in absent for w in PATTERN_AVOID[t][1:]]
    return dict(pattern_type=" + ".join(types), density=DENSITY_TERMS[density].term,
                geometric_structure=structure.term, texture_description=texture, must_hit=hits[:MAX_HIT],
                must_avoid=choose_avoid(hits, candidates, said=[texture]))


def _root_cause(f: WaferFacts, kb: Knowledge) -> RootCauseRubric:
    return RootCauseRubric(**_root_cause_fields(f.types, kb))


def _root_cause_fields(types: tuple[str, ...], kb: Knowledge) -> dict[str, object]:
    entries = kb.for_labels(types)
    equipment = list(dict.fromkeys(e for entry in entries for e in entry.equipment))
    per_type = len(entries[0].terms) if len(entries) == 1 else 1
    key_terms = [term for entry in entries for term in entry.terms[:per_type]]
    hits = ([kb.equipment_term(e) for e in equipment[:4]] + key_terms)[:MAX_HIT]
    steps = list(dict.fromkeys(entry.process_step for entry in entries))
    causes = [cause for entry in entries for cause in entry.causes[:2]]
    said = steps + causes + [w for entry in entries for group in entry.key_terms for w in group]
    candidates = [a for entry in entries for a in entry.avoid]
    return dict(equipment_category=equipment, process_step="; ".join(steps), potential_causes=causes,
                must_hit=hits, must_avoid=choose_avoid(hits, candidates, said=said))


def _summary(f: WaferFacts, rubric_rc: RootCauseRubric) -> str:
    names = " + ".join(TYPE_NAMES[t] for t in f.types)
    if f.patterns == ():
        return f"{names}: a normal wafer with {f.fail_ratio:.1%} failing dies and no systematic cause."
    where = " and ".join(f.zones) + " zone" if f.zones else "the whole wafer"
    clock = f" around {', '.join(CLOCK_TERMS[k].term for k in f.clocks)}" if f.clocks else ""
    equipment = ", ".join(rubric_rc.equipment_category) or "no specific equipment"
    return (f"{names}: {STRUCTURE_TERMS[f.structure].term} in {where}{clock}, {f.fail_ratio:.1%} of dies failing; "
            f"investigate {equipment} ({rubric_rc.process_step}).")


def rubric_from_facts(wafer_id: str, f: WaferFacts, knowledge: Knowledge | None = None) -> Rubric:
    """The rubric for already-read facts (see :func:`build_rubric`)."""
    kb = resolve_knowledge(knowledge)
    root_cause = _root_cause(f, kb)
    # The three parts are validated as they are built (must-hit and must-avoid disjoint); the outer model has plain
    # str/list fields only, and validating it would re-run the parts' validators (3x ~13 us per wafer).
    return Rubric.model_construct(wafer_id=wafer_id, defect_types=list(f.types), spatial=_spatial(f),
                                  morphology=_morphology(f), root_cause=root_cause, summary=_summary(f, root_cause),
                                  facts=fact_sheet(f))


def build_rubric(wafer: WaferMap, geom: Geometry, knowledge: Knowledge | str | Path | None = None) -> Rubric:
    """Stage-1 rubric of one wafer: types from its labels (else inferred), facts from the measured geometry."""
    return rubric_from_facts(wafer.id, wafer_facts(wafer, geom), resolve_knowledge(knowledge))


class RubricResult(BaseModel):
    """A model-built rubric, or the reason it failed. Failed results are kept, never dropped."""

    wafer_id: str
    rubric: Rubric | None = None
    status: Literal["ok", "failed"]
    reason: str | None = None
    attempts: int = Field(ge=0)


def rubric_from_json(data: object, wafer_id: str) -> Rubric:
    """Validate the paper's Stage-1 rubric JSON (see ``prompts/rubric_builder.j2``) into a :class:`Rubric`."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    try:
        spatial, morph, cause = (dict(data[k]) for k in ("spatial_rubric", "morphology_rubric", "root_cause_rubric"))
        types = [canonical_label(t, record=wafer_id) for t in data["defect_types"]]
        if not types:
            raise ValueError("defect_types is empty; use ['none'] for a normal wafer")
        for name, part in (("spatial_rubric", spatial), ("morphology_rubric", morph), ("root_cause_rubric", cause)):
            if not part.get("must_hit"):
                raise ValueError(f"{name}.must_hit is empty; give at least one term")
        for part in (spatial, morph, cause):
            part["must_hit"] = [{"term": t} if isinstance(t, str) else t for t in part["must_hit"]]
        clocks = spatial.get("clock_position") or []
        return Rubric(
            wafer_id=wafer_id, defect_types=types, summary=str(data["summary"]),
            spatial=SpatialRubric(
                zone=str(spatial["zone"]), distribution=str(spatial["distribution"]),
                clock_positions=clocks if isinstance(clocks, list) else [clocks],
                coordinates_hint=str(spatial.get("coordinates_hint", "")), must_hit=spatial["must_hit"],
                must_avoid=spatial.get("spatial_avoid", [])),
            morphology=MorphologyRubric(
                pattern_type=str(morph["pattern_type"]), density=str(morph["density"]),
                geometric_structure=str(morph["geometric_structure"]),
                texture_description=str(morph["texture_description"]), must_hit=morph["must_hit"],
                must_avoid=morph.get("morphology_avoid", [])),
            root_cause=RootCauseRubric(
                equipment_category=list(cause["equipment_category"]), process_step=str(cause["process_step"]),
                potential_causes=list(cause["potential_causes"]), must_hit=cause["must_hit"],
                must_avoid=cause.get("root_cause_avoid", [])),
        )
    except KeyError as exc:
        raise ValueError(f"missing field {exc.args[0]!r}") from None
    except (TypeError, ValidationError) as exc:
        raise ValueError(f"invalid rubric: {exc}") from None


class ModelRubricBuilder:
    """Stage 1 by a model: ``generate(prompt) -> reply``; invalid replies are retried with the validation error."""

    def __init__(self, generate: Callable[[str], str], max_retries: int = 2):
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.generate = generate
        self.max_retries = max_retries

    def prompt(self, description: Description) -> str:
        return render_prompt("rubric_builder", wafer_id=description.wafer_id, mode=description.mode,
                             description=description.text, labels=LABELS, max_terms=MAX_AVOID)

    def build(self, description: Description) -> RubricResult:
        out = generate_validated(self.generate, self.prompt(description),
                                 lambda data: rubric_from_json(data, description.wafer_id), self.max_retries)
        return RubricResult(wafer_id=description.wafer_id, rubric=out.value, reason=out.reason,
                            status="ok" if out.value is not None else "failed", attempts=out.attempts)


def rubric_json(rubric: Rubric) -> str:
    """The rubric in the paper's Stage-1 layout (what the VQA writer prompt shows a model)."""
    return json.dumps({
        "defect_types": rubric.defect_types,
        "spatial_rubric": rubric.spatial.model_dump(), "morphology_rubric": rubric.morphology.model_dump(),
        "root_cause_rubric": rubric.root_cause.model_dump(), "summary": rubric.summary,
    }, indent=1)
