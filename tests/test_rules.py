"""Rule metrics: the paper's formula, exact closed-vocabulary and whole-word fuzzy matching, negation, item targets,
guards, evidence-backed consistency, and the reference answers of a real benchmark."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from rule_factory import center_rubric, edge_loc_rubric, item
from wafersage.harness.scoring.matching import mentioned_types, normalise, term_score, yes_no
from wafersage.harness.scoring.rules import RuleConstants, RuleScorer
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.bench.schema import MorphologyRubric, Rubric, SpatialRubric
from wafersage.tasks.synth.vocab import DENSITY_TERMS, DISTRIBUTION_TERMS, PATTERN_TERMS, STRUCTURE_TERMS, ZONE_TERMS

SPATIAL_Q = "Where on the wafer are the failing dies located?"
#: the paper's formula alone: no stuffing or contradiction guard
PAPER = RuleConstants(extra_allowance=100, contradiction_penalty=0)


@pytest.fixture(scope="module")
def scorer() -> RuleScorer:
    return RuleScorer([edge_loc_rubric(), center_rubric()])


def test_paper_formula_on_partial_answer(scorer):
    # one of two must-hit terms (C = 0.5 -> H = 0.75), one must-avoid term (A = 0.75):
    # D = 0.6*0.75 + 0.4*0.75*0.75 = 0.675
    answer = "The failures sit at the edge, also near the center."
    result = scorer.with_constants(PAPER).score(item("spatial", SPATIAL_Q), answer)
    dim = result.dimension
    assert dim.coverage == 0.5 and dim.terms_hit == ["edge"] and dim.terms_missed == ["3 o'clock"]
    assert dim.avoid_used == ["center"]
    assert result.score == pytest.approx(6.75)
    # "center" also contradicts the rubric's zone: the contradiction guard halves D
    guarded = scorer.score(item("spatial", SPATIAL_Q), answer)
    assert guarded.dimension.contradictions == ["center"] and "contradiction" in guarded.flags
    assert guarded.score == pytest.approx(6.75 * 0.5)


def test_synonyms_fuzzy_and_numbers(scorer):
    spatial = item("spatial", SPATIAL_Q)
    assert scorer.score(spatial, "Failures along the rim on the right side.").score == 10.0
    assert scorer.score(spatial, "At the edge near three oclock.").score == 10.0  # "oclock" spelled out
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
    # the same item id asking another question (a rewritten benchmark) is checked against the new question
    other_q = "Which radial zone holds most of the failing dies?"
    rewritten = spatial.model_copy(update={"question": other_q})
    assert "echo" not in scorer.score(rewritten, SPATIAL_Q).flags and "echo" in scorer.score(rewritten, other_q).flags
    stuffed = scorer.score(spatial, "edge 3 o'clock middle upper left lower right radial linear uniform scattered "
                                    "6 o'clock 12 o'clock whole wafer")
    assert stuffed.dimension.coverage == 1.0 and "stuffing" in stuffed.flags and stuffed.score == 0.0
    paper = RuleScorer([edge_loc_rubric()], PAPER)
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


def _generated_rubric(zone: str = "edge", density: str = "moderate", distribution: str = "localized",
                      clocks=(7,), pattern: str = "Edge-Loc") -> Rubric:
    """A rubric worded like the benchmark builder's (vocabulary terms with their synonyms)."""
    from wafersage.tasks.synth.vocab import CLOCK_TERMS

    return Rubric(
        wafer_id="g1", defect_types=[pattern], summary="s",
        spatial=SpatialRubric(zone=zone, distribution=distribution, clock_positions=list(clocks),
                              must_hit=[ZONE_TERMS[zone], DISTRIBUTION_TERMS[distribution],
                                        *(CLOCK_TERMS[k] for k in clocks)],
                              must_avoid=["1 o'clock"] + (["center"] if zone != "center" else ["edge"])),
        morphology=MorphologyRubric(pattern_type=pattern, density=DENSITY_TERMS[density].term,
                                    geometric_structure=STRUCTURE_TERMS[pattern].term,
                                    texture_description="clustered, contiguous failing dies",
                                    must_hit=[PATTERN_TERMS[pattern], DENSITY_TERMS[density], STRUCTURE_TERMS[pattern]],
                                    must_avoid=["scratch"]),
        root_cause=edge_loc_rubric().root_cause,
    )


def _targeted(category, question, targets, wafer_id="g1", **kw):
    return item(category, question, wafer_id=wafer_id, **kw).model_copy(update={"targets": targets})


