"""The rule score reads facts: each kind of mistake the phrasing-based scorer made, with hand-written answers.

Wafers are given as fact sheets (what synthesis reads from a map); items as the benchmark stores them.
"""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from wafersage.harness.scoring.reader import read
from wafersage.harness.scoring.rules import RuleConstants, RuleScorer, ScorerInputError
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.bench.schema import FactSheet, VQAItem

SHEETS = {
    "ring": FactSheet(types=["Edge-Ring"], zones=["edge"], avoid_zones=["center", "middle"], density="dense",
                      texture="clustered", fail_ratio=0.11),
    "loc": FactSheet(types=["Loc"], zones=["middle"], avoid_zones=["edge"], clocks=[4], density="sparse",
                     texture="scattered", fail_ratio=0.06),
    "mix": FactSheet(types=["Center", "Edge-Ring"], zones=["center", "edge"], avoid_zones=["middle"],
                     density="dense", texture="clustered", fail_ratio=0.2,
                     zone_rates={"center": 0.8, "middle": 0.05, "edge": 0.7}),
    "blob_and_arc": FactSheet(types=["Center", "Edge-Loc"], zones=["center", "edge"], avoid_zones=["middle"],
                              clocks=[1], density="dense", texture="clustered", fail_ratio=0.12),
    "none": FactSheet(types=["none"], density="sparse", texture="scattered", fail_ratio=0.03),
    "random": FactSheet(types=["Random"], density="sparse", texture="scattered", fail_ratio=0.15),
}


def item(wafer: str, category: str, question: str, *, dimension: str | None = None, expected_yes=None,
         focus=(), labels=None) -> VQAItem:
    return VQAItem(id=f"{wafer}-{abs(hash(question)) % 1000}", wafer_id=wafer, image="images/x.png",
                   question=question, answer="-", category=category, dimension=dimension or category,
                   difficulty="easy", labels=labels or SHEETS[wafer].types, qa_index=0, split="test",
                   expected_yes=expected_yes, focus=list(focus))


@pytest.fixture(scope="module")
def scorer():
    return RuleScorer([], sheets=SHEETS)


def score(scorer, it, answer):
    return scorer.score(it, answer)


def test_correct_paraphrases_earn_full_credit(scorer):
    where = item("ring", "spatial", "Describe the spatial distribution of the failing dies.")
    looks = item("ring", "morphology", "What does the failing region look like?")
    for answer in ("A continuous narrow ring of failing dies at the outermost positions.",
                   "They run along the entire wafer edge, all the way around the circumference.",
                   "Failures are clustered at the outer edge in a ring around the perimeter."):
        assert score(scorer, where, answer).score == pytest.approx(10.0), answer
    assert score(scorer, looks, "A thin orange circle tracing the wafer outline.").score == pytest.approx(10.0)
    assert score(scorer, looks, "A dense arc along one side of the edge.").score == 0.0  # wrong shape, and it says so
    assert score(scorer, where, "Concentrated on one side of the wafer.").score == 0.0


def test_negated_contrasted_and_excepted_statements_are_not_claims(scorer):
    zone = item("ring", "spatial", "Which radial zone (inner, middle or outer) holds most of the failing dies?")
    plain = score(scorer, zone, "The outer zone.").score  # the zone, not yet the ring's symmetry
    for answer in ("The outer zone, surrounding a clean center.",
                   "The edge; the center and middle zones are essentially clean.",
                   "Along the rim rather than in the center.",
                   "The edge, apart from nothing at the center.",
                   "Outer zone. No failures near the center or the middle."):
        result = score(scorer, zone, answer)  # the clean zones are neither paid nor charged
        assert result.score == pytest.approx(plain) and not result.explanation.contradicted, (answer, result)
    wrong = score(scorer, zone, "Mostly in the center, with a clean edge.")
    assert wrong.score == 0.0 and "zone: center" in wrong.explanation.contradicted
    reading = read("Not radially symmetric: the failures sit on one side.")
    assert [(c.value, c.negated) for c in reading.claims if c.slot == "extent"] == [("symmetric", True),
                                                                                  ("one_sided", False)]


