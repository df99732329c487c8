"""Several LLM judges grading the same answers: a judge panel.

``wafersage score RUN --judge A --judge B`` grades every answer with each judge (:class:`JudgePanel`). An answer is
*covered* when every judge scored it; its judge score is the judges' mean or median
(:attr:`JudgePanelSettings.combine`), and a judge that could not score it leaves it unscored with that judge's
reason — a judge failure is never a low score. Each answer keeps every judge's verdict and their range (max − min);
an answer whose range exceeds :attr:`JudgePanelSettings.disagreement` is flagged. :func:`judge_agreement` measures
how far the judges agree on the covered answers: interval Krippendorff's alpha with a CI that resamples wafers,
beside each judge's mean. One judge is a panel of one, whose verdicts and identity are the judge's own.

:func:`load_judges` builds a panel from model names or YAML files (the one place the commands build judges).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ....models.registry import load_model, resolve
from ....tasks.bench.schema import DIMENSIONS, Rubric, VQAItem
from ...run.cache import ResponseCache
from .judge import JudgeScore, JudgeSettings, LLMJudge
from ..stats import Estimate, alpha_ci, mean_ci

Triple = tuple[VQAItem, Rubric, str]
#: an answer's judge verdict and each judge's verdict (empty for a panel of one)
Graded = tuple[JudgeScore, list[JudgeScore]]


class JudgePanelSettings(BaseModel):
    """How several judges' verdicts are combined and compared."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    combine: Literal["mean", "median"] = Field(
        "mean", description="how several judges' scores of one answer become its judge score")
    disagreement: float = Field(
        3.0, ge=0, le=10, description="flag an answer when its judges' scores differ by more than this many points "
                                      "(0-10 scale)")


class CoverageSettings(BaseModel):
    """How much of a run the judge must have scored before its score ranks or gates the run."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_coverage: float = Field(
        0.95, ge=0, le=1, description="least share of a run's answers with a judge score (from every judge) for the "
                                      "judge score to rank or gate it; 'wafersage score --judge' exits 1 below it")
    on_low: Literal["flag", "refuse"] = Field(
        "flag", description="a judge-ranked report or compare with a run below min_coverage: 'flag' ranks on the "
                            "items every run has a judge score for and marks the run loudly, 'refuse' stops and "
                            "names the fix")

    def low(self, coverage: float | None) -> bool:
        """Whether a run with this judge coverage is below the threshold (None: nothing answered, not low)."""
        return coverage is not None and coverage < self.min_coverage


class FlaggedItem(BaseModel):
    """An answer whose judges disagree by more than the panel's threshold."""

    item_id: str
    repeat: int = 0
    wafer_id: str
    scores: dict[str, float] = Field(description="judge label -> score")
    range: float = Field(description="max - min of the judges' scores")


class JudgeAgreement(BaseModel):
    """Agreement of several judges on the answers every one of them scored (summary.json ``judge_agreement``)."""

    judges: list[str] = Field(description="judge labels, in the order given")
    combine: str = Field(description="mean or median: how the judges' scores make an answer's judge score")
    means: dict[str, Estimate] = Field(description="each judge's mean score on the covered answers, 95% wafer CI")
    alpha: Estimate | None = Field(description="interval Krippendorff's alpha with a 95% CI resampling wafers; none "
                                               "when undefined (no covered answer, or every score the same)")
    n_covered: int = Field(description="answers every judge scored (the answers alpha and the means are over)")
    disagreement: float = Field(description="the flagging threshold in points")
    n_flagged: int
    flagged: list[FlaggedItem] = Field(description="answers whose judges differ by more than the threshold, "
                                                   "widest first")


def _labels(judges: Sequence[LLMJudge]) -> list[str]:
    names = [j.config.name for j in judges]
    return [name if names.count(name) == 1 else f"{name} #{i + 1}" for i, name in enumerate(names)]


