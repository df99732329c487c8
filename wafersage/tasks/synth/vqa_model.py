"""Stage 2 by a model: a model writes each wafer's question–answer pairs from its rubric, checked by the rules of
the template writer (:mod:`.vqa`: counts per category, no defect-type hint); an invalid reply is sent back with
the error."""
from __future__ import annotations

from typing import Callable, Literal

from pydantic import BaseModel, Field, ValidationError

from ..bench.schema import Rubric, VQAItem
from ..maps.wafer import LABELS
from .prompt_templates import generate_validated, render_prompt
from .vocab import HINT_WORDS
from .vqa import CATEGORY_RANGES, ITEMS_RANGE, check_question


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
