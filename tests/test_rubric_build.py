"""Stage 1: rubrics from geometry (build_rubric) and from a model (ModelRubricBuilder), plus the knowledge table."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wafersage.tasks.synth.describe import Description
from wafersage.tasks.geometry.measure import measure
from wafersage.tasks.synth.knowledge import KnowledgeError, load_knowledge
from wafersage.tasks.synth.prompt_templates import ModelCallFailed
from wafersage.tasks.synth.rubric import MAX_AVOID, ModelRubricBuilder, build_rubric, choose_avoid, rubric_json
from wafersage.tasks.bench.schema import Term
from wafersage.tasks.maps.wafer import FAIL, LABELS, OFF, PASS, WaferMap

N = 52


def _disc() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An on-wafer disc plus normalised x (right) and y (up) of every cell."""
    rows, cols = np.indices((N, N), dtype=float)
    x, y = (cols - (N - 1) / 2) / (N / 2), ((N - 1) / 2 - rows) / (N / 2)
    return x * x + y * y <= 1.0, x, y


def wafer_from(fail: np.ndarray, labels: tuple[str, ...] = (), wafer_id: str = "w") -> WaferMap:
    on, _, _ = _disc()
    grid = np.where(on, np.where(fail & on, FAIL, PASS), OFF).astype(np.uint8)
    return WaferMap(grid=grid, id=wafer_id, labels=labels)


def edge_ring() -> np.ndarray:
    _, x, y = _disc()
    return np.hypot(x, y) >= 0.86


def edge_arc(clock: int) -> np.ndarray:
    """Failing dies at the rim within ±25° of a clock position."""
    _, x, y = _disc()
    angle = np.degrees(np.arctan2(x, y)) % 360
    delta = np.abs((angle - clock * 30 + 180) % 360 - 180)
    return (np.hypot(x, y) >= 0.75) & (delta <= 25)


def center_blob() -> np.ndarray:
    _, x, y = _disc()
    return np.hypot(x, y) <= 0.25


def _all_variants(dim) -> set[str]:
    return {v.lower() for t in dim.must_hit for v in t.variants}


def test_edge_ring_avoids_center_not_edge():
    wafer = wafer_from(edge_ring(), ("Edge-Ring",))
    rubric = build_rubric(wafer, measure(wafer))
    avoid = [a.lower() for a in rubric.spatial.must_avoid]
    assert "center" in avoid and "edge" not in avoid
    assert "edge" in _all_variants(rubric.spatial)
    assert rubric.spatial.clock_positions == []
    assert "edge ring" in _all_variants(rubric.morphology)
    assert "donut" in rubric.morphology.must_avoid  # a ring at the wrong radius contradicts the map


def test_edge_arc_at_three_oclock_hits_three_and_avoids_nine():
    wafer = wafer_from(edge_arc(3), ("Edge-Loc",))
    rubric = build_rubric(wafer, measure(wafer))
    assert 3 in rubric.spatial.clock_positions
    assert "3 o'clock" in _all_variants(rubric.spatial)
    assert "three o'clock" in _all_variants(rubric.spatial)
    assert "9 o'clock" in rubric.spatial.must_avoid
    assert "3 o'clock" not in rubric.spatial.must_avoid


@pytest.mark.parametrize("clock", [1, 4, 6, 8, 11])
def test_clock_of_an_edge_arc_follows_the_arc(clock):
    wafer = wafer_from(edge_arc(clock), ("Edge-Loc",))
    rubric = build_rubric(wafer, measure(wafer))
    assert rubric.spatial.clock_positions[0] == clock
    opposite = (clock + 5) % 12 + 1
    assert f"{opposite} o'clock" in rubric.spatial.must_avoid


def test_center_avoids_edge_and_names_deposition():
    wafer = wafer_from(center_blob(), ("Center",))
    rubric = build_rubric(wafer, measure(wafer))
    assert "center" in _all_variants(rubric.spatial)
    assert "edge" in [a.lower() for a in rubric.spatial.must_avoid]
    assert "Deposition" in rubric.root_cause.equipment_category
    assert "Handling" in rubric.root_cause.must_avoid


