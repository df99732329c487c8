"""Fact-level blind adversaries, cross-fitted on other wafers: what a reader without the image could guess.

Each adversary predicts an item's asked value (:func:`.answers.asked_value`) with a probability, from what a model
without the image has:

* ``template-prior``: the most common asked value of the item's template (its frequency is the probability);
* ``wording-prior``: the most common asked value of the item's exact question wording (numbers included);
* ``verdict-words``: for yes/no items, a logistic regression on the question's words and numbers (uni- and
  bigrams), the verdict it finds more likely.

Wafers are dealt into ``folds`` folds (seeded); the items of a fold are guessed by adversaries fitted on the other
folds only, so no item is guessed by a model that saw it.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Sequence

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from .answers import ItemRecord

ADVERSARIES: tuple[str, ...] = ("template-prior", "wording-prior", "verdict-words")
#: a question's tokens: words, numbers with their decimal point and percent sign
TOKEN_PATTERN = r"[A-Za-z0-9'.%]+"

Guesses = dict[str, tuple[str, float]]  # adversary -> (predicted value, its probability)


def wafer_folds(records: Sequence[ItemRecord], folds: int, seed: int) -> np.ndarray:
    """Each record's fold: its wafer's, wafers dealt in turn after a seeded shuffle of their sorted ids."""
    wafers = sorted({r.wafer_id for r in records})
    order = np.random.default_rng(seed).permutation(len(wafers))
    fold_of = {wafers[i]: rank % folds for rank, i in enumerate(order.tolist())}
    return np.array([fold_of[r.wafer_id] for r in records], dtype=int)


def _modal(counts: Counter) -> tuple[str, float]:
    value, n = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return value, n / sum(counts.values())


def _prior(train: Sequence[ItemRecord], test: Sequence[ItemRecord], key) -> list[tuple[str, float] | None]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for r in train:
        counts[key(r)][r.truth] += 1
    modal = {k: _modal(c) for k, c in counts.items()}
    return [modal.get(key(r)) for r in test]


def _verdicts(train: Sequence[ItemRecord], test: Sequence[ItemRecord]) -> list[tuple[str, float] | None]:
    train = [r for r in train if r.category == "consistency"]
    out: list[tuple[str, float] | None] = [None] * len(test)
    if len({r.truth for r in train}) < 2:
        return out
    words = CountVectorizer(token_pattern=TOKEN_PATTERN, ngram_range=(1, 2), lowercase=True)
    model = LogisticRegression(max_iter=1000).fit(words.fit_transform([r.question for r in train]),
                                                  [r.truth for r in train])
    rows = [i for i, r in enumerate(test) if r.category == "consistency"]
    if rows:
        proba = model.predict_proba(words.transform([test[i].question for i in rows]))
        for i, p in zip(rows, proba):
            best = int(np.argmax(p))
            out[i] = (str(model.classes_[best]), float(p[best]))
    return out


def guesses_of(train: Sequence[ItemRecord], test: Sequence[ItemRecord]) -> list[Guesses]:
    """Every adversary, fitted on ``train``, guessing each of ``test``."""
    out: list[Guesses] = [{} for _ in test]
    for name, guesses in (("template-prior", _prior(train, test, lambda r: r.template)),
                          ("wording-prior", _prior(train, test, lambda r: r.question)),
                          ("verdict-words", _verdicts(train, test))):
        for row, guess in zip(out, guesses):
            if guess is not None:
                row[name] = guess
    return out


def cross_fitted_guesses(records: Sequence[ItemRecord], folds: int = 5, seed: int = 0) -> list[Guesses]:
    """Every adversary's guess for every record, each fitted on the other folds' wafers (module docstring)."""
    fold = wafer_folds(records, folds, seed)
    out: list[Guesses] = [{} for _ in records]
    for f in range(folds):
        test_rows = np.flatnonzero(fold == f).tolist()
        if test_rows:
            train = [records[i] for i in np.flatnonzero(fold != f).tolist()]
            for i, guesses in zip(test_rows, guesses_of(train, [records[i] for i in test_rows])):
                out[i] = guesses
    return out


def confident_hit(record: ItemRecord, guesses: Guesses, threshold: float) -> tuple[str, float] | None:
    """The adversary that gets ``record`` right with the highest probability, when that is >= ``threshold``."""
    hits = [(p, name) for name, (value, p) in guesses.items() if value == record.truth and p >= threshold]
    if not hits:
        return None
    p, name = max(hits)
    return name, p
