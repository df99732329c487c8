"""Degenerate answers and corrupted references: the checks that the rule score cannot be gamed.

Strategies are plain functions ``strategy(item, rubric, scorer, rng) -> answer`` (:data:`STRATEGIES`), so the
same suite runs through the scorer (``benchmarks/bench_gaming.py``, tests) and through the RL reward (training).
Fitted strategies (:data:`FITTED_STRATEGIES`) are adversaries that never see the map: they learn from a training
split's items and scores, then answer blind. ``constant_per_category`` says the one sentence per question category
that scores best on the training items (chosen among the training reference answers and one-fact sentences, then
greedily extended by further facts while that helps); ``question_text_only`` answers from the question's words
alone: the best such sentence per question wording, a yes/no verdict from a logistic regression on the question's
bag of words, and the facts the question itself names.

:func:`corrupt` returns the reference answer with ``k`` facts made wrong (clock, zone, type, equipment/cause:
every must-hit fact of the item's dimension is a candidate; a consistency verdict is flipped); a sound score
drops strictly, on average, with every extra wrong fact.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel

from ...tasks.bench.schema import Rubric, VQAItem
from ...tasks.maps.wafer import LABELS, PATTERNS
from .lexicon import lexicon
from .matching import clock_hours, normalise
from .reader import read
from .rules import RuleScorer

Strategy = Callable[[VQAItem, Rubric, RuleScorer, np.random.Generator], str]
#: fit(training items, scorer) -> a strategy that answers without the map
FittedStrategy = Callable[[Sequence[VQAItem], RuleScorer], Strategy]

CONSTANT_SENTENCE = "The wafer map shows a cluster of failing dies, probably caused by a process excursion."
_ZONES = ("center", "middle", "edge")


def empty(item: VQAItem, rubric: Rubric, scorer: RuleScorer, rng: np.random.Generator) -> str:
    return ""


def constant(item: VQAItem, rubric: Rubric, scorer: RuleScorer, rng: np.random.Generator) -> str:
    return CONSTANT_SENTENCE


def echo(item: VQAItem, rubric: Rubric, scorer: RuleScorer, rng: np.random.Generator) -> str:
    return item.question


def keyword_stuffing(item: VQAItem, rubric: Rubric, scorer: RuleScorer, rng: np.random.Generator) -> str:
    """Every value of every slot the scorer reads (one wording each), every rubric term, every defect type, every
    clock position, yes and no."""
    terms = sorted({t.term for r in scorer.rubrics.values() for d in ("spatial", "morphology", "root_cause")
                    for t in r.dimension(d).must_hit} | set(slot_value_words()))
    clocks = [f"{h} o'clock" for h in range(1, 13)]
    return "Yes, no. " + ", ".join([*LABELS, *terms, *clocks]) + "."


def slot_value_words() -> list[str]:
    """One wording of every value of every slot of the lexicon (its first phrase without wildcards)."""
    words = []
    for matcher in lexicon().slots.values():
        for value, _ in matcher.values:
            words.append(value.replace("_", " "))
    return words


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


_FactFn = Callable[[VQAItem], str]


def _fact_sentences(items: Sequence[VQAItem], scorer: RuleScorer, dimension: str) -> list[str]:
    """One short sentence per must-hit term of ``dimension`` in the items' rubrics: "Dense."."""
    terms = {t.term for it in items for t in scorer.rubric_for(it).dimension(dimension).must_hit}
    return [f"{term[0].upper()}{term[1:]}." for term in sorted(terms)]


def _mean_score(scorer: RuleScorer, items: Sequence[VQAItem], answer: Callable[[VQAItem], str]) -> float:
    return float(np.mean([scorer.score(it, answer(it)).score for it in items])) if items else 0.0


def _best_text(scorer: RuleScorer, items: Sequence[VQAItem], candidates: Sequence[str],
               extensions: Sequence[str] = (), rounds: int = 2) -> str:
    """The candidate with the best mean score on ``items``, then greedily extended by ``extensions``."""
    best = max(dict.fromkeys(candidates), key=lambda text: _mean_score(scorer, items, lambda it: text))
    score = _mean_score(scorer, items, lambda it: best)
    for _ in range(rounds):
        grown = [f"{best} {extra}" for extra in extensions if extra not in best]
        if not grown:
            break
        top = max(grown, key=lambda text: _mean_score(scorer, items, lambda it: text))
        top_score = _mean_score(scorer, items, lambda it: top)
        if top_score <= score:
            break
        best, score = top, top_score
    return best


#: training reference answers an adversary tries per category (the most frequent ones)
MAX_ANSWER_CANDIDATES = 25


def _category_candidates(items: Sequence[VQAItem], scorer: RuleScorer) -> dict[str, tuple[list[str], list[str]]]:
    """category -> (candidate answers, one-fact extensions) from the training items."""
    out = {}
    for category in ("defect_type", "spatial", "morphology", "root_cause"):
        answers = Counter(it.answer for it in items if it.category == category)
        facts = [] if category == "defect_type" else _fact_sentences(items, scorer, category)
        out[category] = ([a for a, _ in answers.most_common(MAX_ANSWER_CANDIDATES)] + facts, facts)
    facts = _fact_sentences(items, scorer, "spatial") + _fact_sentences(items, scorer, "morphology")
    out["consistency"] = ([f"{v} {f}" for v in ("Yes.", "No.") for f in ["", *facts]], facts)
    return out


def fit_constant_per_category(items: Sequence[VQAItem], scorer: RuleScorer) -> Strategy:
    """The best single sentence per question category on ``items`` (see the module docstring)."""
    candidates = _category_candidates(items, scorer)
    chosen = {category: _best_text(scorer, [it for it in items if it.category == category], *candidates[category])
              for category in candidates}
    return lambda item, rubric, scorer, rng: chosen[item.category]


