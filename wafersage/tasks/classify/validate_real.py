"""Real-map validation: how well the default describer path reads real labelled maps with the labels hidden.

Each map is measured and its defect types inferred from geometry alone (:func:`~wafersage.tasks.geometry.infer.infer_types`);
the labels are only used afterwards, to score. Per class (label set string) the table gives ``n``, the share of
exact set matches and the share where every true label is among the inferred ones ("label contained"), plus an
overall row. Other predictors (e.g. a trained specialist baseline) plug in as extra
``name -> (wafer, geometry) -> types`` entries and get their own columns.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable

from pydantic import BaseModel, Field

from ..geometry.measure import Geometry, measure
from ..maps.wafer import WaferMap

#: A predictor of defect types: ``(wafer, geometry) -> labels``; it must not look at ``wafer.labels``.
Predictor = Callable[[WaferMap, Geometry], list[str]]
OVERALL = "overall"


def geometry_rules(wafer: WaferMap, geom: Geometry) -> list[str]:
    """The default describer path: defect types inferred from measured geometry."""
    from ..geometry.infer import infer_types

    return infer_types(geom)


class Score(BaseModel):
    """One predictor's agreement on one class."""

    exact: int = Field(description="Maps whose inferred set equals the label set.")
    contained: int = Field(description="Maps whose every true label is among the inferred ones.")
    exact_rate: float
    contained_rate: float


class ClassRow(BaseModel):
    label: str
    n: int
    scores: dict[str, Score] = Field(description="Predictor name -> its score on this class.")


class ValidationTable(BaseModel):
    """Per-class agreement of each predictor with the hidden labels; the last row is ``overall``."""

    source: str
    format: str
    predictors: list[str]
    rows: list[ClassRow]
    skipped_unlabeled: int
    confusions: dict[str, dict[str, int]] = Field(
        description="Per class: inferred label set (first predictor) -> count, to see what it is mistaken for.")

    @property
    def overall(self) -> ClassRow:
        return self.rows[-1]


def validate(maps: Iterable[WaferMap], *, source: str, format: str,
             predictors: dict[str, Predictor] | None = None) -> ValidationTable:
    """Score ``predictors`` (default: the geometry rules) on labelled ``maps``; unlabeled maps are counted, skipped."""
    predictors = predictors or {"geometry": geometry_rules}
    names = list(predictors)
    hits: dict[str, dict[str, list[int]]] = defaultdict(lambda: {n: [0, 0] for n in names})
    sizes: dict[str, int] = defaultdict(int)
    confusions: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    skipped = 0
    for wafer in maps:
        if not wafer.labels:
            skipped += 1
            continue
        truth = set(wafer.labels)
        label = wafer.label_text
        hidden = WaferMap(grid=wafer.grid, id=wafer.id, source=wafer.source, lot=wafer.lot)
        geom = measure(hidden)
        sizes[label] += 1
        for name in names:
            inferred = set(predictors[name](hidden, geom)) or {"none"}
            hits[label][name][0] += inferred == truth
            hits[label][name][1] += truth <= inferred
            if name == names[0]:
                confusions[label]["+".join(sorted(inferred))] += 1
    rows = [_row(label, sizes[label], hits[label]) for label in sorted(sizes)]
    total = {n: [sum(hits[lbl][n][k] for lbl in sizes) for k in (0, 1)] for n in names}
    rows.append(_row(OVERALL, sum(sizes.values()), total))
    return ValidationTable(
        source=source, format=format, predictors=names, rows=rows, skipped_unlabeled=skipped,
        confusions={k: dict(sorted(v.items())) for k, v in sorted(confusions.items())},
    )


def _row(label: str, n: int, counts: dict[str, list[int]]) -> ClassRow:
    return ClassRow(label=label, n=n, scores={
        name: Score(exact=e, contained=c, exact_rate=e / n if n else 0.0, contained_rate=c / n if n else 0.0)
        for name, (e, c) in counts.items()
    })
