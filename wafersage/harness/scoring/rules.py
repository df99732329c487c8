"""Rubric rule metrics: the paper's formula plus the guards that make it hard to game.

Per answer and rubric dimension (spatial, morphology, root cause)::

    C   = share of the item's target terms found (see "matching" below)
    n_f = must-avoid terms found (whole dimension)
    H   = min(1, alpha·C)
    A   = max(0, 1 − beta·n_f)
    D   = w_h·H + (1 − w_h)·A·H          guard 1: avoid credit is earned only in proportion to hit credit
    D  *= max(0, 1 − gamma·max(0, n_extra − allowance − n_hit))   guard 2: term stuffing
    D  *= max(0, 1 − kappa·n_c)          guard 3: contradictions
    D   = 0 when the answer echoes the question          guard 4: echo

Targets: an item with ``targets`` (must-hit term names of its dimension, what its question asks) is scored on
those terms only, so "At 7 o'clock." fully answers a clock question; an item without targets on every must-hit
term of its dimension, less, in the morphology dimension, the terms that ARE a defect-type label ("center
cluster", "donut": the type is scored by the defect-type items) when other terms remain. Must-avoid terms,
contradictions and extras always come from the whole dimension.

Matching: closed-vocabulary terms (zones, distributions, clock positions and directions, density levels, texture
words, shapes, equipment categories: :mod:`wafersage.harness.scoring.claims`) are found exactly, synonym-aware and
un-negated, never fuzzily; open phrases (causes, process steps) exactly or by whole-word fuzzy matching scored
against ``100·tau`` (:func:`wafersage.harness.scoring.matching.term_score`).

``n_c`` counts the closed-vocabulary statements that contradict the dimension (a zone, distribution, density,
texture or equipment the rubric does not hold, a clock position more than an hour from every true one, a direction
holding none, a true fact negated; :func:`wafersage.harness.scoring.claims.contradictions`): hedging with every value of a
slot is paid for by every wrong one. ``n_hit`` is the number of scored terms; ``n_extra`` counts the dimension's
vocabulary terms the answer names that this rubric does not ask for (the vocabulary is the union of every rubric's
terms in the benchmark plus :data:`BASE_VOCABULARY`), plus clock positions more than one hour away from every true
one. The paper's formula gives an empty answer D = 0.4 (A = 1) and rewards naming every keyword; with the guards
both score ~0. A defect-type answer naming more than :data:`MAX_TYPES` types (no wafer carries more) scores 0.

Which metric an item gets: spatial/morphology/root-cause items their own dimension's D; defect-type items the
multi-label F1 of the types named against the labels; consistency items ``verdict_weight`` for the right yes/no
verdict plus ``1 − verdict_weight`` times D on their targets (the facts that decide the premise), nothing for a
wrong verdict; a consistency item without targets (an older benchmark) is scored on its verdict alone. Item scores
are on a 0–10 scale (``RuleScore.reward`` is the 0–1 reward for training). Dimension weights combine per-dimension
means into the paper's overall S (see :func:`weighted_overall`).

:meth:`RuleScorer.features` extracts everything that does not depend on the constants once; :func:`evaluate`
turns features into a score. Calibration re-evaluates the same features (vectorised, ``calibrate.FeatureTable``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...tasks.bench.schema import DIMENSIONS, Rubric, VQAItem
from .claims import claims, contradictions, truth_of
from .compiled import CompiledDimension, CompiledTerm, scored_terms
from .matching import (
    CLOCK_RE, clock_hours, mentioned_types, normalise, similarity, type_f1, word_ngrams, yes_no,
)

#: terms every benchmark's vocabulary has, per dimension, so stuffing is caught even with one rubric
BASE_VOCABULARY: dict[str, tuple[str, ...]] = {
    "spatial": ("center", "middle", "edge", "upper left", "upper right", "lower left", "lower right",
                "radial", "linear", "clustered", "uniform", "scattered", "whole wafer", "ring"),
    "morphology": ("ring", "line", "blob", "arc", "cluster", "scratch", "donut", "scattered", "dense",
                   "sparse", "annular", "streak", "speckled", "near full", "random"),
    "root_cause": ("lithography", "etching", "deposition", "cmp", "wet processing", "handling", "probe card",
                   "particles", "contamination", "recipe"),
}


#: the most defect types one wafer carries (MixedWM38's four-type mixtures); naming more is stuffing
MAX_TYPES = 4
class RuleConstants(BaseModel):
    """Constants of the rule score. Paper defaults; ``wafersage calibrate`` fits alpha, beta, w_hit, tau and the
    dimension weights to an LLM judge."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    alpha: float = Field(1.5, gt=0, le=10, description="hit gain: H = min(1, alpha·C)")
    beta: float = Field(0.25, ge=0, le=1, description="avoid penalty per must-avoid term: A = max(0, 1 − beta·n_f)")
    w_hit: float = Field(0.6, ge=0, le=1, description="weight of H in D; the avoid weight is 1 − w_hit")
    tau: float = Field(0.713, ge=0.5, le=1, description="fuzzy-match threshold (rapidfuzz score / 100)")
    dim_weights: dict[str, float] = Field(
        default_factory=lambda: {"spatial": 0.40, "morphology": 0.35, "root_cause": 0.25},
        description="weights of the dimension means in the overall S; normalised to sum to 1",
    )
    extra_allowance: int = Field(
        2, ge=0, description="off-rubric vocabulary terms tolerated (on top of the must-hit count) before a penalty")
    extra_penalty: float = Field(
        0.25, ge=0, le=1, description="gamma: D shrinks by this per off-rubric term beyond the allowance")
    echo_threshold: float = Field(
        0.85, gt=0, le=1, description="answer/question similarity (0–1) from which an answer is an echo")
    contradiction_penalty: float = Field(
        0.5, ge=0, le=1, description="kappa: D shrinks by this per closed-vocabulary statement contradicting the rubric")
    verdict_weight: float = Field(
        0.5, ge=0, le=1, description="share of a consistency item's score a right yes/no verdict earns alone; the "
                                     "rest needs the facts that decide the premise (the item's targets)")

    @field_validator("dim_weights")
    @classmethod
    def _weights(cls, weights: dict[str, float]) -> dict[str, float]:
        if set(weights) != set(DIMENSIONS):
            raise ValueError(f"dim_weights needs exactly the keys {list(DIMENSIONS)}, got {sorted(weights)}")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("dim_weights must be non-negative with a positive sum")
        total = sum(weights.values())
        return {d: weights[d] / total for d in DIMENSIONS}

    @property
    def w_avoid(self) -> float:
        return 1.0 - self.w_hit


