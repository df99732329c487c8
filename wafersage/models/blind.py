"""Blind baselines: the floor a model must clear to show it reads the map.

Both learn from the benchmark's **train split only** (the questions and their reference answers) and answer a
question without its image, its wafer or its own reference:

* ``blind-prior`` says, per question category, the reference answer most common on the train split (for a yes/no
  question, the more common verdict);
* ``blind-question`` answers from the question's words: per question wording (numbers blanked), the most common
  train reference answer of that wording; a yes/no verdict from a logistic regression on the question's words and
  word pairs; a wording never seen falls back to ``blind-prior``.

A leaderboard that shows them tells how much of a score priors and wording alone earn.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

from ..tasks.bench.folder import Benchmark
from ..tasks.bench.schema import VQAItem
from .baselines import _Baseline, _metadata
from .base import ModelRequest

_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")


def wording(question: str) -> str:
    """The question with its numbers blanked: questions asked with the same words share a wording."""
    return _NUMBER.sub("#", question.lower())


def _modal(answers: list[str]) -> str:
    return Counter(answers).most_common(1)[0][0]


def _verdict(answer: str) -> str:
    return "Yes." if answer.strip().lower().startswith("yes") else "No."


class BlindPrior:
    """Per category, the most common train reference answer (yes/no items: the more common verdict)."""

    def __init__(self, train: list[VQAItem]):
        if not train:
            raise ValueError("the benchmark has no train split to learn priors from; build it with a train share")
        by_category: dict[str, list[str]] = {}
        for item in train:
            answer = _verdict(item.answer) if item.category == "consistency" else item.answer
            by_category.setdefault(item.category, []).append(answer)
        self.answers = {category: _modal(answers) for category, answers in by_category.items()}

    def __call__(self, category: str, question: str) -> str:
        return self.answers.get(category, "No.")


class BlindQuestion:
    """Per question wording, the most common train reference answer; yes/no verdicts from the question's words."""

    def __init__(self, train: list[VQAItem]):
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression

        self.prior = BlindPrior(train)
        groups: dict[str, list[str]] = {}
        for item in train:
            if item.category != "consistency":
                groups.setdefault(wording(item.question), []).append(item.answer)
        self.answers = {w: _modal(answers) for w, answers in groups.items()}
        checks = [item for item in train if item.category == "consistency"]
        labels = [_verdict(item.answer) for item in checks]
        self.vectoriser = self.model = None
        if len(set(labels)) == 2:
            self.vectoriser = CountVectorizer(token_pattern=r"[A-Za-z0-9']+", ngram_range=(1, 2))
            features = self.vectoriser.fit_transform([item.question for item in checks])
            self.model = LogisticRegression(max_iter=1000).fit(features, labels)

    def __call__(self, category: str, question: str) -> str:
        if category == "consistency":
            if self.model is None:
                return self.prior(category, question)
            return str(self.model.predict(self.vectoriser.transform([question]))[0])
        return self.answers.get(wording(question)) or self.prior(category, question)


@lru_cache(maxsize=8)
def _train_items(bench_dir: str) -> tuple[VQAItem, ...]:
    return tuple(Benchmark.load(bench_dir, verify=False).items("train"))


class _BlindBaseline(_Baseline):
    """Answers from the train split's questions and references only; never the map, the image or the item's own
    reference (the request carries the question; ``bench_dir`` says where the train split is)."""

    learner: type

    def __init__(self, config):
        super().__init__(config)
        self._fitted: dict[str, object] = {}

    def answer(self, request: ModelRequest) -> str:
        folder = str(Path(_metadata(request, "bench_dir")).resolve())
        if folder not in self._fitted:
            self._fitted[folder] = self.learner(list(_train_items(folder)))
        question = next(m.content for m in reversed(request.messages) if m.role == "user")
        return self._fitted[folder](_metadata(request, "category"), question)


class BlindPriorModel(_BlindBaseline):
    learner = BlindPrior


class BlindQuestionModel(_BlindBaseline):
    learner = BlindQuestion
