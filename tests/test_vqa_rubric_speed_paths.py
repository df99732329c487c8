"""The fast paths of Stages 0b–2 give exactly what the plain per-wafer computation gives.

The builder writes each rubric's fact sentences once and hands them to the describer and the question writer; rubric
fields, sentences and term groups are cached by the values they are computed from, so a cache must never hand one
wafer's mutable list to another, and a sentence must change whenever a field it states changes.
"""
from __future__ import annotations

import numpy as np
import pytest

from wafersage.tasks.synth.describe import GeometryDescriber
from wafersage.tasks.synth.phrasing import (FactSentences, morphology_sentence, root_cause_sentence, spatial_sentence,
                                      type_sentence)
from wafersage.tasks.synth.rubric import build_rubric
from wafersage.tasks.bench.schema import SpatialRubric
from wafersage.tasks.synth.build import SynthConfig
from wafersage.tasks.synth.stages import Stages
from wafersage.tasks.synth.vocab import CLOCK_TERMS, ZONE_TERMS
from wafersage.tasks.synth.vqa import write_items


def _config() -> SynthConfig:
    return SynthConfig.model_validate({"name": "t", "seed": 3, "source": {"kind": "generated", "n": 1}})


def test_stages_match_the_plain_describe_rubric_items_calls(synth_stage_maps):
    maps, geoms = synth_stage_maps
    stages, describer = Stages(_config()), GeometryDescriber()
    for index, (wafer, geom) in enumerate(zip(maps[:80], geoms)):
        got = stages.run(wafer, geom, image="i.png", rng=np.random.default_rng([3, index]))
        rubric = build_rubric(wafer, geom)
        items = write_items(wafer, geom, rubric, rng=np.random.default_rng([3, index]), image="i.png", split="test",
                            spares=True).items  # the default blind filter drops from test: spares are written
        assert got.rubric.model_dump_json() == rubric.model_dump_json()
        assert got.description == describer.describe(wafer, geom, "full")
        assert [it.model_dump_json() for it in got.items] == [it.model_dump_json() for it in items]


def test_fact_sentences_are_the_four_sentences_of_the_rubric(synth_stage_maps):
    maps, geoms = synth_stage_maps
    for wafer, geom in zip(maps[:40], geoms):
        rubric = build_rubric(wafer, geom)
        assert FactSentences.of(rubric) == FactSentences(
            type_sentence(rubric.defect_types), spatial_sentence(rubric), morphology_sentence(rubric),
            root_cause_sentence(rubric))


def test_rubrics_of_one_map_share_no_lists(synth_stage_maps):
    maps, geoms = synth_stage_maps
    wafer, geom = next((w, g) for w, g in zip(maps, geoms) if w.truth and "Edge-Loc" in w.labels)
    first, second = build_rubric(wafer, geom), build_rubric(wafer, geom)
    expected = second.model_dump_json()
    for part in (first.spatial, first.morphology, first.root_cause):
        for value in vars(part).values():
            if isinstance(value, list):
                value.clear()
    assert first.model_dump_json() != expected
    assert second.model_dump_json() == expected
    assert build_rubric(wafer, geom).model_dump_json() == expected


def test_cached_sentences_follow_every_field_they_state():
    clock_only = dict(distribution="", must_hit=[CLOCK_TERMS[3]])
    whole = SpatialRubric(zone="whole wafer", **clock_only)
    none = SpatialRubric(zone="none", **clock_only)
    base = build_rubric_like(whole)
    assert "whole wafer area" in spatial_sentence(base)
    assert "none area" in spatial_sentence(base.model_copy(update={"spatial": none}))
    morph = base.morphology
    assert "with a grainy texture." in morphology_sentence(
        base.model_copy(update={"morphology": morph.model_copy(update={"texture_description": "a grainy texture"})}))
    cause = base.root_cause
    assert "investigating: etch." in root_cause_sentence(
        base.model_copy(update={"root_cause": cause.model_copy(update={"process_step": "etch"})}))


def build_rubric_like(spatial: SpatialRubric):
    """A normal wafer's rubric with ``spatial`` in place of its own."""
    from wafersage.tasks.generate.generator import generate_map
    from wafersage.tasks.geometry.measure import measure

    wafer = generate_map(["none"], rng=np.random.default_rng(1), wafer_id="n")
    return build_rubric(wafer, measure(wafer)).model_copy(update={"spatial": spatial})


@pytest.mark.parametrize("avoid", [" Periphery", "EDGE ", "wafer edge"])
def test_disjoint_check_compares_case_and_space_folded_variants(avoid):
    for _ in range(2):  # the second round reads the folded variants from the cache
        with pytest.raises(ValueError, match=rf"both in must_hit and must_avoid: \['{avoid.strip().lower()}'\]"):
            SpatialRubric(zone="edge", distribution="", must_hit=[ZONE_TERMS["edge"]], must_avoid=[avoid, "center"])
    assert SpatialRubric(zone="edge", distribution="", must_hit=[ZONE_TERMS["edge"]], must_avoid=["center"])