def test_scatter_over_the_whole_wafer_describes_a_normal_or_random_wafer(scorer):
    where = item("none", "spatial", "Summarise the spatial signature of the failures (zone, direction and "
                 "distribution).", focus=("zone", "clock", "extent"))
    zone = item("none", "spatial", "Which radial zone (inner, middle or outer) holds most of the failing dies?",
                focus=("zone",))
    shape = item("random", "morphology", "Describe the geometric structure of the failure pattern.", focus=("shape",))
    for it, answer in ((where, "No spatial signature: a sparse scatter of single failing dies across the whole "
                                "wafer, no preferred zone or direction."),
                       (zone, "None in particular; the few failing dies are spread evenly across inner, middle and "
                              "outer zones."),
                       (shape, "There is no geometric structure: the failing dies are randomly scattered "
                               "individual dies.")):
        result = score(scorer, it, answer)
        assert result.score == pytest.approx(10.0) and not result.explanation.contradicted, (answer, result)
    assert score(scorer, zone, "The outer zone, in a ring along the edge.").score == 0.0
    shapeless = score(scorer, shape, "No coherent shape, just random speckle.")  # Random is the absence of shape
    assert shapeless.score > 5 and not shapeless.explanation.contradicted
    ring = item("ring", "consistency", "Are fewer than 7% of the failing dies isolated?", dimension="morphology",
                expected_yes=True)
    grouped = score(scorer, ring, "Yes. Nearly all failing dies belong to the edge band; isolated fails are few.")
    assert grouped.score == pytest.approx(10.0) and not grouped.explanation.contradicted  # not "nearly all dies"


def test_background_noise_contradicts_nothing_on_a_wafer_with_a_pattern(scorer):
    density = item("ring", "morphology", "Is the failure dense or sparse?", focus=("density",))
    noisy = score(scorer, density, "Dense along the rim, with a sprinkle of isolated failing dies in the center.")
    assert noisy.score == pytest.approx(10.0) and not noisy.explanation.contradicted
    claimed = score(scorer, density, "Dense, in a blob in the center.")  # the pattern itself placed wrongly
    assert "zone: center" in claimed.explanation.contradicted


def test_a_shared_value_counts_for_the_mixture_component_the_answer_places(scorer):
    where = item("blob_and_arc", "spatial", "Describe the spatial distribution of the failing dies.",
                 focus=("extent",))
    one = score(scorer, where, "The failing dies form a cluster near the center of the wafer.")
    both = score(scorer, where, "A cluster at the center and a second localized group at the edge, at 1 o'clock.")
    assert both.score == pytest.approx(10.0) and 0.0 < one.score < 7.0  # "localized" placed at the center only


def test_directions_from_the_midpoint_and_clusters_at_the_edge(scorer):
    zone = item("ring", "spatial", "Which part of the wafer is affected by the failures?", focus=("zone",))
    relative = score(scorer, zone, "The rim, mostly below and to the left of the center.")
    assert "zone: edge" in relative.explanation.matched and not relative.explanation.contradicted
    assert read("Edge-Loc: a localized cluster at the wafer edge.").types == {"Edge-Loc"}
    assert read("A Center blob plus a localized cluster at 3 o'clock.").types == {"Center", "Loc"}
    assert read("Donut, on a background of many scattered Random failures.").types == {"Donut", "Random"}  # a class
    assert read("Donut, on a light background of random failures.").types == {"Donut"}  # the noise, not a class
    where = item("loc", "spatial", "In terms of distance from the wafer's midpoint, where do the failures occur?",
                 focus=("zone",))
    for answer in ("In the middle zone, roughly 0.4-0.7 of the radius from the midpoint.",  # a distance, not a place
                   "Roughly midway between the center and the edge."):
        result = score(scorer, where, answer)
        assert "zone: middle" in result.explanation.matched and not result.explanation.contradicted, answer
    said = lambda text, slot: {c.value for c in read(text).claims if c.slot == slot and c.said}
    assert said("The failures occur at all distances from the midpoint.", "extent") == {"wafer_wide"}
    assert said("A full disc that covers essentially the whole wafer.", "shape") == {"full"}  # not a blob
    assert said("The failing area is dense and nearly continuous.", "texture") == {"clustered"}
    assert "clustered" not in said("A thin continuous track: sparse, scattered dies.", "texture")  # a line's form


