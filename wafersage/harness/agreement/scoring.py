"""Scoring a panel's answers with the project's rule scorer (and, optionally, an LLM judge).

A panel item becomes the :class:`~wafersage.tasks.bench.schema.VQAItem` the scorer reads; an item lacking a field
the scorer needs is *unscored* with the reason, never dropped (:class:`~.measure.Scored` keeps it).
"""
from __future__ import annotations

import asyncio
from typing import Callable

from ...tasks.bench.schema import FactSheet, Rubric, VQAItem
from ...tasks.geometry.measure import ZONES
from ...tasks.synth.facts import TEXTURE_KEY
from ..scoring.truth import DENSITY_ORDER
from ..scoring.answers import scored_answer
from ...tasks.maps.wafer import WaferMap
from ..scoring.rules import RuleConstants, RuleScorer, sheets_from_maps
from .measure import Scored
from .panel import Panel, PanelAnswer, PanelItem, item_dimension


class Unscorable(ValueError):
    """The scorer cannot score this item; the message says which field is missing."""


def as_vqa_item(item: PanelItem) -> VQAItem:
    """The benchmark item a panel row stands for (its rubric travels separately)."""
    if item.category == "consistency" and item.expected_yes is None:
        raise Unscorable("a consistency item without expected_yes (the premise's truth)")
    dimension = item_dimension(item) or "spatial"
    return VQAItem(
        id=item.id, wafer_id=item.wafer_id, image=item.image or f"images/{item.wafer_id}.png",
        question=item.question, answer=item.reference or "-", category=item.category, dimension=dimension,
        difficulty=item.difficulty, labels=item.labels, qa_index=0, split="test", expected_yes=item.expected_yes,
        targets=item.targets)


def _row(answer: PanelAnswer, item: PanelItem, score: float | None, reason: str | None = None) -> Scored:
    return Scored(item_id=item.id, wafer_id=item.wafer_id, source=answer.source, category=item.category,
                  reference=answer.judge.score, score=score, reason=reason)


#: the place words of an older rubric's spatial must-avoid list, by zone
_AVOID_ZONES = {"center": "center", "centre": "center", "mid-radius": "middle", "middle": "middle", "edge": "edge",
                "periphery": "edge", "rim": "edge"}


def as_graded(rubric: Rubric, measured: FactSheet) -> FactSheet:
    """The facts a judge was shown by an older rubric (one without a fact sheet): its zones, clock positions,
    density and texture, over what the map measures (the generator's own parameters, which placed a Loc cluster or
    gave its clock, are not in a panel: the rubric carries what they said)."""
    zones = [z for z in rubric.spatial.zone.replace(",", " and ").split(" and ") if z.strip() in ZONES]
    zones = [z.strip() for z in zones] or measured.zones
    avoid = {_AVOID_ZONES[w] for w in rubric.spatial.must_avoid if w in _AVOID_ZONES} - set(zones)
    return measured.model_copy(update={
        "zones": zones, "avoid_zones": sorted(avoid, key=ZONES.index) if avoid else
        [z for z in measured.avoid_zones if z not in zones],
        "clocks": list(rubric.spatial.clock_positions),
        "density": rubric.morphology.density if rubric.morphology.density in DENSITY_ORDER else measured.density,
        "texture": TEXTURE_KEY.get(rubric.morphology.texture_description, measured.texture)})


def panel_scorer(panel: Panel, constants: RuleConstants | None = None) -> RuleScorer:
    """The rule scorer for a panel: each wafer's facts from its rubric's fact sheet, else measured from its grid
    and labels and read back from its older rubric (:func:`as_graded`)."""
    rubrics = {item.wafer_id: item.rubric for item in panel.items.values() if item.rubric is not None}
    maps = [WaferMap(grid=grid, id=wafer, labels=tuple(panel.labels[wafer])) for wafer, grid in panel.grids.items()]
    sheets = {wafer: as_graded(rubrics[wafer], sheet) if wafer in rubrics and rubrics[wafer].facts is None else sheet
              for wafer, sheet in sheets_from_maps(maps).items()}
    sheets = {w: s for w, s in sheets.items() if w not in rubrics or rubrics[w].facts is None}
    return RuleScorer(rubrics, constants, sheets)


def rule_rows(panel: Panel, constants: RuleConstants | None = None) -> list[Scored]:
    """Every panel answer with its rule score under ``constants`` (defaults when None)."""
    scorer = panel_scorer(panel, constants)
    rows = []
    for answer in panel.answers:
        item = panel.items[answer.item_id]
        try:
            rows.append(_row(answer, item, scorer.score(as_vqa_item(item), scored_answer(answer.answer)).score))
        except (Unscorable, ValueError, KeyError) as exc:
            rows.append(_row(answer, item, None, str(exc)))
    return rows


def judge_rows(panel: Panel, judge, progress: Callable[[int], None] | None = None) -> list[Scored]:
    """Every panel answer graded by ``judge`` (an :class:`~wafersage.harness.scoring.judging.judge.LLMJudge`)."""
    todo, rows = [], []
    for answer in panel.answers:
        item = panel.items[answer.item_id]
        try:
            if item.rubric is None:
                raise Unscorable("the item has no rubric for the judge prompt")
            todo.append((answer, item, (as_vqa_item(item), item.rubric, scored_answer(answer.answer))))
        except Unscorable as exc:
            rows.append(_row(answer, item, None, str(exc)))

    async def grade():
        try:
            return await judge.judge_many([t for *_, t in todo], progress=progress)
        finally:
            await judge.model.aclose()

    for (answer, item, _), verdict in zip(todo, asyncio.run(grade())):
        ok = verdict.status == "scored"
        rows.append(_row(answer, item, verdict.score if ok else None, None if ok else f"judge: {verdict.reason or verdict.status}"))
    return rows


def calibrate_panel(panel: Panel, config=None):
    """Fit the rule constants to the panel's reference grades (answers the scorer cannot score are left out)."""
    from ..scoring.calibrate import FeatureTable, calibrate

    scorer = panel_scorer(panel)
    features, grades, wafers = [], [], []
    for answer in panel.answers:
        item = panel.items[answer.item_id]
        try:
            features.append(scorer.features(as_vqa_item(item), scored_answer(answer.answer)))
        except (Unscorable, ValueError, KeyError):
            continue
        grades.append(answer.judge.score)
        wafers.append(item.wafer_id)
    identity = {"panel": str(panel.folder), "grader": "the panel's reference grades", "n_answers": len(grades)}
    return calibrate(FeatureTable(features), grades, wafers, judge_identity=identity, bench_hash=None,
                     runs=[str(panel.folder)], config=config)
