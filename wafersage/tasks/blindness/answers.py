"""What each item asks, as a value a blind reader could guess, and the answer balance per question template.

An item's *asked value* is the fact its question asks for, read from the wafer's rubric: the verdict of a yes/no
item, the defect types of a type question, and otherwise the values of the item's ``focus`` slots (zone, clock,
extent, shape, density, texture, equipment, process). It is what the fact-level blind adversaries
(:mod:`.adversary`) predict and what the manifest's answer balance counts.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from itertools import product
from typing import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from ..bench.schema import Rubric


class ItemRecord(BaseModel):
    """One written item as the filter and the balance statistics see it (no map, no answer text)."""

    model_config = ConfigDict(frozen=True)
    item_id: str
    wafer_id: str
    split: str
    category: str
    template: str = Field(description="the question template ('spatial/3:clock') or premise kind "
                                      "('consistency/share'); 'model/<category>' for a model writer's items")
    question: str
    truth: str = Field(description="the asked value (see the module docstring)")
    spare: bool = Field(False, description="written beyond the wafer's drawn count, to replace dropped items")
    normal: bool = Field(False, description="the wafer is a normal one (defect type none)")


def _slot_value(slot: str, rubric: Rubric) -> str:
    facts = rubric.facts
    if slot == "zone":
        return ",".join(sorted(facts.zones)) if facts else rubric.spatial.zone
    if slot == "clock":
        return ",".join(str(k) for k in sorted(facts.clocks if facts else rubric.spatial.clock_positions))
    if slot == "extent":
        return rubric.spatial.distribution
    if slot == "shape":
        return rubric.morphology.geometric_structure
    if slot == "density":
        return facts.density if facts else rubric.morphology.density
    if slot == "texture":
        return facts.texture if facts else rubric.morphology.texture_description
    if slot == "equipment":
        return ",".join(sorted(rubric.root_cause.equipment_category))
    if slot == "process":
        return rubric.root_cause.process_step
    raise ValueError(f"unknown fact slot {slot!r}")


def asked_value(category: str, focus: Iterable[str], rubric: Rubric, expected_yes: bool | None = None) -> str:
    """The item's asked value (see the module docstring)."""
    if category == "consistency":
        return "yes" if expected_yes else "no"
    focus = list(focus)
    if category == "defect_type" or not focus:
        return "+".join(sorted(rubric.defect_types))
    return "; ".join(f"{slot}={_slot_value(slot, rubric)}" for slot in focus)


def entropy_bits(counts: Counter) -> float:
    """Shannon entropy of a distribution given by counts, in bits."""
    total = sum(counts.values())
    return -sum(n / total * math.log2(n / total) for n in counts.values() if n) if total else 0.0


class TemplateBalance(BaseModel):
    """One template's answers over the benchmark: counts per asked value, entropy and its ceiling log2(values)."""

    n: int
    answers: dict[str, int]
    entropy_bits: float
    max_entropy_bits: float
    top_share: float = Field(description="share of the most common asked value")


def answer_balance(answers: Counter) -> dict[str, TemplateBalance]:
    """Per template (sorted), the distribution of its items' asked values, from counts of (template, asked value)."""
    by_template: dict[str, Counter] = defaultdict(Counter)
    for (template, truth), n in answers.items():
        if n > 0:
            by_template[template][truth] += n
    out = {}
    for template in sorted(by_template):
        counts = by_template[template]
        n = sum(counts.values())
        out[template] = TemplateBalance(
            n=n, answers=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            entropy_bits=round(entropy_bits(counts), 4), max_entropy_bits=round(math.log2(len(counts)), 4),
            top_share=round(max(counts.values()) / n, 4))
    return out


def chance_floor(train: Iterable[ItemRecord], test: Sequence[ItemRecord], verdict_credit: float = 1.0) -> list[float]:
    """Per ``test`` item, what a reader without the image earns by answering its template's most common asked
    value on ``train``, under exact matching: 1 when that guess is the item's asked value (``verdict_credit`` for a
    yes/no item, what a bare right verdict earns), else 0; 0 for a template ``train`` lacks.

    Its mean is the *chance floor* of the question mix: the least share of the oracle's score that any scorer
    which pays an exactly right answer in full grants a prior-only guess. Partial credit (two of three equipment
    groups, a neighbouring clock) only adds to it. It is set by how many values each template's answers take and
    how evenly, not by the scorer: a balanced yes/no item alone keeps it at half the verdict's credit."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for record in train:
        counts[record.template][record.truth] += 1
    guess = {template: c.most_common(1)[0][0] for template, c in counts.items()}
    return [(verdict_credit if r.category == "consistency" else 1.0) * (guess.get(r.template) == r.truth)
            for r in test]


def headroom_share(share: float, floor: float) -> float:
    """A share of the oracle's score, rescaled so that the chance floor is 0 and the oracle 1 (the normalisation
    BIG-bench and the Open LLM Leaderboard apply to a random baseline): how much of what only the image can earn a
    reader earns."""
    return (share - floor) / (1.0 - floor) if floor < 1.0 else float("nan")


def best_mix_floor(template_floor: Mapping[str, float], ranges: Mapping[str, tuple[int, int]],
                   total: tuple[int, int], yes_no_floor: float) -> float:
    """The lowest chance floor a wafer's items can have: each category (the part of a template key before "/")
    asked between ``ranges[category]`` times, ``total`` items in all, one template per item and the templates with
    the lowest ``template_floor`` first; a yes/no item ("consistency") costs ``yes_no_floor`` whatever its
    template (a balanced verdict: half the credit of a right one). 1.0 when no mix fits the ranges."""
    floors = {category: sorted(f for t, f in template_floor.items() if t.split("/")[0] == category)
              for category in ranges}
    floors["consistency"] = [yes_no_floor] * ranges.get("consistency", (0, 0))[1]
    best = 1.0
    for counts in product(*(range(lo, hi + 1) for lo, hi in ranges.values())):
        chosen = dict(zip(ranges, counts))
        if total[0] <= sum(counts) <= total[1] and all(n <= len(floors[c]) for c, n in chosen.items()):
            best = min(best, sum(sum(floors[c][:n]) for c, n in chosen.items()) / sum(counts))
    return best
