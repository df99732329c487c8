"""The rule score: facts stated in the answer against the facts of the wafer.

Each wafer has structured facts read from its map and labels (:class:`~wafersage.tasks.bench.schema.FactSheet`,
turned into per-slot truth by :mod:`.truth`); each question asks for some of them (its *focus*, :mod:`.focus`);
the claim reader (:mod:`.reader`) takes the answer's statements. Then, per item:

* **defect type** items: precision × recall of the types named (not negated) against the labels; naming more than
  :data:`MAX_TYPES` types scores 0;
* **yes/no** (consistency) items: the verdict decides: wrong or missing scores 0; right scores
  ``max(VERDICT_FLOOR, min(BARE_VERDICT + (1 − BARE_VERDICT)·support, 1 − κ·n_c))``: ``support`` (0–1) is how well
  the explanation states a true fact about the map (the slots its dimension judges; a bare "Yes." earns
  ``BARE_VERDICT``, as graders give it) and ``n_c`` counts the explanation's statements that contradict the
  wafer; the lack of either caps the score;
* **descriptive** items: for each asked slot the wafer has a truth for, a credit from the components stated
  (``floor·s_max + (1 − floor)·mean`` over the components, weighted by their share of the failures; with the default
  floor 0, stating one of two equal zones earns half, both earn all, as graders give it; see :mod:`.truth` for
  tolerances), averaged over the slots; a spatial or root-cause answer is graded on its dimension's other slots as
  well, each weighing half an asked one (:data:`~.focus.GRADED_WHOLE`: "the edge zone" for an arc at 2 o'clock
  earns 2/3, as graders judge a location or a cause as a whole); then
  ``D = credit · max(0, 1 − κ·n_c) · max(0, 1 − γ·max(0, n_extra − allowance))``.
  A slot the wafer has no truth for (a clock question about a ring) falls back to the dimension's other slots.

Contradictions are counted over the item's dimension (a zone the map leaves clean, "one side" of a ring, a clock
three hours off, "sparse" for a dense map, a must-avoid equipment category or cause) and over defect types named
that the wafer does not have (background scatter excepted), asked or not. True statements the question did not ask
for (outside a spatial or root-cause answer's dimension) are neither paid nor charged; values that fit no component
without contradicting are *extras*, tolerated up to an allowance (hedging with every value of a slot pays for it).
Negated statements count for nothing. An empty answer, or one that echoes the question, scores 0. Scores are 0–10;
``RuleScore.reward`` is the 0–1 training reward.

:meth:`RuleScorer.features` extracts everything the constants do not change; :func:`evaluate` applies the constants
(calibration re-evaluates the same features, vectorised, in ``calibrate.FeatureTable``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...tasks.bench.schema import DIMENSIONS, FactSheet, Rubric, VQAItem
from . import SCORER_VERSION
from .explanation import Explanation
from .focus import ASKED_WEIGHT, DIMENSION_SLOTS, GRADED_WHOLE, JUDGED_SLOTS, focus_of
from .matching import normalise, similarity, type_match
from .reader import Reading, read
from .slots import slot_results, verdict_support
from .truth import WaferTruth, wafer_truth

#: the most defect types one wafer carries (MixedWM38's four-type mixtures); naming more is stuffing
MAX_TYPES = 4
#: a contradicting value stated beside a true value of the same slot ("dense, with sparse fringes") counts this much
HEDGE_WEIGHT = 0.5
#: a yes/no answer with the right verdict keeps this share of the score however wrong its explanation
VERDICT_FLOOR = 0.5
#: a yes/no answer with the right verdict and no true fact about the map to back it earns this share
BARE_VERDICT = 0.8


class RuleConstants(BaseModel):
    """Constants of the rule score (``wafersage calibrate`` fits the first three to a judge or a graded panel)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    partial_floor: float = Field(
        0.0, ge=0, le=1, description="share of a slot's credit that stating one of its several true values earns "
                                     "at least (0: the stated values' share of the failures)")
    contradiction_penalty: float = Field(
        0.35, ge=0, le=1, description="kappa: the score shrinks by this per statement contradicting the wafer")
    extra_penalty: float = Field(
        0.15, ge=0, le=1, description="gamma: the score shrinks by this per extra value beyond the allowance")
    extra_allowance: int = Field(
        2, ge=0, description="values that fit nothing (without contradicting) tolerated before a penalty")
    echo_threshold: float = Field(
        0.85, gt=0, le=1, description="answer/question similarity (0–1) from which an answer is an echo")
    dim_weights: dict[str, float] = Field(
        default_factory=lambda: {"spatial": 0.40, "morphology": 0.35, "root_cause": 0.25},
        description="weights of the dimension means in the overall S; normalised to sum to 1",
    )

    @field_validator("dim_weights")
    @classmethod
    def _weights(cls, weights: dict[str, float]) -> dict[str, float]:
        if set(weights) != set(DIMENSIONS):
            raise ValueError(f"dim_weights needs exactly the keys {list(DIMENSIONS)}, got {sorted(weights)}")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("dim_weights must be non-negative with a positive sum")
        total = sum(weights.values())
        return {d: weights[d] / total for d in DIMENSIONS}


