"""Stage 0b: expert descriptions of a wafer map, in three modes (full analysis, spatial only, root cause only).

Two describers share one Protocol: :class:`GeometryDescriber` writes technical prose from the measured geometry
(and the generator's ground truth, when the map has it) — fast, deterministic, the default path;
:class:`ModelDescriber` sends the paper's prompt (``prompts/describe_<mode>.j2``) and the rendered map to any model
through a plain callable, so this module never imports a model backend.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from ..geometry.measure import Geometry
from .knowledge import Knowledge, resolve_knowledge
from .phrasing import FactSentences
from .prompt_templates import render_prompt
from ..maps.wafer import WaferMap

if TYPE_CHECKING:
    from ..bench.schema import Rubric

Mode = Literal["full", "spatial", "root_cause"]
MODES: tuple[str, ...] = ("full", "spatial", "root_cause")
PALETTE_NOTES = {
    "colour": "white = no die (off the wafer), teal = die passed, red-orange = die failed.",
    "grey": "black = no die (off the wafer), grey = die passed, white = die failed.",
}


class DescriptionError(ValueError):
    """A description could not be made; the message names the wafer and the fix."""


class Description(BaseModel):
    wafer_id: str
    mode: Mode
    text: str
    source: Literal["geometry", "model"]


@runtime_checkable
class Describer(Protocol):
    def describe(self, wafer: WaferMap, geom: Geometry, mode: Mode = "full") -> Description: ...


def _check_mode(mode: str, wafer: WaferMap) -> None:
    if mode not in MODES:
        raise DescriptionError(f"wafer {wafer.id}: unknown description mode {mode!r}; use one of {', '.join(MODES)}")


def _truth_sentence(wafer: WaferMap) -> str:
    parts = []
    for truth in wafer.truth:
        params = ", ".join([f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in truth.params.items() if isinstance(v, (int, float, str, bool))])
        parts.append(f"{truth.pattern} ({params})" if params else truth.pattern)
    return f" Generator ground truth: {'; '.join(parts)}." if parts else ""


class GeometryDescriber:
    """Technical prose from measured geometry, phrased from the same facts as the rubric (they cannot disagree)."""

    def __init__(self, knowledge: Knowledge | str | None = None):
        self.knowledge = resolve_knowledge(knowledge)

    def describe(self, wafer: WaferMap, geom: Geometry, mode: Mode = "full", *, rubric: "Rubric | None" = None,
                 sentences: FactSentences | None = None) -> Description:
        """``rubric``: the wafer's Stage-1 rubric when the caller has already built it (the builder does);
        ``sentences``: that rubric's :class:`FactSentences` when the caller has already written them."""
        from .rubric import build_rubric  # rubric imports this module for Description

        _check_mode(mode, wafer)
        rubric = rubric or build_rubric(wafer, geom, self.knowledge)
        said = sentences or FactSentences.of(rubric)
        spatial = (f"{said.spatial} Coordinates: {rubric.spatial.coordinates_hint}; "
                   f"{geom.n_fail} of {geom.n_dies} dies fail ({geom.fail_ratio:.1%}).")
        if mode == "spatial":
            text = spatial
        elif mode == "root_cause":
            causes = "; ".join(rubric.root_cause.potential_causes)
            text = f"{said.root_cause} Potential causes, most likely first: {causes}."
        else:
            text = " ".join([said.types, spatial, said.morphology, said.root_cause]) + _truth_sentence(wafer)
        return Description(wafer_id=wafer.id, mode=mode, text=text, source="geometry")


class ModelDescriber:
    """Any vision-language model as describer: ``generate(prompt, png_bytes) -> text``.

    The caller wraps its model (e.g. a registry model's async ``generate``) into this synchronous callable.
    """

    def __init__(self, generate: Callable[[str, bytes], str], *, image_size: int | None = 256,
                 palette: str = "colour"):
        if palette not in PALETTE_NOTES:
            raise DescriptionError(f"unknown palette {palette!r}; use one of {', '.join(PALETTE_NOTES)}")
        self.generate = generate
        self.image_size = image_size
        self.palette = palette

    def prompt(self, wafer: WaferMap, mode: Mode = "full") -> str:
        _check_mode(mode, wafer)
        rows, cols = wafer.shape
        return render_prompt(f"describe_{mode}", size=f"{rows} x {cols} dies", palette_note=PALETTE_NOTES[self.palette])

    def describe(self, wafer: WaferMap, geom: Geometry, mode: Mode = "full") -> Description:
        from ..maps.render import render_png

        prompt = self.prompt(wafer, mode)
        text = self.generate(prompt, render_png(wafer.grid, size=self.image_size, palette=self.palette))
        if not isinstance(text, str) or not text.strip():
            raise DescriptionError(
                f"wafer {wafer.id}: the model returned an empty {mode} description; check the model's output "
                "(an error reply?) or use describer: geometry")
        return Description(wafer_id=wafer.id, mode=mode, text=text.strip(), source="model")