def test_random_as_a_class_label_contradicts_a_map_whose_pattern_is_another(scorer):
    check = item("ring", "consistency", "Do the failures occur all around the wafer rather than on one side?",
                 dimension="spatial", expected_yes=True)
    for label in ("Yes. Dense. Random.", "Yes, a Random pattern along the rim."):
        assert "type: Random" in score(scorer, check, label).explanation.contradicted, label
    for scatter in ("Yes, a dense ring; random point failures elsewhere.",  # the adjective, not the class
                    "Yes. A ring at the edge, on a background of Random failures."):  # background scatter
        assert not score(scorer, check, scatter).explanation.contradicted, scatter
    shape = item("random", "morphology", "What does the failing region look like?", focus=("shape",))
    assert not score(scorer, shape, "Random. Scattered single dies.").explanation.contradicted


def test_the_rest_of_the_wafer_and_a_scratch_s_direction_contradict_nothing(scorer):
    density = item("ring", "morphology", "How densely packed are the failing dies within the affected area?",
                   focus=("density",))
    for answer in ("Dense along the edge ring; the interior is sparse, with only a few percent of dies failing.",
                   "Very dense in the band, and sparse over the rest of the wafer.",
                   "Dense at the rim. Sparse elsewhere.",
                   "Dense in the band, while the centre is sparse.",  # the centre is clean on this wafer
                   "Very dense at the rim; it thins out and is sparse, a few percent, over the rest of the wafer."):
        result = score(scorer, density, answer)
        assert result.score == pytest.approx(10.0) and not result.explanation.contradicted, (answer, result)
    assert score(scorer, density, "Sparse at the rim, while the centre is dense.").score == 0.0
    assert read("About 9% fail, outside the lower-centre cluster.").types == frozenset()  # a place, not a Center
    assert read("A Donut on a light background of random failures.").types == {"Donut"}
    assert read("No separate edge, center, scratch or localized cluster.").types == frozenset()


def test_a_cause_word_shared_with_a_true_pattern_names_no_other_pattern(scorer):
    cause = item("loc", "root_cause", "At which process step would you look for the origin of these failures?",
                 focus=("process",))
    shared = score(scorer, cause, "Local particle contamination from a faulty deposition or etch chamber.")
    assert shared.score == pytest.approx(10.0) and not shared.explanation.extra  # particles: Loc's cause, not Random's
    other = score(scorer, cause, "Local particle contamination, or mechanical contact by the transfer robot.")
    assert "cause of Scratch" in other.explanation.extra and "cause of Random" not in other.explanation.extra


def test_a_question_is_scored_on_what_it_asks_and_a_location_or_a_cause_as_a_whole(scorer):
    texture = item("ring", "morphology", "Describe the texture of the failing area.")
    assert score(scorer, texture, "Contiguous and tightly grouped.").score == pytest.approx(10.0)  # no shape needed
    assert score(scorer, texture, "A ring.").score == 0.0  # a shape is no texture
    part = item("ring", "spatial", "Which part of the wafer is affected by the failures?")
    # the zone asked weighs two thirds; the ring's symmetry, not asked, the rest
    assert score(scorer, part, "The outer edge of the wafer.").score == pytest.approx(20 / 3)
    assert score(scorer, part, "The outer edge, all the way around.").score == pytest.approx(10.0)
    assert score(scorer, part, "All the way around the wafer.").score == pytest.approx(10 / 3)
    recorded = item("loc", "spatial", "Where is it?", focus=["clock"])  # a template's recorded focus wins
    at_four = score(scorer, recorded, "Around 4 o'clock.")
    assert at_four.focus == ["clock"] and "clock: 4 o'clock" in at_four.explanation.matched
    assert score(scorer, recorded, "Localized in the middle zone at 4 o'clock.").score == pytest.approx(10.0)
    tool = item("loc", "root_cause", "Which tool group most likely caused this signature?", focus=("equipment",))
    assert score(scorer, tool, "Deposition or etch.").score < 10.0  # the tool group without the mechanism
    assert score(scorer, tool, "Deposition or etch: a site-specific tool fault.").score == pytest.approx(10.0)


def test_the_focus_read_from_wording_is_each_templates_recorded_focus():
    """A benchmark without recorded focus (format 1, a model-written question) is scored on what it asks."""
    from wafersage.harness.scoring.focus import focus_from_question
    from wafersage.tasks.synth.vqa import TEMPLATES
    for template in (t for t in TEMPLATES if t.focus):
        for question in template.phrasings:
            assert set(focus_from_question(template.category, question)) == set(template.focus), question


