"""Stages 0b–2 for one wafer, as the builder runs them: describe -> rubric -> VQA items.

The geometry path (default) cannot fail on a valid map. The model paths can: a ``describe`` callable (Stages 0b–1
by a model) and a ``write`` callable (Stage 2 by a model, :class:`~.vqa.ModelVQAWriter`), both passed in by the
caller (tasks never imports a model). A failed model call (:class:`~.prompt_templates.ModelCallFailed`), or a
description, rubric or item list that stays unusable after retries, becomes a :class:`WaferFailure` recorded in
``failures.jsonl`` — never silently dropped. A model that can answer nothing
(:class:`~.prompt_templates.ModelUnavailable`) and any other exception (a bug, raised as :class:`StageError`
naming the wafer and where it was raised) stop the build: they would fail every wafer alike.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
from pydantic import BaseModel

from .describe import Description, DescriptionError, GeometryDescriber, ModelDescriber
from .facts import fact_sheet, wafer_facts
from ..geometry.measure import Geometry
from .knowledge import resolve_knowledge
from .phrasing import FactSentences
from .prompt_templates import ModelCallFailed, ModelUnavailable
from .rubric import ModelRubricBuilder, build_rubric
from ..bench.schema import Rubric, VQAItem
from ..blindness.answers import ItemRecord, asked_value
from ..blindness.population import DEFAULT_THRESHOLDS, PremiseThresholds
from .vqa import write_items
from .vqa_model import ModelVQAWriter
from ..maps.wafer import WaferMap

if TYPE_CHECKING:
    from .build import SynthConfig


class WaferFailure(BaseModel):
    """A wafer the model path could not turn into a rubric; kept in ``failures.jsonl`` with its reason."""

    wafer_id: str
    stage: str
    reason: str
    attempts: int = 1
    description: str | None = None


class StageError(RuntimeError):
    """A stage of a model-backed build raised something that is neither a failed model call nor a bad reply: a bug.
    The message names the wafer, the error and the line that raised it."""

    def __init__(self, wafer_id: str, error: Exception):
        frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
        where = f" (raised at {frame.filename}:{frame.lineno})" if frame else ""
        super().__init__(f"wafer {wafer_id}: {type(error).__name__}: {error}{where}")
        self.wafer_id = wafer_id
        self.error = error


@dataclass
class WaferResult:
    description: Description | None = None
    rubric: Rubric | None = None
    items: list[VQAItem] = field(default_factory=list)
    records: list[ItemRecord] = field(default_factory=list)  # the items' records for the blind filter
    failure: WaferFailure | None = None


class Stages:
    """The per-wafer pipeline for one build, configured once.

    ``generate(prompt, png_or_None) -> text`` describes each map and builds its rubric; ``write(prompt, None) -> text``
    writes its VQA items (validated like the template writer's: counts, categories, no defect-type hint).
    """

    def __init__(self, config: "SynthConfig", generate: Callable[[str, bytes | None], str] | None = None,
                 write: Callable[[str, bytes | None], str] | None = None):
        self.knowledge = resolve_knowledge(config.resolve(config.knowledge) if config.knowledge else None)
        self.model_describer = None
        self.rubric_builder = None
        if generate is not None:
            self.model_describer = ModelDescriber(generate, image_size=config.image_size, palette=config.palette)
            self.rubric_builder = ModelRubricBuilder(lambda prompt: generate(prompt, None))
        self.writer = ModelVQAWriter(lambda prompt: write(prompt, None)) if write is not None else None
        self.geometry_describer = GeometryDescriber(self.knowledge)
        self.blind_filter = config.blind_filter

    def run(self, wafer: WaferMap, geom: Geometry, *, image: str, rng: np.random.Generator,
            thresholds: PremiseThresholds = DEFAULT_THRESHOLDS) -> WaferResult:
        """Stages 0b–2 for one wafer; see the module docstring for what fails the wafer and what stops the build.
        ``thresholds``: the build's numeric premise thresholds (a global step, :mod:`..blindness.population`)."""
        try:
            return self._run(wafer, geom, image=image, rng=rng, thresholds=thresholds)
        except ModelUnavailable:
            raise
        except Exception as exc:
            if self.model_describer is None and self.writer is None:
                raise  # the geometry path: an error surfaces as itself
            raise StageError(wafer.id, exc) from exc

    def _run(self, wafer: WaferMap, geom: Geometry, *, image: str, rng: np.random.Generator,
             thresholds: PremiseThresholds) -> WaferResult:
        sentences = None
        if self.model_describer is None:
            rubric = build_rubric(wafer, geom, self.knowledge)
            sentences = FactSentences.of(rubric)  # the description and the answers state the same sentences
            description = self.geometry_describer.describe(wafer, geom, "full", rubric=rubric, sentences=sentences)
        else:
            try:
                description = self.model_describer.describe(wafer, geom, "full")
            except (ModelCallFailed, DescriptionError) as exc:  # a failed call or an empty reply: recorded
                return WaferResult(failure=WaferFailure(
                    wafer_id=wafer.id, stage="describe", reason=f"{type(exc).__name__}: {exc}"))
            built = self.rubric_builder.build(description)
            if built.rubric is None:
                return WaferResult(failure=WaferFailure(
                    wafer_id=wafer.id, stage="rubric", reason=built.reason or "failed", attempts=built.attempts,
                    description=description.text))
            rubric = built.rubric.model_copy(update={"facts": fact_sheet(wafer_facts(wafer, geom))})  # from the map
        split = wafer.split or "test"
        if self.writer is not None:
            written = self.writer.write(rubric, image=image, split=split, labels=list(wafer.labels))
            if written.status != "ok":
                return WaferResult(failure=WaferFailure(
                    wafer_id=wafer.id, stage="vqa", reason=written.reason or "failed", attempts=written.attempts,
                    description=description.text))
            records = [ItemRecord(item_id=it.id, wafer_id=it.wafer_id, split=split, category=it.category,
                                  template=f"model/{it.category}", question=it.question,
                                  truth=asked_value(it.category, it.focus, rubric, it.expected_yes),
                                  normal=rubric.defect_types == ["none"]) for it in written.items]
            return WaferResult(description=description, rubric=rubric, items=written.items, records=records)
        try:
            items = write_items(wafer, geom, rubric, rng=rng, image=image, split=split, sentences=sentences,
                                thresholds=thresholds, spares=self.blind_filter.writes_spares(split))
        except ValueError as exc:  # a model rubric the question writer cannot use
            if self.model_describer is None:
                raise
            return WaferResult(failure=WaferFailure(
                wafer_id=wafer.id, stage="vqa", reason=str(exc), description=description.text))
        return WaferResult(description=description, rubric=rubric, items=items.items, records=items.records)