class JudgePanel:
    """One or more judges grading the same answers (see the module docstring)."""

    def __init__(self, judges: Sequence[LLMJudge], settings: JudgePanelSettings | None = None):
        if not judges:
            raise ValueError("a judge panel needs at least one judge")
        self.judges, self.settings, self.labels = list(judges), settings or JudgePanelSettings(), _labels(judges)
        if len(self.judges) == 1:
            self.identity, self.judge_id = self.judges[0].identity, self.judges[0].judge_id
        else:
            self.identity = {"name": " + ".join(self.labels), "judges": [j.identity for j in self.judges],
                             "combine": self.settings.combine, "disagreement": self.settings.disagreement}
            digest = hashlib.sha256(json.dumps(self.identity, sort_keys=True, default=str).encode())
            self.judge_id = digest.hexdigest()[:16]

    @property
    def identities(self) -> list[dict[str, Any]]:
        """Every judge's identity (model config without secrets, settings, prompt template and its sha256)."""
        return [j.identity for j in self.judges]

    def _todo(self, n: int, previous: Sequence[list[JudgeScore] | None] | None) -> list[list[int]]:
        """Per judge, the answers to ask it: all, or (re-asking) those without a scored verdict from it."""
        if previous is None:
            return [list(range(n))] * len(self.judges)
        return [[i for i in range(n) if previous[i] is None or previous[i][j].status != "scored"]
                for j in range(len(self.judges))]

    def n_requests(self, n: int, previous: Sequence[list[JudgeScore] | None] | None = None) -> int:
        """How many (judge, answer) verdicts :meth:`grade` will ask for."""
        return sum(len(todo) for todo in self._todo(n, previous))

    async def grade(self, triples: Sequence[Triple], progress=None,
                    previous: Sequence[list[JudgeScore] | None] | None = None) -> list[Graded]:
        """Per answer: (its judge verdict, each judge's verdict — empty for a panel of one). With ``previous``
        (each answer's earlier verdicts per judge, None for an answer not judged before) only the verdicts that
        are not scored are asked for again, fresh from the endpoint; the scored ones are kept."""
        todo = self._todo(len(triples), previous)
        verdicts = [list(p) if p is not None else [None] * len(self.judges)
                    for p in (previous if previous is not None else [None] * len(triples))]
        fresh = previous is not None
        answers = await asyncio.gather(*(judge.judge_many([triples[i] for i in indices], progress, fresh=fresh)
                                         for judge, indices in zip(self.judges, todo)))
        for j, (indices, got) in enumerate(zip(todo, answers)):
            for i, verdict in zip(indices, got):
                verdicts[i][j] = verdict
        return [(self.combine(v), v if len(self.judges) > 1 else []) for v in verdicts]

    def combine(self, verdicts: Sequence[JudgeScore]) -> JudgeScore:
        """The answer's verdict from its judges' verdicts: unscored (with the failing judges' reasons) unless every
        judge scored it; else the mean or median of their scores and dimensions."""
        if len(verdicts) == 1:
            return verdicts[0]
        pairs = list(zip(self.labels, verdicts))
        failed = [(label, v) for label, v in pairs if v.status != "scored"]
        if failed:
            return JudgeScore(status="unscored", reason="; ".join(f"{label}: {v.reason}" for label, v in failed),
                              n_unparsed=sum(v.n_unparsed for v in verdicts), judge_id=self.judge_id)
        middle = np.median if self.settings.combine == "median" else np.mean
        scores = [v.score for v in verdicts]
        dims = {d: float(middle(values)) for d in DIMENSIONS
                if (values := [v.dimensions[d] for v in verdicts if d in v.dimensions])}
        spreads = [v.spread for v in verdicts if v.spread is not None]
        flips = [v.flip_rate for v in verdicts if v.flip_rate is not None]
        return JudgeScore(
            status="scored", score=float(middle(scores)), dimensions=dims, range=float(max(scores) - min(scores)),
            rationale=" | ".join(f"{label}: {v.rationale}" for label, v in pairs if v.rationale),
            spread=float(np.mean(spreads)) if spreads else None, flip_rate=float(np.mean(flips)) if flips else None,
            n_unparsed=sum(v.n_unparsed for v in verdicts), notes=[n for v in verdicts for n in v.notes],
            judge_id=self.judge_id)

    async def aclose(self) -> None:
        for judge in self.judges:
            await judge.model.aclose()


def covered_ratings(rows: Sequence[tuple[str, int, str, Sequence[JudgeScore]]],
                    n_judges: int) -> tuple[list[tuple[str, int, str, list[float]]], np.ndarray, list[str]]:
    """The rows (item id, repeat, wafer id, each judge's verdict) every judge scored, as (item, repeat, wafer,
    scores), their judges × answers score matrix and their wafers."""
    covered = [(item, repeat, wafer, [v.score for v in verdicts]) for item, repeat, wafer, verdicts in rows
               if all(v.status == "scored" for v in verdicts)]
    ratings = np.array([scores for *_, scores in covered], dtype=float).reshape(len(covered), n_judges).T
    return covered, ratings, [wafer for _, _, wafer, _ in covered]


def judge_agreement(rows: Sequence[tuple[str, int, str, Sequence[JudgeScore]]], labels: Sequence[str],
                    settings: JudgePanelSettings) -> JudgeAgreement:
    """Agreement of the judges on ``rows`` = (item id, repeat, wafer id, each judge's verdict) of the answers; only
    answers every judge scored count."""
    covered, ratings, wafers = covered_ratings(rows, len(labels))
    flagged = sorted((FlaggedItem(item_id=item, repeat=repeat, wafer_id=wafer, scores=dict(zip(labels, scores)),
                                  range=max(scores) - min(scores))
                      for item, repeat, wafer, scores in covered if max(scores) - min(scores) > settings.disagreement),
                     key=lambda f: (-f.range, f.item_id, f.repeat))
    return JudgeAgreement(
        judges=list(labels), combine=settings.combine,
        means={label: mean_ci(ratings[j], wafers) for j, label in enumerate(labels)} if covered else {},
        alpha=alpha_ci(ratings, wafers), n_covered=len(covered),
        disagreement=settings.disagreement, n_flagged=len(flagged), flagged=flagged)


def unscored_reasons(verdicts: Sequence[JudgeScore], top: int = 5) -> dict[str, int]:
    """The most common reasons answers were left unscored, with their counts."""
    counts = Counter((v.reason or "no reason recorded")[:160] for v in verdicts if v.status != "scored")
    return dict(counts.most_common(top))


def load_judges(specs: Sequence[str], settings: JudgeSettings | None = None,
                panel: JudgePanelSettings | None = None, cache_path: Path | None = None) -> JudgePanel:
    """A panel of the judges named by ``specs`` (registered model names, YAML files, ``hf:PATH``), sharing one
    response cache at ``cache_path`` (none: no cache). Raises ``ModelConfigError`` for an unknown judge."""
    cache = ResponseCache(cache_path) if cache_path is not None else None
    judges = []
    for spec in specs:
        config = resolve(spec)
        judges.append(LLMJudge(load_model(config), config, settings, cache))
    return JudgePanel(judges, panel)