class DimensionScore(BaseModel):
    """One answer against one rubric dimension, with the terms behind the numbers."""

    dimension: str
    coverage: float  # C
    hit: float  # H
    avoid: float  # A (before conditioning on H)
    stuffing_factor: float  # 1 when no penalty
    score: float  # D, 0–1
    terms_hit: list[str] = Field(default_factory=list)
    terms_missed: list[str] = Field(default_factory=list)
    avoid_used: list[str] = Field(default_factory=list)
    extra_terms: list[str] = Field(default_factory=list)
    contradictions: list[str] = Field(default_factory=list)
    contradiction_factor: float = 1.0


class RuleScore(BaseModel):
    """The rule score of one answer (0–10) and how it came about."""

    metric: Literal["rubric", "type_f1", "yes_no"]
    score: float
    dimension: DimensionScore | None = None
    type_f1: float | None = None
    types_mentioned: list[str] = Field(default_factory=list)
    verdict: bool | None = None  # yes/no parsed from a consistency answer
    correct: bool | None = None  # consistency: verdict == expected_yes; defect type: exact set match
    flags: list[str] = Field(default_factory=list)  # "empty", "echo", "stuffing", "contradiction", "no_verdict"

    @property
    def reward(self) -> float:
        """The score on a 0–1 scale (the RL reward)."""
        return self.score / 10.0


@dataclass
class Features:
    """Everything about one answer that the constants do not change."""

    metric: Literal["rubric", "type_f1", "yes_no"]
    dimension: str
    empty: bool
    echo_similarity: float
    hit_scores: tuple[float, ...] = ()
    hit_terms: tuple[str, ...] = ()
    avoid_scores: tuple[float, ...] = ()
    avoid_terms: tuple[str, ...] = ()
    extra_terms: tuple[str, ...] = ()
    types: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    verdict: bool | None = None
    expected_yes: bool | None = None
    flags: list[str] = field(default_factory=list)
    contradictions: tuple[str, ...] = ()

    @property
    def fixed_score(self) -> float:
        """The 0–1 score of type items and of a yes/no verdict (independent of the constants but for echo)."""
        if self.metric == "type_f1":
            return type_f1(set(self.types), set(self.labels))
        if self.metric == "yes_no":
            return float(self.verdict is not None and self.verdict == self.expected_yes)
        raise ValueError("fixed_score applies to type_f1 and yes_no items only")

    @property
    def has_evidence(self) -> bool:
        """A yes/no item scored on its facts too (it has targets), not on its verdict alone."""
        return self.metric == "yes_no" and bool(self.hit_terms)


