"""The GSPO reward: rule score of the <SOLUTION>, a format term that never pays alone, degenerate answers ~0."""
from __future__ import annotations

import numpy as np
import pytest

from wafersage.harness.scoring.calibrate import CalibrationError
from wafersage.harness.scoring.gaming import NOT_DEGENERATE_ON, STRATEGIES, corrupt
from wafersage.harness.scoring.rules import RuleConstants, RuleScorer
from wafersage.tasks.bench.folder import Benchmark
from wafersage.training.config import RewardSettings
from wafersage.training.data import format_target
from wafersage.training.rewards import RubricReward, completion_text, is_well_formed, solution_text

from train_factory import build_train_bench


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Benchmark:
    return Benchmark.load(build_train_bench(tmp_path_factory.mktemp("reward") / "bench", n_wafers=18))


def _wrapped(answer: str, reasoning: str = "The failing dies form a pattern.") -> list[dict[str, str]]:
    """A completion as TRL passes it to reward functions (conversational)."""
    return [{"role": "assistant", "content": format_target(reasoning, answer)}]


def test_reference_answers_earn_high_and_degenerate_strategies_earn_about_zero(bench):
    reward = RubricReward.from_bench(bench)
    items = bench.all_items
    reference = reward([_wrapped(it.answer) for it in items], [it.id for it in items])
    top = 1 + reward.settings.format_bonus
    assert np.mean(reference) >= 0.9 * top
    rng = np.random.default_rng(0)
    for name, strategy in STRATEGIES.items():
        kept = [it for it in items if it.category not in NOT_DEGENERATE_ON.get(name, set())]
        answers = [strategy(it, bench.rubrics[it.wafer_id], reward.scorer, rng) for it in kept]
        # the gamer gets the format bonus for free: it is well formed
        rewards = reward([_wrapped(a) for a in answers], [it.id for it in kept])
        assert np.mean(rewards) <= 0.1 * np.mean(reference), f"{name} games the reward: {np.mean(rewards):.3f}"


def test_format_term_never_pays_on_its_own(bench):
    reward = RubricReward.from_bench(bench)
    item = next(it for it in bench.all_items if it.category == "spatial")
    empty = reward.breakdown(item.id, "<REASONING>Looking at the map.</REASONING><SOLUTION>.</SOLUTION>")
    assert empty.well_formed and empty.content == 0.0 and empty.reward == 0.0
    plain = reward.breakdown(item.id, item.answer)  # right answer, no tags: content only
    tagged = reward.breakdown(item.id, format_target("reasoning", item.answer))
    assert plain.content == tagged.content > 0.5
    assert not plain.well_formed and tagged.well_formed
    assert tagged.reward == pytest.approx(plain.reward * (1 + reward.settings.format_bonus))


def test_only_the_solution_is_scored(bench):
    reward = RubricReward.from_bench(bench)
    item = next(it for it in bench.all_items if it.category == "spatial")
    # the right answer hidden in the reasoning earns nothing when the solution is wrong
    hidden = reward.breakdown(item.id, format_target(item.answer, "I cannot tell."))
    assert hidden.content == 0.0 and hidden.scored_text == "I cannot tell."
    strict = RubricReward.from_bench(bench, RewardSettings(missing_solution="zero"))
    assert strict.breakdown(item.id, item.answer).reward == 0.0
    assert strict.breakdown(item.id, format_target("r", item.answer)).reward > 0.5


@pytest.mark.parametrize("text, ok", [
    ("<REASONING>a</REASONING>\n<SOLUTION>b</SOLUTION>", True),
    ("  <REASONING>a</REASONING><SOLUTION>b</SOLUTION>  ", True),
    ("<REASONING> </REASONING><SOLUTION>b</SOLUTION>", False),
    ("<SOLUTION>b</SOLUTION>", False),
    ("<REASONING>a</REASONING><SOLUTION>b</SOLUTION><SOLUTION>c</SOLUTION>", False),
    ("<REASONING>a</REASONING><SOLUTION>b</SOLUTION> trailing", False),
    ("<REASONING>a</REASONING><SOLUTION>b", False),
])
def test_well_formed(text, ok):
    assert is_well_formed(text) is ok


def test_text_helpers():
    assert solution_text("<SOLUTION> a </SOLUTION> x <SOLUTION>b</SOLUTION>") == "b"
    assert solution_text("<SOLUTION>unfinished") is None
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "x"}]}]) == "x"
    assert completion_text("plain") == "plain"


def test_trl_signature_logs_parts_and_rejects_unknown_items(bench):
    reward = RubricReward.from_bench(bench)
    item = bench.items("train")[0]
    logged: dict[str, float] = {}
    values = reward([_wrapped(item.answer), "nonsense"], item_id=[item.id, item.id],
                    log_metric=logged.__setitem__, image=[None, None], trainer_state=None)
    assert values[0] > 0.5 and values[1] == 0.0
    assert logged["well_formed"] == 0.5 and logged["reward_content"] == pytest.approx(values[0] / 1.1 / 2)
    with pytest.raises(KeyError, match="not in the benchmark"):
        reward(["x"], item_id=["no-such-item"])


def test_calibrated_constants_are_used(bench, tmp_path):
    from wafersage.harness.scoring.calibrate import CalibrationConfig, FeatureTable, calibrate, save_calibration

    scorer = RuleScorer(bench.rubrics)
    rubric_items = [it for it in bench.all_items if it.category in ("spatial", "morphology", "root_cause")]
    answers = [corrupt(it, bench.rubrics[it.wafer_id], it.answer, i % 3) for i, it in enumerate(rubric_items)]
    features = [scorer.features(it, a) for it, a in zip(rubric_items, answers)]  # varied scores to fit on
    table = FeatureTable(features)
    fitted = calibrate(table, table.scores(RuleConstants(partial_floor=0.3)), [it.wafer_id for it in rubric_items],
                       judge_identity={"model": "test"}, bench_hash=bench.hash,
                       config=CalibrationConfig(folds=2, iters=0, screen=3, n_resamples=100))
    constants = RuleConstants(partial_floor=0.1, contradiction_penalty=0.9, extra_penalty=0.4)
    path = save_calibration(fitted.model_copy(update={"constants": constants}), tmp_path / "calibration.json")
    reward = RubricReward.from_bench(bench, RewardSettings(calibration=path))
    assert reward.scorer.constants == constants
    default = RubricReward.from_bench(bench)
    partial = [(it, corrupt(it, bench.rubrics[it.wafer_id], it.answer, 1)) for it in rubric_items]
    calibrated = [reward.breakdown(it.id, a).content for it, a in partial]
    assert calibrated == [RuleScorer(bench.rubrics, constants).score(it, a).reward for it, a in partial]
    assert calibrated != [default.breakdown(it.id, a).content for it, a in partial]
    with pytest.raises(CalibrationError, match="not found"):
        RubricReward.from_bench(bench, RewardSettings(calibration=tmp_path / "missing.json"))
