"""Degenerate answers and corrupted references: the checks that the rule score cannot be gamed.

Strategies are plain functions ``strategy(item, rubric, scorer, rng) -> answer`` (:data:`STRATEGIES`), so the
same suite runs through the scorer (``benchmarks/bench_gaming.py``, tests) and through the RL reward (training).
:func:`corrupt` returns the reference answer with ``k`` facts made wrong (clock, zone, type, equipment/cause:
every must-hit fact of the item's dimension is a candidate; a consistency verdict is flipped); a sound score
drops strictly, on average, with every extra wrong fact.
"""
from __future__ import annotations

import re
from typing import Callable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel

from ..tasks.schema import Rubric, VQAItem
from ..tasks.wafer import LABELS, PATTERNS
from .matching import clock_hours, normalise
from .rules import RuleScorer

Strategy = Callable[[VQAItem, Rubric, RuleScorer, np.random.Generator], str]

CONSTANT_SENTENCE = "The wafer map shows a cluster of failing dies, probably caused by a process excursion."
_ZONES = ("center", "middle", "edge")


def empty(item: VQAItem, rubric: Rubric, scorer: RuleScorer, rng: np.random.Generator) -> str:
    return ""


def constant(item: VQAItem, rubric: Rubric, scorer: RuleScorer, rng: np.random.Generator) -> str:
    return CONSTANT_SENTENCE


def echo(item: VQAItem, rubric: Rubric, scorer: RuleScorer, rng: np.random.Generator) -> str:
    return item.question


def keyword_stuffing(item: VQAItem, rubric: Rubric, scorer: RuleScorer, rng: np.random.Generator) -> str:
    """Every term of every dimension's vocabulary, every defect type, yes and no."""
    terms = sorted({t for terms in scorer.vocabulary.values() for t in terms})
    clocks = [f"{h} o'clock" for h in range(1, 13)]
    return "Yes, no. " + ", ".join([*LABELS, *terms, *clocks]) + "."


def _random_geometry(rng: np.random.Generator) -> str:
    return f"in the {rng.choice(_ZONES)} zone around {int(rng.integers(1, 13))} o'clock"


def right_type_random_geometry(item: VQAItem, rubric: Rubric, scorer: RuleScorer, rng: np.random.Generator) -> str:
    types = " and ".join(rubric.defect_types or ["no"])
    return f"This is a {types} pattern {_random_geometry(rng)}."


def random_type(item: VQAItem, rubric: Rubric, scorer: RuleScorer, rng: np.random.Generator) -> str:
    return f"This is a {rng.choice(PATTERNS)} pattern {_random_geometry(rng)}."


STRATEGIES: dict[str, Strategy] = {
    "empty": empty,
    "constant_sentence": constant,
    "question_echo": echo,
    "keyword_stuffing": keyword_stuffing,
    "right_type_random_geometry": right_type_random_geometry,
    "random_type": random_type,
}


#: categories a strategy is not degenerate on: naming the right type IS the answer to a defect-type question
NOT_DEGENERATE_ON: dict[str, set[str]] = {"right_type_random_geometry": {"defect_type"}}


def _variant_pattern(variants: Sequence[str]) -> re.Pattern[str]:
    """Case-insensitive whole-word pattern for a term's variants, hyphens and spaces interchangeable."""
    parts = sorted({re.escape(v).replace(r"\-", "[- ]").replace(r"\ ", "[- ]") for v in variants}, key=len,
                   reverse=True)
    return re.compile(r"(?<![A-Za-z0-9])(" + "|".join(parts) + r")(?![A-Za-z0-9])", re.IGNORECASE)


def _opposite_clock(term: str) -> str | None:
    """"9 o'clock" for a term naming 3 o'clock; None when the term names no clock position."""
    found = clock_hours(normalise(term))
    return f"{(min(found) + 5) % 12 + 1} o'clock" if found else None


def corrupt(item: VQAItem, rubric: Rubric, answer: str, k: int) -> str:
    """``answer`` with its first ``k`` facts replaced by contradicting ones (see module docstring)."""
    if k <= 0:
        return answer
    if item.category == "consistency":
        return re.sub(r"^\s*(yes|no)\b", lambda m: "No" if m.group(1).lower() == "yes" else "Yes", answer,
                      count=1, flags=re.IGNORECASE)
    if item.category == "defect_type":
        labels = [lbl for lbl in item.labels if lbl != "none"]
        wrong = [p for p in PATTERNS if p not in labels]
        for label, replacement in list(zip(labels, wrong))[:k]:
            answer = _variant_pattern([label, label.replace("-", " ")]).sub(replacement, answer)
        return answer
    dim = rubric.dimension(item.dimension)
    wrong_terms = list(dim.must_avoid) or ["an unrelated cause"]
    done = 0
    for index, term in enumerate(dim.must_hit):
        if done >= k:
            break
        pattern = _variant_pattern(term.variants)
        if not pattern.search(answer):
            continue
        answer = pattern.sub(_opposite_clock(term.term) or wrong_terms[index % len(wrong_terms)], answer)
        done += 1
    return answer


class StrategyResult(BaseModel):
    strategy: str
    mean: float  # 0–10
    share_of_oracle: float
    n: int


def run_strategies(items: Sequence[VQAItem], scorer: RuleScorer, *, seed: int = 0,
                   strategies: Mapping[str, Strategy] = STRATEGIES,
                   others: Mapping[str, Mapping[str, str]] | None = None) -> list[StrategyResult]:
    """Mean rule score of the oracle (reference answers), every strategy and any ``others`` (name → item id →
    answer, e.g. a baseline's answers), each with its share of the oracle's mean on the same items (a strategy
    skips the categories in :data:`NOT_DEGENERATE_ON`)."""
    rng = np.random.default_rng(seed)
    oracle = np.array([scorer.score(it, it.answer).score for it in items])
    answers: dict[str, list[str]] = {"oracle": [it.answer for it in items]}
    for name, strategy in strategies.items():
        answers[name] = [strategy(it, scorer.rubric_for(it), scorer, rng) for it in items]
    for name, by_item in (others or {}).items():
        answers[name] = [by_item.get(it.id, "") for it in items]
    results = []
    for name, texts in answers.items():
        keep = [i for i, it in enumerate(items) if it.category not in NOT_DEGENERATE_ON.get(name, set())]
        mean = float(np.mean([scorer.score(items[i], texts[i]).score for i in keep]))
        oracle_mean = float(oracle[keep].mean())
        results.append(StrategyResult(strategy=name, mean=mean, n=len(keep),
                                      share_of_oracle=mean / oracle_mean if oracle_mean else float("nan")))
    return results


def corruption_ladder(items: Sequence[VQAItem], scorer: RuleScorer, max_facts: int = 4) -> list[float]:
    """Mean rule score of the reference answers with 0, 1, …, ``max_facts`` facts corrupted."""
    return [
        float(np.mean([scorer.score(it, corrupt(it, scorer.rubric_for(it), it.answer, k)).score for it in items]))
        for k in range(max_facts + 1)
    ]