def _vocab_terms(rubrics: Iterable[Rubric]) -> dict[str, set[str]]:
    vocab = {d: {normalise(t).strip() for t in BASE_VOCABULARY[d]} for d in DIMENSIONS}
    for rubric in rubrics:
        for d in DIMENSIONS:
            dim = rubric.dimension(d)
            vocab[d].update(normalise(v).strip() for t in dim.must_hit for v in t.variants)
            vocab[d].update(normalise(a).strip() for a in dim.must_avoid)
    return {d: {t for t in terms if t and not CLOCK_RE.search(f" {t} ")} for d, terms in vocab.items()}


def _overlaps(term: str, phrases: Iterable[str]) -> bool:
    padded = f" {term} "
    return any(padded in f" {p} " or f" {p} " in padded for p in phrases)


class RuleScorer:
    """Scores answers against a benchmark's rubrics. Build it once per benchmark; rubrics compile on first use.

    ``RuleScorer(bench.rubrics.values(), constants)``; ``scorer.score(item, answer)`` → :class:`RuleScore`.
    """

    def __init__(self, rubrics: Iterable[Rubric] | Mapping[str, Rubric], constants: RuleConstants | None = None):
        rubric_list = list(rubrics.values() if isinstance(rubrics, Mapping) else rubrics)
        self.rubrics: dict[str, Rubric] = {r.wafer_id: r for r in rubric_list}
        self.constants = constants or RuleConstants()
        self.vocabulary = _vocab_terms(rubric_list)
        self._compiled: dict[tuple[str, str], CompiledDimension] = {}
        self._question_norm: dict[str, str] = {}

    def with_constants(self, constants: RuleConstants) -> "RuleScorer":
        """The same rubrics and compiled state with other constants."""
        other = object.__new__(RuleScorer)
        other.__dict__.update(self.__dict__)
        other.constants = constants
        return other

    def rubric_for(self, item: VQAItem) -> Rubric:
        try:
            return self.rubrics[item.wafer_id]
        except KeyError:
            raise KeyError(
                f"item {item.id}: no rubric for wafer {item.wafer_id!r}; pass the benchmark's rubrics "
                "(rubrics.jsonl) to RuleScorer"
            ) from None

    def _compile(self, rubric: Rubric, dimension: str, targets: tuple[str, ...] = ()) -> CompiledDimension:
        key = (rubric.wafer_id, dimension, targets)
        compiled = self._compiled.get(key)
        if compiled is None:
            dim = rubric.dimension(dimension)
            truth = truth_of(rubric, dimension)
            compiled = CompiledDimension(
                hits=tuple(CompiledTerm.of(t.term, t.variants, dimension)
                           for t in scored_terms(rubric, dimension, targets)),
                avoid=tuple(CompiledTerm.of(a, [a], dimension) for a in dim.must_avoid),
                off_rubric=self._off_rubric(rubric, dimension), clocks=truth.clocks, truth=truth,
            )
            self._compiled[key] = compiled
        return compiled

    def _off_rubric(self, rubric: Rubric, dimension: str) -> frozenset[str]:
        dim = rubric.dimension(dimension)
        hit_phrases = [normalise(v).strip() for t in dim.must_hit for v in t.variants]
        avoid_norm = {normalise(a).strip() for a in dim.must_avoid}
        return frozenset(t for t in self.vocabulary[dimension] if t not in avoid_norm and not _overlaps(t, hit_phrases))

    def _question(self, item: VQAItem) -> str:
        """The normalised question, cached by its text (items rewritten under the same id ask other questions)."""
        norm = self._question_norm.get(item.question)
        if norm is None:
            norm = self._question_norm[item.question] = normalise(item.question)
        return norm

    def features(self, item: VQAItem, answer: str, rubric: Rubric | None = None) -> Features:
        """Extract the constant-independent features of ``answer`` to ``item``."""
        text = normalise(answer or "")
        empty = text.strip() == ""
        echo = 0.0 if empty else similarity(text, self._question(item)) / 100.0
        if item.category == "defect_type":
            return Features("type_f1", "defect_type", empty, echo, types=frozenset(mentioned_types(text)),
                            labels=frozenset(item.labels or ["none"]))
        verdict = yes_no(text) if item.category == "consistency" else None
        if item.category == "consistency" and not item.targets:
            return Features("yes_no", item.dimension, empty, echo, verdict=verdict, expected_yes=item.expected_yes)
        try:
            compiled = self._compile(rubric or self.rubric_for(item), item.dimension, tuple(item.targets))
        except ValueError as exc:
            raise ValueError(f"item {item.id}: {exc}") from None
        found = claims(text, item.dimension)
        said = {(c.slot, c.value) for c in found if not c.negated}
        hits = tuple(t.score(text, said) for t in compiled.hits)
        avoids = tuple(t.score(text, said) for t in compiled.avoid)
        extras = list(compiled.off_rubric & word_ngrams(text))
        extras += [t for t in compiled.off_rubric_long if f" {t} " in text]
        if item.dimension == "spatial":
            extras += [f"{h} o'clock" for h in sorted(clock_hours(text))
                       if all(min(abs(h - c), 12 - abs(h - c)) > 1 for c in compiled.clocks)]
        return Features("yes_no" if item.category == "consistency" else "rubric",
                        item.dimension, empty, echo, hits, compiled.terms, avoids,
                        tuple(t.name for t in compiled.avoid), tuple(sorted(extras)), verdict=verdict,
                        expected_yes=item.expected_yes, contradictions=tuple(contradictions(found, compiled.truth)))

    def score(self, item: VQAItem, answer: str, rubric: Rubric | None = None) -> RuleScore:
        """Rule score of ``answer`` to ``item`` (its rubric looked up by wafer unless given)."""
        return evaluate(self.features(item, answer, rubric), self.constants)


