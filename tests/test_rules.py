"""Rule metrics: the paper's formula, fuzzy matching, guards, and the reference answers of a real benchmark."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from rule_factory import center_rubric, edge_loc_rubric, item
from wafersage.harness.matching import mentioned_types, normalise, term_score, yes_no
from wafersage.harness.rules import RuleConstants, RuleScorer
from wafersage.tasks.benchmark import Benchmark

SPATIAL_Q = "Where on the wafer are the failing dies located?"


@pytest.fixture(scope="module")
def scorer() -> RuleScorer:
    return RuleScorer([edge_loc_rubric(), center_rubric()])


def test_paper_formula_on_partial_answer(scorer):
    # one of two must-hit terms (C = 0.5 -> H = 0.75), one must-avoid term (A = 0.75):
    # D = 0.6*0.75 + 0.4*0.75*0.75 = 0.675
    result = scorer.score(item("spatial", SPATIAL_Q), "The failures sit at the edge, also near the center.")
    dim = result.dimension
    assert dim.coverage == 0.5 and dim.terms_hit == ["edge"] and dim.terms_missed == ["3 o'clock"]
    assert dim.avoid_used == ["center"]
    assert result.score == pytest.approx(6.75)


def test_synonyms_fuzzy_and_numbers(scorer):
    spatial = item("spatial", SPATIAL_Q)
    assert scorer.score(spatial, "Failures along the rim on the right side.").score == 10.0
    assert scorer.score(spatial, "At the edge near three oclock.").score == 10.0  # fuzzy "three o clock"
    # 9 o'clock is never a fuzzy match for 3 o'clock, and it is a must-avoid term
    wrong = scorer.score(spatial, "At the edge near 9 o'clock.").dimension
    assert "3 o'clock" in wrong.terms_missed and wrong.avoid_used == ["9 o'clock"]
    assert term_score("ring", normalise("during the process")) == 0.0  # short terms match whole words only
    assert term_score("clustered", normalise("clusterd dies")) > 71.3


def test_guards_empty_echo_stuffing(scorer):
    spatial = item("spatial", SPATIAL_Q)
    empty = scorer.score(spatial, "")
    assert empty.score == 0.0 and "empty" in empty.flags  # the paper's formula gives 4.0 (A = 1)
    echo = scorer.score(spatial, SPATIAL_Q)
    assert echo.score == 0.0 and "echo" in echo.flags
    stuffed = scorer.score(spatial, "edge 3 o'clock middle upper left lower right radial linear uniform scattered "
                                    "6 o'clock 12 o'clock whole wafer")
    assert stuffed.dimension.coverage == 1.0 and "stuffing" in stuffed.flags and stuffed.score == 0.0
    paper = RuleScorer([edge_loc_rubric()], RuleConstants(extra_allowance=100))
    assert paper.score(spatial, "edge 3 o'clock middle upper left lower right radial").score > 5


def test_defect_type_f1_and_consistency(scorer):
    t = item("defect_type", "Which defect pattern is this?", labels=("Edge-Loc", "Scratch"), dimension="defect_type")
    assert scorer.score(t, "An Edge-Loc pattern with a scratch.").score == 10.0
    half = scorer.score(t, "An edge-loc pattern.")
    assert half.type_f1 == pytest.approx(2 / 3) and half.correct is False
    assert scorer.score(t, "Center, Donut, Edge-Loc, Edge-Ring, Loc, Scratch").score == 0.0  # > 4 types: stuffing
    c = item("consistency", "Is the cluster at the edge?", expected_yes=True)
    assert scorer.score(c, "Yes, it sits at the edge.").score == 10.0
    assert scorer.score(c, "No.").score == 0.0
    hedged = scorer.score(c, "Yes, no, maybe.")
    assert hedged.score == 0.0 and "no_verdict" in hedged.flags
    assert yes_no(normalise("It does, yes.")) is True and yes_no(normalise("Maybe.")) is None
    assert mentioned_types(normalise("A Loc cluster near the center.")) == {"Loc"}
    assert mentioned_types(normalise("Center and Edge-Ring patterns")) == {"Center", "Edge-Ring"}


def test_constants_are_checked():
    with pytest.raises(ValidationError, match="dim_weights needs exactly"):
        RuleConstants(dim_weights={"spatial": 1.0})
    weights = RuleConstants(dim_weights={"spatial": 2, "morphology": 1, "root_cause": 1}).dim_weights
    assert weights["spatial"] == pytest.approx(0.5)
    assert RuleConstants(w_hit=0.9).w_avoid == pytest.approx(0.1)


def test_unknown_wafer_names_the_item(scorer):
    with pytest.raises(KeyError, match="no rubric for wafer 'nope'"):
        scorer.score(item("spatial", SPATIAL_Q, wafer_id="nope"), "edge")


def test_reference_answers_of_a_real_benchmark_score_full(scorer_bench):
    bench = Benchmark.load(scorer_bench)
    real = RuleScorer(bench.rubrics)
    scores = [real.score(it, it.answer) for it in bench.items()]
    assert min(s.score for s in scores) >= 9.0
    assert sum(s.score for s in scores) / len(scores) >= 9.5