class RuleScore(BaseModel):
    """The rule score of one answer (0–10) and how it came about."""

    metric: Literal["facts", "types", "yes_no"]
    score: float
    credit: float | None = None  # descriptive items: the slot credit before penalties (0–1)
    focus: list[str] = Field(default_factory=list)
    explanation: Explanation = Field(default_factory=Explanation)
    type_match: float | None = None  # defect-type items: precision × recall of the types named
    types_mentioned: list[str] = Field(default_factory=list)
    verdict: bool | None = None
    correct: bool | None = None  # consistency: verdict == expected_yes; defect type: exact set match
    flags: list[str] = Field(default_factory=list)  # "empty", "echo", "stuffing", "contradiction", "no_verdict"
    scorer_version: str = SCORER_VERSION

    @property
    def reward(self) -> float:
        """The score on a 0–1 scale (the RL reward)."""
        return self.score / 10.0


@dataclass
class Features:
    """Everything about one answer that the constants do not change."""

    metric: Literal["facts", "types", "yes_no"]
    dimension: str
    empty: bool
    echo_similarity: float
    slot_best: tuple[float, ...] = ()  # per graded slot: best component satisfaction (0–1)
    slot_mean: tuple[float, ...] = ()  # per graded slot: mean component satisfaction (0–1)
    focus: tuple[str, ...] = ()
    contradictions: tuple[str, ...] = ()
    hedges: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    types: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    verdict: bool | None = None
    expected_yes: bool | None = None
    support: float = 0.0  # yes/no: how well the explanation states a true fact about the map (0–1)
    explanation: Explanation = field(default_factory=Explanation)
    slot_weight: tuple[float, ...] = ()  # per graded slot: its weight in the credit (asked slots weigh more); () = 1s

    @property
    def weights(self) -> tuple[float, ...]:
        """Each graded slot's weight in the credit (1 each where none were recorded)."""
        return self.slot_weight or (1.0,) * len(self.slot_best)

    @property
    def verdict_share(self) -> float:
        """The share of a right yes/no verdict's score its explanation's support gives, before contradictions."""
        return BARE_VERDICT + (1.0 - BARE_VERDICT) * self.support

    @property
    def fixed_score(self) -> float:
        """The 0–1 score of type items and the verdict part of yes/no items."""
        if self.metric == "types":
            return 0.0 if len(self.types) > MAX_TYPES else type_match(set(self.types), set(self.labels))
        if self.metric == "yes_no":
            return float(self.verdict is not None and self.verdict == self.expected_yes)
        raise ValueError("fixed_score applies to defect-type and yes/no items only")


def slot_credit(best: float, mean: float, floor: float) -> float:
    """A slot's credit from its best and mean component satisfaction."""
    return floor * best + (1.0 - floor) * mean