def test_none_wafer_says_no_pattern_and_avoids_pattern_words():
    _, x, _ = _disc()
    wafer = wafer_from(np.zeros_like(x, dtype=bool), ("none",))
    rubric = build_rubric(wafer, measure(wafer))
    assert rubric.defect_types == ["none"]
    assert "no defect pattern" in _all_variants(rubric.morphology)
    assert {"scratch", "donut", "random"} <= {a.lower() for a in rubric.morphology.must_avoid}
    assert rubric.root_cause.equipment_category == []
    assert "Lithography" in rubric.root_cause.must_avoid


def test_unlabeled_wafer_gets_inferred_types():
    wafer = wafer_from(edge_ring())
    assert build_rubric(wafer, measure(wafer)).defect_types == ["Edge-Ring"]


def test_mixture_avoid_lists_never_contradict_any_present_pattern():
    wafer = wafer_from(center_blob() | edge_arc(3), ("Center", "Edge-Loc"))
    rubric = build_rubric(wafer, measure(wafer))
    assert {"center", "edge"} <= _all_variants(rubric.spatial)
    for dim in (rubric.spatial, rubric.morphology, rubric.root_cause):
        hits = _all_variants(dim)
        assert not any(a.lower() in h or h in a.lower() for a in dim.must_avoid for h in hits)
    # Handling hits through Edge-Loc even though Center alone would avoid it
    assert "Handling" in rubric.root_cause.equipment_category and "Handling" not in rubric.root_cause.must_avoid


def test_rubric_lists_are_short_whole_phrases(synth_stage_maps):
    maps, geoms = synth_stage_maps
    for wafer, geom in zip(maps, geoms):
        rubric = build_rubric(wafer, geom)
        for name in ("spatial", "morphology", "root_cause"):
            dim = rubric.dimension(name)
            assert 1 <= len(dim.must_hit) <= 8 and len(dim.must_avoid) <= MAX_AVOID, (wafer.id, name)
            for term in dim.must_hit:
                assert term.term.count("(") == term.term.count(")"), term  # never cut mid-phrase
            assert len(set(dim.must_avoid)) == len(dim.must_avoid)
        assert rubric.defect_types == list(wafer.labels)


def test_choose_avoid_drops_overlaps_and_said_text():
    hits = [Term(term="film deposition"), Term(term="edge")]
    kept = choose_avoid(hits, ["Deposition", "edge-loc", "probe card", "robot", "probe card"], said=["a robot arm"])
    assert kept == ["probe card"]


def test_custom_knowledge_file_is_used(tmp_path):
    default = load_knowledge()
    data = default.model_dump(exclude={"source"})
    data["patterns"]["Edge-Ring"]["equipment"] = ["Lithography"]
    data["patterns"]["Edge-Ring"]["avoid"] = ["Handling"]
    path = tmp_path / "fab.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    wafer = wafer_from(edge_ring(), ("Edge-Ring",))
    rubric = build_rubric(wafer, measure(wafer), knowledge=path)
    assert rubric.root_cause.equipment_category == ["Lithography"]
    assert rubric.root_cause.must_avoid == ["Handling"]


def test_bad_knowledge_file_names_file_and_problem(tmp_path):
    data = load_knowledge().model_dump(exclude={"source"})
    del data["patterns"]["Scratch"]
    path = tmp_path / "broken.yaml"
    path.write_text(json.dumps(data))
    with pytest.raises(KnowledgeError, match=r"(?s)broken\.yaml.*Scratch"):
        load_knowledge(path)
    data = load_knowledge().model_dump(exclude={"source"})
    data["patterns"]["Loc"]["equipment"] = ["Teleporter"]
    path.write_text(json.dumps(data))
    with pytest.raises(KnowledgeError, match="Teleporter"):
        load_knowledge(path)
    with pytest.raises(KnowledgeError, match="cannot read"):
        load_knowledge(tmp_path / "missing.yaml")


