"""Graded panels: benchmark items answered by several sources, every answer graded by a reference grader.

A panel folder (the layout of ``../shared/panels/panel_a``)::

    items.jsonl     one item per line: id, wafer_id, question, category, difficulty, labels, expected_yes, targets,
                    image, reference, rubric (the wafer's whole rubric, as the benchmark had it)
    answers.jsonl   one answer per line: item_id, source, answer, judge {score, spatial, morphology, root_cause,
                    rationale} (the reference grade, 0-10), optionally rule_score_when_graded
    maps.npz        each wafer's grid (key = wafer id; 0 off-wafer, 1 pass, 2 fail)
    labels.json     {wafer id: [defect labels]}
    images/         the PNGs the answering models saw

A panel is untrusted input: every row is checked, and an error names the file, the line, the field and the fix.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...tasks.bench.schema import Category, Difficulty, Rubric


class PanelError(ValueError):
    """A panel folder is missing a file or holds a bad row; the message names the file, line, field and fix."""


class PanelItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1)
    wafer_id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    category: Category
    difficulty: Difficulty = "medium"
    labels: list[str]
    expected_yes: bool | None = None
    targets: list[str] = Field(default_factory=list)
    image: str | None = None
    reference: str = ""
    rubric: Rubric | None = Field(None, description="the wafer's rubric when the item was graded (older scorers)")


class Grade(BaseModel):
    model_config = ConfigDict(extra="ignore")
    score: float = Field(ge=0, le=10)
    spatial: float | None = Field(None, ge=0, le=10)
    morphology: float | None = Field(None, ge=0, le=10)
    root_cause: float | None = Field(None, ge=0, le=10)
    rationale: str = ""


class PanelAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    item_id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    answer: str
    judge: Grade = Field(description="the reference grade")
    rule_score_when_graded: float | None = None


@dataclass(frozen=True)
class Panel:
    """A loaded panel: items by id (file order), answers (file order), grids and labels by wafer."""

    folder: Path
    items: dict[str, PanelItem]
    answers: list[PanelAnswer]
    grids: dict[str, np.ndarray]
    labels: dict[str, list[str]]

    @property
    def wafers(self) -> list[str]:
        """Wafer ids in the order their first item appears in ``items.jsonl`` (wafer 1 is the first)."""
        return list(dict.fromkeys(item.wafer_id for item in self.items.values()))

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(a.source for a in self.answers))

    def select_wafers(self, first: int, last: int) -> "Panel":
        """The panel restricted to its wafers ``first``..``last`` (1-based, inclusive, in item order)."""
        keep = set(self.wafers[first - 1:last])
        items = {k: v for k, v in self.items.items() if v.wafer_id in keep}
        return Panel(self.folder, items, [a for a in self.answers if a.item_id in items],
                     {w: g for w, g in self.grids.items() if w in keep},
                     {w: lab for w, lab in self.labels.items() if w in keep})


def _where(path: Path, line: int | None) -> str:
    return f"{path}" + (f", line {line}" if line is not None else "")


def _field_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        field = ".".join(str(p) for p in err["loc"]) or "(row)"
        parts.append(f"field {field!r}: {err['msg']}")
    return "; ".join(parts)


def _rows(path: Path, model: type[BaseModel]) -> list[Any]:
    if not path.is_file():
        raise PanelError(f"{path}: missing; a panel folder needs items.jsonl, answers.jsonl, maps.npz and "
                         "labels.json (see the README's 'Graded panels')")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(model.model_validate_json(line))
        except ValidationError as exc:
            raise PanelError(f"{_where(path, n)}: {_field_errors(exc)}; fix or remove the row") from None
    if not rows:
        raise PanelError(f"{path}: no rows")
    return rows


def _grids(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise PanelError(f"{path}: missing; write each wafer's grid under its id (numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as data:
            grids = {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError) as exc:
        raise PanelError(f"{path}: not a readable .npz without pickles ({exc})") from None
    for wafer, grid in grids.items():
        if grid.ndim != 2 or not np.isin(grid, (0, 1, 2)).all():
            raise PanelError(f"{path}: wafer {wafer!r} is not a 2-D grid of 0/1/2 (WM-811K codes)")
    return grids


def _labels(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        raise PanelError(f"{path}: missing; write {{wafer id: [labels]}} as JSON")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PanelError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise PanelError(f"{path}: must map each wafer id to a list of labels")
    return {str(k): [str(x) for x in v] for k, v in data.items()}


def load_panel(folder: str | Path) -> Panel:
    """Read and check a panel folder; raises :class:`PanelError` naming the file, line and field of a bad row."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PanelError(f"{folder}: not a folder; pass the panel folder (items.jsonl, answers.jsonl, ...)")
    items: dict[str, PanelItem] = {}
    items_path = folder / "items.jsonl"
    for n, item in enumerate(_rows(items_path, PanelItem), 1):
        if item.id in items:
            raise PanelError(f"{_where(items_path, n)}: item {item.id!r} appears twice")
        items[item.id] = item
    answers_path = folder / "answers.jsonl"
    answers = _rows(answers_path, PanelAnswer)
    seen: set[tuple[str, str]] = set()
    for n, answer in enumerate(answers, 1):
        if answer.item_id not in items:
            raise PanelError(f"{answers_path}: row {n} answers unknown item {answer.item_id!r}; every answer's "
                             "item_id must be an id in items.jsonl")
        key = (answer.item_id, answer.source)
        if key in seen:
            raise PanelError(f"{answers_path}: row {n} is a second answer of source {answer.source!r} to "
                             f"{answer.item_id!r}; keep one")
        seen.add(key)
    grids = _grids(folder / "maps.npz")
    labels = _labels(folder / "labels.json")
    for item in items.values():
        for name, table in (("maps.npz", grids), ("labels.json", labels)):
            if item.wafer_id not in table:
                raise PanelError(f"{folder / name}: no entry for wafer {item.wafer_id!r} (item {item.id})")
    return Panel(folder, items, answers, grids, labels)


def item_dimension(item: PanelItem) -> Literal["spatial", "morphology", "root_cause", "defect_type"] | None:
    """The rubric dimension an item is scored on: its category, or for a consistency item the dimension whose
    must-hit terms hold its targets (None when that cannot be told)."""
    if item.category != "consistency":
        return item.category  # type: ignore[return-value]  (defect_type is scored on the labels)
    if item.rubric is None or not item.targets:
        return None
    for dim in ("spatial", "morphology", "root_cause"):
        names = {t.term for t in item.rubric.dimension(dim).must_hit}
        if set(item.targets) <= names:
            return dim  # type: ignore[return-value]
    return None