class ScorerInputError(ValueError):
    """The scorer lacks what an item needs (its wafer's facts); the message names the item and the fix."""


class RuleScorer:
    """Scores answers against wafers' facts. ``RuleScorer(rubrics)`` when the rubrics carry fact sheets (format 3);
    otherwise pass ``sheets`` (wafer id -> :class:`FactSheet`, e.g. :func:`sheets_from_maps`)."""

    def __init__(self, rubrics: Iterable[Rubric] | Mapping[str, Rubric], constants: RuleConstants | None = None,
                 sheets: Mapping[str, FactSheet] | None = None):
        rubric_list = list(rubrics.values() if isinstance(rubrics, Mapping) else rubrics)
        self.rubrics: dict[str, Rubric] = {r.wafer_id: r for r in rubric_list}
        self.sheets: dict[str, FactSheet] = {r.wafer_id: r.facts for r in rubric_list if r.facts is not None}
        self.sheets.update(sheets or {})
        self.constants = constants or RuleConstants()
        self._truths: dict[str, WaferTruth] = {}
        self._question_norm: dict[str, str] = {}

    def with_constants(self, constants: RuleConstants) -> "RuleScorer":
        """The same facts with other constants."""
        other = object.__new__(RuleScorer)
        other.__dict__.update(self.__dict__)
        other.constants = constants
        return other

    def rubric_for(self, item: VQAItem) -> Rubric:
        try:
            return self.rubrics[item.wafer_id]
        except KeyError:
            raise ScorerInputError(f"item {item.id}: no rubric for wafer {item.wafer_id!r}; pass the benchmark's "
                                   "rubrics (rubrics.jsonl) to RuleScorer") from None

    def truth(self, wafer_id: str) -> WaferTruth:
        truth = self._truths.get(wafer_id)
        if truth is None:
            sheet = self.sheets.get(wafer_id)
            if sheet is None:
                raise ScorerInputError(
                    f"wafer {wafer_id!r}: no fact sheet; rebuild the benchmark with this version of 'wafersage synth' "
                    "or score it with its maps (RuleScorer.for_benchmark)")
            truth = self._truths[wafer_id] = wafer_truth(sheet, self.rubrics.get(wafer_id))
        return truth

    @classmethod
    def for_benchmark(cls, bench, constants: RuleConstants | None = None) -> "RuleScorer":
        """A scorer for a loaded benchmark; wafers whose rubric has no fact sheet are measured from their maps."""
        missing = {w for w, r in bench.rubrics.items() if r.facts is None}
        return cls(bench.rubrics, constants, sheets_from_maps(bench.wafers(), missing) if missing else None)

    def _echo(self, item: VQAItem, answer: str) -> float:
        norm = self._question_norm.get(item.question)
        if norm is None:
            norm = self._question_norm[item.question] = normalise(item.question)
        text = normalise(answer)
        return 0.0 if not text.strip() else similarity(text, norm) / 100.0

    def features(self, item: VQAItem, answer: str, rubric: Rubric | None = None) -> Features:
        """Extract the constant-independent features of ``answer`` to ``item``."""
        reading = read(answer or "")
        echo = self._echo(item, answer or "")
        if item.category == "defect_type":
            return Features("types", "defect_type", reading.empty, echo, types=reading.types,
                            labels=frozenset(item.labels or ["none"]))
        truth = self.truth(item.wafer_id)
        dimension = item.dimension if item.dimension in DIMENSION_SLOTS else "spatial"
        if item.category == "consistency":
            result = slot_results(reading, truth, (), (), JUDGED_SLOTS[dimension])
            support, backing = verdict_support(reading, truth, JUDGED_SLOTS[dimension], result.aside)
            return Features("yes_no", dimension, reading.empty, echo, contradictions=result.contradictions,
                            hedges=result.hedges, verdict=reading.verdict, expected_yes=item.expected_yes,
                            support=support,
                            explanation=result.explanation.model_copy(update={"matched": backing}))
        focus = focus_of(item.category, item.question, item.focus)
        focus = tuple(s for s in focus if s in DIMENSION_SLOTS[dimension]) or DIMENSION_SLOTS[dimension]
        whole = DIMENSION_SLOTS[dimension] if dimension in GRADED_WHOLE else ()
        result = slot_results(reading, truth, focus, DIMENSION_SLOTS[dimension], JUDGED_SLOTS[dimension],
                              also=whole, asked_weight=ASKED_WEIGHT)
        return Features("facts", dimension, reading.empty, echo, result.best, result.mean, result.focus,
                        result.contradictions, result.hedges, result.extras, explanation=result.explanation,
                        slot_weight=result.weights)

    def score(self, item: VQAItem, answer: str, rubric: Rubric | None = None) -> RuleScore:
        """Rule score of ``answer`` to ``item``."""
        return evaluate(self.features(item, answer, rubric), self.constants)

    def reading(self, answer: str) -> Reading:
        return read(answer or "")