def test_yes_no_items_score_the_verdict_first(scorer):
    check = item("ring", "consistency", "Do the failures occur all around the wafer rather than on one side?",
                 dimension="spatial", expected_yes=True)
    bare = score(scorer, check, "Yes.")
    assert bare.score == pytest.approx(8.0) and not bare.explanation.matched  # right, but nothing backs it
    backed = score(scorer, check, "Yes. A continuous ring around the entire circumference.")
    assert backed.score == pytest.approx(10.0) and "extent: symmetric" in backed.explanation.matched
    inner = item("ring", "consistency", "Is the failure rate in the inner radial zone above the wafer's average?",
                 dimension="spatial", expected_yes=False)
    denied = score(scorer, inner, "No. The center is clean; the failures sit at the rim.")
    assert denied.score == pytest.approx(10.0) and "zone: not center" in denied.explanation.matched
    assert score(scorer, inner, "No. The center is clean.").score == pytest.approx(10.0)  # a true absence backs it
    assert score(scorer, inner, "No. The edge is clean.").score == pytest.approx(8.0)  # a false absence backs nothing
    assert score(scorer, check, "No, they are confined to one side.").score == 0.0
    contradicting = score(scorer, check, "Yes, mostly in the middle zone.")  # right verdict, wrong explanation
    assert 0.0 < contradicting.score < 10.0 and "zone: middle" in contradicting.explanation.contradicted
    wrong_everywhere = score(scorer, check, "Yes, a dense blob in the middle zone at 3 o'clock, on one side.")
    assert len(wrong_everywhere.explanation.contradicted) >= 3
    assert wrong_everywhere.score == pytest.approx(5.0)  # the verdict is right: half stays, as a judge grades it


def test_mixtures_earn_partial_credit_weighted_by_where_the_failures_are(scorer):
    zone = item("mix", "spatial", "In terms of distance from the wafer's midpoint, where do the failures occur?")
    symmetric = " Radially symmetric."  # the extent, graded beside the zone asked
    both = score(scorer, zone, "At the center and along the edge." + symmetric).score
    centre_only = score(scorer, zone, "At the center." + symmetric).score
    edge_only = score(scorer, zone, "Along the edge." + symmetric).score
    no_zone = score(scorer, zone, symmetric).score
    assert both == pytest.approx(10.0)
    # each component earns its share of the failures: the center fails at a higher rate, so it is the main fact
    assert no_zone < edge_only < (no_zone + both) / 2 < centre_only < both
    assert (edge_only - no_zone) + (centre_only - no_zone) == pytest.approx(both - no_zone)
    assert score(scorer, zone, "In the middle zone.").score == 0.0
    shape = item("mix", "morphology", "What shape do the failing dies form?")
    assert 0.0 < score(scorer, shape, "A round blob.").score < score(scorer, shape, "A round blob inside a ring.").score


def test_tolerances_at_their_edges(scorer):
    clock = item("loc", "spatial", "At which clock position are the failures concentrated (12 o'clock at the top)?")
    rest = "Localized in the middle zone, "  # the zone and extent, graded beside the clock asked
    assert score(scorer, clock, rest + "at 4 o'clock.").score == pytest.approx(10.0)
    # the clock asked weighs half of this item; one hour off earns 3/4 of it
    assert score(scorer, clock, rest + "around five o'clock.").score == pytest.approx(8.75)
    assert score(scorer, clock, rest + "lower right.").score == pytest.approx(8.75)  # a direction holding 4 o'clock
    assert score(scorer, clock, rest + "at 6 o'clock.").score == pytest.approx(5.0)  # two hours off: no credit
    assert "clock: 10 o'clock" in score(scorer, clock, "At 10 o'clock.").explanation.contradicted
    density = item("ring", "morphology", "Is the failure dense or sparse?")
    assert score(scorer, density, "Dense.").score == pytest.approx(10.0)
    assert score(scorer, density, "Moderately dense.").score == pytest.approx(5.0)  # the neighbouring band
    assert score(scorer, density, "Sparse.").score == 0.0
    hedged = score(scorer, density, "Dense and sparse.")  # the same fact both ways: paid for
    assert 0.0 < hedged.score < 10.0 and hedged.explanation.hedged == ["density: sparse"]
    share = item("ring", "consistency", "Do fewer than 20% of the dies fail?", dimension="morphology",
                 expected_yes=True)
    assert score(scorer, share, "Yes, about 12% of dies fail.").score == pytest.approx(10.0)
    assert score(scorer, share, "Yes, about 2% of dies fail.").score < 10.0  # 11% is the truth


