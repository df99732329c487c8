"""Stages 0b–2 for one wafer, as the builder runs them: describe -> rubric -> VQA items.

The geometry path (default) cannot fail on a valid map. The model paths can: a ``describe`` callable (Stages 0b–1
by a model) and a ``write`` callable (Stage 2 by a model, :class:`~.vqa.ModelVQAWriter`), both passed in by the
caller (tasks never imports a model). A failed model call, or a rubric or item list that stays invalid after
retries, becomes a :class:`WaferFailure` recorded in ``failures.jsonl`` — never silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
from pydantic import BaseModel

from .describe import Description, GeometryDescriber, ModelDescriber
from ..geometry.measure import Geometry
from .knowledge import resolve_knowledge
from .phrasing import FactSentences
from .rubric import ModelRubricBuilder, build_rubric
from ..bench.schema import Rubric, VQAItem
from .vqa import ModelVQAWriter, make_items
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


@dataclass
class WaferResult:
    description: Description | None = None
    rubric: Rubric | None = None
    items: list[VQAItem] = field(default_factory=list)
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

    def run(self, wafer: WaferMap, geom: Geometry, *, image: str, rng: np.random.Generator) -> WaferResult:
        sentences = None
        if self.model_describer is None:
            rubric = build_rubric(wafer, geom, self.knowledge)
            sentences = FactSentences.of(rubric)  # the description and the answers state the same sentences
            description = self.geometry_describer.describe(wafer, geom, "full", rubric=rubric, sentences=sentences)
        else:
            try:
                description = self.model_describer.describe(wafer, geom, "full")
            except Exception as exc:  # noqa: BLE001 - a failed model call is recorded, not raised
                return WaferResult(failure=WaferFailure(
                    wafer_id=wafer.id, stage="describe", reason=f"{type(exc).__name__}: {exc}"))
            built = self.rubric_builder.build(description)
            if built.rubric is None:
                return WaferResult(failure=WaferFailure(
                    wafer_id=wafer.id, stage="rubric", reason=built.reason or "failed", attempts=built.attempts,
                    description=description.text))
            rubric = built.rubric
        split = wafer.split or "test"
        if self.writer is not None:
            written = self.writer.write(rubric, image=image, split=split, labels=list(wafer.labels))
            if written.status != "ok":
                return WaferResult(failure=WaferFailure(
                    wafer_id=wafer.id, stage="vqa", reason=written.reason or "failed", attempts=written.attempts,
                    description=description.text))
            return WaferResult(description=description, rubric=rubric, items=written.items)
        try:
            items = make_items(wafer, geom, rubric, rng=rng, image=image, split=split, sentences=sentences)
        except ValueError as exc:  # a model rubric the question writer cannot use
            if self.model_describer is None:
                raise
            return WaferResult(failure=WaferFailure(
                wafer_id=wafer.id, stage="vqa", reason=str(exc), description=description.text))
        return WaferResult(description=description, rubric=rubric, items=items)