def sheets_from_maps(wafers: Iterable, only: set[str] | None = None) -> dict[str, FactSheet]:
    """Fact sheets measured from ``WaferMap`` objects (only the ids in ``only`` when given)."""
    from ...tasks.synth.facts import sheet_of_map
    return {w.id: sheet_of_map(w) for w in wafers if only is None or w.id in only}


def evaluate(features: Features, constants: RuleConstants) -> RuleScore:
    """Turn features into a :class:`RuleScore` under ``constants`` (the scalar twin of ``FeatureTable.scores``)."""
    flags = ["empty"] if features.empty else []
    echo = features.echo_similarity >= constants.echo_threshold
    if echo:
        flags.append("echo")
    if features.metric == "types":
        if len(features.types) > MAX_TYPES:
            flags.append("stuffing")
        match = 0.0 if echo else features.fixed_score
        return RuleScore(metric="types", score=10.0 * match, type_match=match, types_mentioned=sorted(features.types),
                         correct=set(features.types) == set(features.labels), flags=flags)
    n_contra = len(features.contradictions) + HEDGE_WEIGHT * len(features.hedges)
    contradicted = max(0.0, 1.0 - constants.contradiction_penalty * n_contra)
    if n_contra:
        flags.append("contradiction")
    if features.metric == "yes_no":
        if features.verdict is None:
            flags.append("no_verdict")
        correct = features.verdict is not None and features.verdict == features.expected_yes
        value = max(VERDICT_FLOOR, min(features.verdict_share, contradicted)) if correct and not echo else 0.0
        return RuleScore(metric="yes_no", score=10.0 * value, verdict=features.verdict, correct=correct,
                         explanation=features.explanation, flags=flags)
    weights = features.weights
    credit = (sum(w * slot_credit(b, m, constants.partial_floor)
                  for b, m, w in zip(features.slot_best, features.slot_mean, weights)) / sum(weights)
              if weights else 0.0)
    excess = max(0, len(features.extras) - constants.extra_allowance)
    if excess:
        flags.append("stuffing")
    stuffing = max(0.0, 1.0 - constants.extra_penalty * excess)
    value = 0.0 if echo or features.empty else credit * contradicted * stuffing
    return RuleScore(metric="facts", score=10.0 * value, credit=credit, focus=list(features.focus),
                     explanation=features.explanation, flags=flags)


def weighted_overall(dimension_means: Mapping[str, float], constants: RuleConstants) -> float:
    """The paper's S = Σ w_d · mean_d over the dimensions present (weights renormalised over them)."""
    present = [d for d in DIMENSIONS if d in dimension_means]
    total = sum(constants.dim_weights[d] for d in present)
    if not present or total <= 0:
        raise ValueError("weighted_overall needs at least one dimension with a positive weight")
    return sum(constants.dim_weights[d] * dimension_means[d] for d in present) / total