def test_closed_vocabulary_is_matched_exactly_not_fuzzily():
    scorer = RuleScorer([_generated_rubric()])
    density = _targeted("morphology", "Is the failure dense or sparse?", ["moderate density"])
    assert scorer.score(density, "Moderate density.").score == 10.0
    assert scorer.score(density, "Moderately dense.").score == 10.0  # a synonym
    for wrong in ("High density.", "Low density.", "Dense."):
        result = scorer.score(density, wrong)
        assert result.score == 0.0 and result.dimension.terms_missed == ["moderate density"], wrong
    assert scorer.score(density, "High density.").dimension.contradictions == ["high density"]
    spread = _targeted("spatial", "How are the failing dies distributed?", ["localized"])
    assert scorer.score(spread, "Localized.").score == 10.0
    assert scorer.score(spread, "Localised in one region.").score == 10.0
    assert scorer.score(spread, "Radially asymmetric, not uniform.").score == 0.0
    # open phrases match fuzzily only word by word, on words of similar length with the same first letter
    assert term_score("near", normalise("a linear track")) == 0.0
    assert term_score("position", normalise("a deposition step")) == 0.0
    assert term_score("gas flow", normalise("uneven gass flow")) > 85


def test_symmetry_and_negation():
    symmetric = _generated_rubric(zone="center", distribution="radially symmetric", clocks=(), pattern="Center")
    scorer = RuleScorer([symmetric])
    spread = _targeted("spatial", "How are the failing dies distributed?", ["radially symmetric"])
    assert scorer.score(spread, "Radially symmetric.").score == 10.0
    asymmetric = scorer.score(spread, "Radially asymmetric.")
    assert asymmetric.score == 0.0 and asymmetric.dimension.terms_missed == ["radially symmetric"]
    negated = scorer.score(spread, "The failures are not radially symmetric.")
    assert negated.score == 0.0 and negated.dimension.contradictions == ["not radially symmetric"]
    zone = _targeted("spatial", "Which radial zone holds most failing dies?", ["center"])
    assert scorer.score(zone, "There are no failures near the center.").score == 0.0
    assert scorer.score(zone, "No, they lie near the center.").score == 10.0  # a leading verdict negates nothing
    assert scorer.score(zone, "Near the center, not at the edge.").score == 10.0  # a true negative statement


def test_targets_score_what_the_question_asks():
    scorer = RuleScorer([_generated_rubric()])
    clock = _targeted("spatial", "Using clock positions, where do the failing dies sit?", ["7 o'clock"])
    assert scorer.score(clock, "At 7 o'clock.").score == 10.0
    whole = item("spatial", "Using clock positions, where do the failing dies sit?", wafer_id="g1")
    assert scorer.score(whole, "At 7 o'clock.").score < 10.0  # against the whole dimension
    # must-avoid terms and contradictions still come from the whole dimension
    hedged = scorer.score(clock, "At 7 o'clock, in the middle zone, or at 1 o'clock.")
    assert hedged.dimension.avoid_used == ["1 o'clock"] and len(hedged.dimension.contradictions) == 2
    assert hedged.score < 3.0
    with pytest.raises(ValueError, match="are not must-hit terms of its spatial rubric"):
        scorer.score(clock.model_copy(update={"targets": ["4 o'clock"]}), "At 4 o'clock.")


def test_donut_morphology_needs_more_than_density():
    donut = _generated_rubric(zone="middle", distribution="radially symmetric", clocks=(), pattern="Donut",
                              density="dense")
    scorer = RuleScorer([donut])
    shape = item("morphology", "Describe the failure pattern's shape, how dense it is and its texture.",
                 wafer_id="g1", dimension="morphology")
    dims = scorer.score(shape, "Dense.").dimension
    assert dims.terms_missed == ["annular band"] and dims.coverage == 0.5  # only the type label "donut" is dropped
    assert scorer.score(shape, "A dense annular band.").score == 10.0


def test_consistency_needs_the_deciding_facts():
    scorer = RuleScorer([_generated_rubric()])
    check = _targeted("consistency", "Are most failing dies located around the 7 o'clock position?", ["7 o'clock"],
                      expected_yes=True)
    assert scorer.score(check, "Yes. Around 7 o'clock.").score == 10.0
    assert scorer.score(check, "Yes.").score == pytest.approx(5.0)  # verdict_weight 0.5
    assert scorer.score(check, "No. Around 7 o'clock.").score == 0.0
    wrong_fact = scorer.score(check, "Yes, at 1 o'clock.")
    assert wrong_fact.score == pytest.approx(5.0) and wrong_fact.dimension.contradictions == ["1 o clock"]
    verdict_only = check.model_copy(update={"targets": []})  # an older benchmark: the verdict alone
    assert scorer.score(verdict_only, "Yes.").score == 10.0
    assert yes_no(normalise("Yes. There is no defect pattern.")) is True
