"""GSPO rewards: the scorer's rule score of a completion's <SOLUTION>, with a format term that cannot pay alone.

``reward = content × (1 + format_bonus × well_formed)`` where ``content`` is the rule score (0–1) of the
``<SOLUTION>`` text against the item's rubric (calibrated constants when a calibration.json is given) and
``well_formed`` is 1 for exactly one non-empty ``<REASONING>`` block followed by exactly one non-empty
``<SOLUTION>`` block. A well-formed but empty or degenerate answer has content ≈ 0 and so earns ≈ 0; the
scorer's guards (echo, stuffing, avoid terms) apply unchanged.

:class:`RubricReward` is a plain callable with TRL's signature ``reward(completions, item_id, **columns)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ..harness.scoring.answers import solution_text
from ..harness.scoring.rules import RuleConstants, RuleScorer
from ..tasks.bench.folder import Benchmark
from ..tasks.bench.schema import VQAItem
from .config import RewardSettings

WELL_FORMED_RE = re.compile(r"\s*<REASONING>(?P<reasoning>.*?)</REASONING>\s*<SOLUTION>(?P<solution>.*?)</SOLUTION>\s*",
                            re.DOTALL)
TAG_RE = re.compile(r"</?(REASONING|SOLUTION)>")


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or TRL's conversational ``[{"role": "assistant", "content": …}]``."""
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content", "")
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return "".join(parts)


def is_well_formed(text: str) -> bool:
    """Exactly one non-empty reasoning block, then exactly one non-empty solution block, nothing else."""
    match = WELL_FORMED_RE.fullmatch(text)
    if not match or len(TAG_RE.findall(text)) != 4:
        return False
    return bool(match["reasoning"].strip()) and bool(match["solution"].strip())


@dataclass(frozen=True)
class RewardBreakdown:
    """One completion's reward and its parts."""

    content: float  # rule score of the scored text, 0–1
    well_formed: bool
    reward: float
    scored_text: str


class RubricReward:
    """The GSPO reward for one benchmark (see the module docstring)."""

    __name__ = "rubric_reward"  # TRL names the reward's log columns after this

    def __init__(self, items: Mapping[str, VQAItem], scorer: RuleScorer, settings: RewardSettings | None = None):
        self.items = dict(items)
        self.scorer = scorer
        self.settings = settings or RewardSettings()

    @classmethod
    def from_bench(cls, bench: Benchmark, settings: RewardSettings | None = None) -> "RubricReward":
        """Reward for every item of ``bench``, with the calibration's constants when ``settings`` names one."""
        settings = settings or RewardSettings()
        constants = RuleConstants()
        if settings.calibration is not None:
            from ..harness.scoring.calibrate import load_calibration

            constants = load_calibration(settings.calibration).constants
        scorer = RuleScorer.for_benchmark(bench, constants)
        return cls({it.id: it for it in bench.all_items}, scorer, settings)

    def item(self, item_id: str) -> VQAItem:
        try:
            return self.items[item_id]
        except KeyError:
            raise KeyError(f"reward: item {item_id!r} is not in the benchmark the reward was built from; build the "
                           "reward and the dataset from the same benchmark folder") from None

    def breakdown(self, item_id: str, completion: Any) -> RewardBreakdown:
        text = completion_text(completion)
        solution = solution_text(text)
        if solution is None:
            scored = "" if self.settings.missing_solution == "zero" else TAG_RE.sub(" ", text).strip()
        else:
            scored = solution
        content = self.scorer.score(self.item(item_id), scored).reward if scored else 0.0
        well_formed = is_well_formed(text)
        reward = content * (1.0 + self.settings.format_bonus * well_formed)
        return RewardBreakdown(content=content, well_formed=well_formed, reward=reward, scored_text=scored)

    def __call__(self, completions: Sequence[Any], item_id: Sequence[str],
                 log_metric: Callable[[str, float], None] | None = None, **columns: Any) -> list[float]:
        parts = [self.breakdown(i, c) for i, c in zip(item_id, completions, strict=True)]
        if log_metric is not None and parts:
            log_metric("reward_content", sum(p.content for p in parts) / len(parts))
            log_metric("well_formed", sum(p.well_formed for p in parts) / len(parts))
        return [p.reward for p in parts]