def evaluate(features: Features, constants: RuleConstants) -> RuleScore:
    """Turn features into a :class:`RuleScore` under ``constants`` (the scalar twin of ``FeatureTable.scores``)."""
    flags = ["empty"] if features.empty else []
    echo = features.echo_similarity >= constants.echo_threshold
    if echo:
        flags.append("echo")
    if features.metric == "type_f1":
        stuffed = len(features.types) > MAX_TYPES
        if stuffed:
            flags.append("stuffing")
        f1 = 0.0 if echo or stuffed else features.fixed_score
        return RuleScore(metric="type_f1", score=10.0 * f1, type_f1=f1, types_mentioned=sorted(features.types),
                         correct=set(features.types) == set(features.labels), flags=flags)
    dim = _dimension_score(features, constants, flags) if features.metric == "rubric" or features.has_evidence \
        else None
    if features.metric == "yes_no":
        if features.verdict is None:
            flags.append("no_verdict")
        correct = features.verdict is not None and features.verdict == features.expected_yes
        value = 0.0
        if correct and not echo:
            value = constants.verdict_weight + (1 - constants.verdict_weight) * dim.score if dim else 1.0
        return RuleScore(metric="yes_no", score=10.0 * value, dimension=dim, verdict=features.verdict,
                         correct=correct, flags=flags)
    if echo:
        dim = dim.model_copy(update={"score": 0.0})
    return RuleScore(metric="rubric", score=10.0 * dim.score, dimension=dim, flags=flags)


def _dimension_score(features: Features, constants: RuleConstants, flags: list[str]) -> DimensionScore:
    """D of a rubric item, or of a consistency item's facts, before the echo guard."""
    threshold = 100.0 * constants.tau
    found = [s >= threshold for s in features.hit_scores]
    if features.hit_scores:
        coverage = sum(found) / len(found)
    else:
        coverage = 0.0 if features.empty else 1.0
    avoid_used = [t for t, s in zip(features.avoid_terms, features.avoid_scores) if s >= threshold]
    hit = min(1.0, constants.alpha * coverage)
    avoid = max(0.0, 1.0 - constants.beta * len(avoid_used))
    excess = max(0, len(features.extra_terms) - constants.extra_allowance - len(features.hit_scores))
    stuffing = max(0.0, 1.0 - constants.extra_penalty * excess)
    if excess:
        flags.append("stuffing")
    contradicted = max(0.0, 1.0 - constants.contradiction_penalty * len(features.contradictions))
    if features.contradictions:
        flags.append("contradiction")
    d = (constants.w_hit * hit + constants.w_avoid * avoid * hit) * stuffing * contradicted
    return DimensionScore(
        dimension=features.dimension, coverage=coverage, hit=hit, avoid=avoid, stuffing_factor=stuffing, score=d,
        terms_hit=[t for t, ok in zip(features.hit_terms, found) if ok],
        terms_missed=[t for t, ok in zip(features.hit_terms, found) if not ok],
        avoid_used=avoid_used, extra_terms=list(features.extra_terms),
        contradictions=list(features.contradictions), contradiction_factor=contradicted,
    )


def weighted_overall(dimension_means: Mapping[str, float], constants: RuleConstants) -> float:
    """The paper's S = Σ w_d · mean_d over the dimensions present (weights renormalised over them)."""
    present = [d for d in DIMENSIONS if d in dimension_means]
    total = sum(constants.dim_weights[d] for d in present)
    if not present or total <= 0:
        raise ValueError("weighted_overall needs at least one dimension with a positive weight")
    return sum(constants.dim_weights[d] * dimension_means[d] for d in present) / total