def test_degenerate_answers_and_types(scorer):
    where = item("ring", "spatial", "Describe the spatial distribution of the failing dies.")
    assert score(scorer, where, "").score == 0.0 and "empty" in score(scorer, where, "").flags
    echo = score(scorer, where, "Describe the spatial distribution of the failing dies.")
    assert echo.score == 0.0 and "echo" in echo.flags
    stuffed = score(scorer, where, "Radially symmetric, localized, linear, wafer-wide, on one side, isolated dies.")
    assert stuffed.score < 3.0
    kinds = item("mix", "defect_type", "Which WM-811K defect classes apply to this map?")
    assert score(scorer, kinds, "Center and Edge-Ring.").score == pytest.approx(10.0)
    assert score(scorer, kinds, "Edge-Ring, not Donut.").score == pytest.approx(5.0)  # 1 of 2: precision 1 x recall 1/2
    assert score(scorer, kinds, "Edge-Ring and Loc.").score == pytest.approx(2.5)  # 1 right, 1 wrong, 1 missed
    assert score(scorer, kinds, "A cluster near the center and an Edge-Ring.").types_mentioned == ["Edge-Ring"]
    assert score(scorer, kinds, "Center, Donut, Edge-Loc, Edge-Ring, Loc.").score == 0.0  # five types: stuffing


def test_constants_are_checked_and_missing_facts_name_the_fix(scorer):
    with pytest.raises(ValidationError):
        RuleConstants(partial_floor=1.5)
    with pytest.raises(ValidationError):
        RuleConstants(dim_weights={"spatial": 1.0})
    with pytest.raises(ScorerInputError, match="no fact sheet.*rebuild the benchmark"):
        scorer.score(item("ring", "spatial", "Where?").model_copy(update={"wafer_id": "nope"}), "edge")


def test_reference_answers_of_a_real_benchmark_score_full(scorer_bench):
    bench = Benchmark.load(scorer_bench)
    real = RuleScorer(bench.rubrics)
    scores = [real.score(it, it.answer).score for it in bench.all_items]
    assert min(scores) >= 9.0 and sum(scores) / len(scores) >= 9.9


def test_a_format_1_benchmark_is_scored_from_its_maps(scorer_bench, tmp_path):
    """A folder built before fact sheets and focus (format 1) scores as its rebuilt self would."""
    import json
    import shutil

    from wafersage.tasks.bench.folder import write_manifest

    old = tmp_path / "old"
    shutil.copytree(scorer_bench, old)
    rubrics = [json.loads(line) for line in (old / "rubrics.jsonl").read_text().splitlines()]
    items = [json.loads(line) for line in (old / "items.jsonl").read_text().splitlines()]
    (old / "rubrics.jsonl").write_text("".join(json.dumps({**r, "facts": None}) + "\n" for r in rubrics))
    (old / "items.jsonl").write_text("".join(json.dumps({**i, "focus": []}) + "\n" for i in items))
    manifest = json.loads((old / "manifest.json").read_text())
    write_manifest(old, **{k: v for k, v in manifest.items() if k not in ("files", "schema_version")})
    data = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**data, "schema_version": 1}))
    new, legacy = Benchmark.load(scorer_bench), Benchmark.load(old)
    with pytest.raises(ScorerInputError, match="no fact sheet"):
        RuleScorer(legacy.rubrics).score(next(it for it in legacy.all_items if it.category == "spatial"), "edge")
    a, b = RuleScorer(new.rubrics), RuleScorer.for_benchmark(legacy)
    sample = [it for it in new.all_items if it.category == "spatial"][:40]
    old_items = {it.id: it for it in legacy.all_items}
    for it in sample:
        for answer in (it.answer, "Along the edge, all around the wafer.", "A blob at 3 o'clock."):
            assert a.score(it, answer).score == pytest.approx(b.score(old_items[it.id], answer).score, abs=1.5)
    data["schema_version"] = 99
    (old / "manifest.json").write_text(json.dumps(data))
    from wafersage.tasks.bench.folder import BenchmarkError
    with pytest.raises(BenchmarkError, match="newer than this wafersage reads.*upgrade"):
        Benchmark.load(old)