# --- the model-backed builder, driven by a plain Python callable -----------------------------------------------

def _reply_for(wafer: WaferMap) -> str:
    """A valid model reply in the paper's Stage-1 JSON layout, derived from the geometry rubric."""
    data = json.loads(rubric_json(build_rubric(wafer, measure(wafer))))
    for key, avoid in (("spatial_rubric", "spatial_avoid"), ("morphology_rubric", "morphology_avoid"),
                       ("root_cause_rubric", "root_cause_avoid")):
        data[key][avoid] = data[key].pop("must_avoid")
    data["spatial_rubric"]["clock_position"] = data["spatial_rubric"].pop("clock_positions")
    return "Here is the rubric:\n```json\n" + json.dumps(data) + "\n```"


def _description(wafer_id: str = "w") -> Description:
    return Description(wafer_id=wafer_id, mode="full", text="An edge ring of failing dies.", source="model")


def test_model_rubric_builder_accepts_a_valid_reply():
    wafer = wafer_from(edge_ring(), ("Edge-Ring",))
    prompts = []
    builder = ModelRubricBuilder(lambda prompt: prompts.append(prompt) or _reply_for(wafer))
    result = builder.build(_description())
    assert result.status == "ok" and result.attempts == 1 and result.reason is None
    assert result.rubric.defect_types == ["Edge-Ring"]
    assert "An edge ring of failing dies." in prompts[0] and "must_hit" in prompts[0]


def test_model_rubric_builder_retries_with_the_error_then_succeeds():
    wafer = wafer_from(edge_ring(), ("Edge-Ring",))
    bad = json.loads(_reply_for(wafer).split("```json\n")[1].split("\n```")[0])
    bad["spatial_rubric"]["spatial_avoid"] = ["edge"]  # clashes with must-hit "edge"
    replies = iter([json.dumps(bad), _reply_for(wafer)])
    prompts = []
    result = ModelRubricBuilder(lambda p: prompts.append(p) or next(replies)).build(_description())
    assert result.status == "ok" and result.attempts == 2
    assert "both in must_hit and must_avoid" in prompts[1]


def test_model_rubric_builder_fails_with_reason_after_retries():
    calls = []
    result = ModelRubricBuilder(lambda p: calls.append(p) or "I cannot help with that.", max_retries=1).build(
        _description("w9"))
    assert result.status == "failed" and result.rubric is None and result.wafer_id == "w9"
    assert result.attempts == 2 == len(calls) and "no JSON object" in result.reason


def test_model_rubric_builder_records_a_failed_call_and_lets_other_errors_through():
    def failed(prompt: str) -> str:
        raise ModelCallFailed("HTTP 500: overloaded")

    result = ModelRubricBuilder(failed).build(_description())
    assert result.status == "failed" and "HTTP 500: overloaded" in result.reason and result.attempts == 1

    def broken(prompt: str) -> str:
        raise ConnectionError("endpoint down")

    with pytest.raises(ConnectionError):  # not a failed call: a systemic error or a bug stops the build
        ModelRubricBuilder(broken).build(_description())


def test_model_rubric_builder_rejects_unknown_types_and_empty_lists():
    wafer = wafer_from(edge_ring(), ("Edge-Ring",))
    data = json.loads(_reply_for(wafer).split("```json\n")[1].split("\n```")[0])
    data["defect_types"] = ["Swirl"]
    result = ModelRubricBuilder(lambda p: json.dumps(data), max_retries=0).build(_description())
    assert result.status == "failed" and "Swirl" in result.reason
    data["defect_types"] = ["Edge-Ring"]
    data["morphology_rubric"]["must_hit"] = []
    result = ModelRubricBuilder(lambda p: json.dumps(data), max_retries=0).build(_description())
    assert result.status == "failed" and "morphology_rubric.must_hit is empty" in result.reason


def test_labels_cover_every_knowledge_entry():
    assert set(load_knowledge().patterns) == set(LABELS)