_NUMBER = re.compile(r"\b(\d+(?:\.\d+)?|" + "|".join(
    ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")) + r")\b")


def _wording(question: str) -> str:
    """The question with its numbers blanked: items asked with the same words share a wording."""
    return _NUMBER.sub("#", question.lower())


def _named_facts(item: VQAItem) -> str:
    """The facts the question itself names, as a sentence ("4 o clock, edge.")."""
    reading = read(item.question)
    said = [reading.text[c.start:c.end].strip() for c in reading.claims if c.said]
    return (", ".join(dict.fromkeys(said)) + ".") if said else ""


def fit_question_text_only(items: Sequence[VQAItem], scorer: RuleScorer) -> Strategy:
    """Answers from the question's words alone (see the module docstring)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    candidates = _category_candidates(items, scorer)
    fallback = fit_constant_per_category(items, scorer)
    by_wording: dict[str, list[VQAItem]] = {}
    for it in items:
        by_wording.setdefault(_wording(it.question), []).append(it)
    checks = [it for it in items if it.category == "consistency"]
    vectoriser = CountVectorizer(token_pattern=r"[A-Za-z0-9']+", ngram_range=(1, 2))
    model = LogisticRegression(max_iter=1000).fit(vectoriser.fit_transform([it.question for it in checks]),
                                                  [bool(it.expected_yes) for it in checks])

    def verdict(item: VQAItem) -> str:
        return "Yes." if model.predict(vectoriser.transform([item.question]))[0] else "No."

    answers: dict[str, _FactFn] = {}
    for wording, group in by_wording.items():
        category = group[0].category
        pool, facts = candidates[category]
        if category == "consistency":
            options: list[_FactFn] = [lambda it, f=f: f"{verdict(it)} {f}".strip() for f in ["", *facts]]
            options.append(lambda it: f"{verdict(it)} {_named_facts(it)}".strip())
        else:
            options = [lambda it, text=text: text for text in pool] + [_named_facts]
        options.append(lambda it: fallback(it, scorer.rubric_for(it), scorer, None))
        answers[wording] = max(options, key=lambda fn: _mean_score(scorer, group, fn))

    def strategy(item: VQAItem, rubric: Rubric, scorer_: RuleScorer, rng: np.random.Generator) -> str:
        answer = answers.get(_wording(item.question))
        return answer(item) if answer else fallback(item, rubric, scorer_, rng)

    return strategy


FITTED_STRATEGIES: dict[str, FittedStrategy] = {
    "constant_per_category": fit_constant_per_category,
    "question_text_only": fit_question_text_only,
}


def fitted_answers(items: Sequence[VQAItem], train_items: Sequence[VQAItem], scorer: RuleScorer, *, seed: int = 0,
                   fitted: Mapping[str, FittedStrategy] = FITTED_STRATEGIES) -> dict[str, list[str]]:
    """Each fitted strategy, fitted on ``train_items``, answering ``items`` (one seeded generator, in order)."""
    rng = np.random.default_rng(seed)
    answers = {}
    for name, fit in fitted.items():
        strategy = fit(train_items, scorer)
        answers[name] = [strategy(it, scorer.rubric_for(it), scorer, rng) for it in items]
    return answers


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
    by_category: dict[str, float] = {}  # mean 0–10 per question category


def run_strategies(items: Sequence[VQAItem], scorer: RuleScorer, *, seed: int = 0,
                   strategies: Mapping[str, Strategy] = STRATEGIES,
                   others: Mapping[str, Mapping[str, str]] | None = None,
                   train_items: Sequence[VQAItem] = (),
                   fitted: Mapping[str, FittedStrategy] = FITTED_STRATEGIES) -> list[StrategyResult]:
    """Mean rule score of the oracle (reference answers), every strategy, every fitted strategy (fitted on
    ``train_items``; skipped when there are none) and any ``others`` (name → item id → answer, e.g. a baseline's
    answers), each with its share of the oracle's mean on the same items (a strategy skips the categories in
    :data:`NOT_DEGENERATE_ON`)."""
    rng = np.random.default_rng(seed)
    oracle = np.array([scorer.score(it, it.answer).score for it in items])
    answers: dict[str, list[str]] = {"oracle": [it.answer for it in items]}
    every = dict(strategies)
    if train_items:
        every.update({name: fit(train_items, scorer) for name, fit in fitted.items()})
    for name, strategy in every.items():
        answers[name] = [strategy(it, scorer.rubric_for(it), scorer, rng) for it in items]
    for name, by_item in (others or {}).items():
        answers[name] = [by_item.get(it.id, "") for it in items]
    results = []
    for name, texts in answers.items():
        keep = [i for i, it in enumerate(items) if it.category not in NOT_DEGENERATE_ON.get(name, set())]
        scores = {i: scorer.score(items[i], texts[i]).score for i in keep}
        oracle_mean = float(oracle[keep].mean())
        by_category = {c: float(np.mean([v for i, v in scores.items() if items[i].category == c]))
                       for c in dict.fromkeys(items[i].category for i in keep)}
        mean = float(np.mean(list(scores.values())))
        results.append(StrategyResult(strategy=name, mean=mean, n=len(keep), by_category=by_category,
                                      share_of_oracle=mean / oracle_mean if oracle_mean else float("nan")))
    return results


def corruption_ladder(items: Sequence[VQAItem], scorer: RuleScorer, max_facts: int = 4) -> list[float]:
    """Mean rule score of the reference answers with 0, 1, …, ``max_facts`` facts corrupted."""
    return [
        float(np.mean([scorer.score(it, corrupt(it, scorer.rubric_for(it), it.answer, k)).score for it in items]))
        for k in range(max_facts + 1)
    ]
