"""Stage 0b: descriptions from geometry (three modes, ground truth) and from any model through a callable."""
from __future__ import annotations

import numpy as np
import pytest

from wafersage.tasks.synth.describe import (Describer, Description, DescriptionError, GeometryDescriber, ModelDescriber)
from wafersage.tasks.generate.generator import generate_map
from wafersage.tasks.geometry.measure import measure
from wafersage.tasks.synth.rubric import build_rubric

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def edge_loc():
    wafer = generate_map(["Edge-Loc"], rng=np.random.default_rng(5), wafer_id="el-1")
    return wafer, measure(wafer)


def test_geometry_describer_full_mode_states_every_dimension(edge_loc):
    wafer, geom = edge_loc
    describer = GeometryDescriber()
    assert isinstance(describer, Describer)
    desc = describer.describe(wafer, geom)
    assert desc.source == "geometry" and desc.mode == "full" and desc.wafer_id == "el-1"
    rubric = build_rubric(wafer, geom)
    text = desc.text.lower()
    assert "edge-loc" in text
    for name in ("spatial", "morphology", "root_cause"):
        for term in rubric.dimension(name).must_hit:
            assert any(v.lower() in text for v in term.variants), (name, term.term)
    clock = wafer.truth[0].params["clock"]
    assert f"{clock} o'clock" in text and "ground truth" in text and f"clock={clock}" in text
    assert describer.describe(wafer, geom, rubric=rubric) == desc  # the builder passes the rubric it has built


def test_geometry_describer_modes_keep_to_their_subject(edge_loc):
    wafer, geom = edge_loc
    describer = GeometryDescriber()
    spatial = describer.describe(wafer, geom, mode="spatial").text
    cause = describer.describe(wafer, geom, mode="root_cause").text
    assert "o'clock" in spatial and "Handling" not in spatial and f"{geom.n_fail} of {geom.n_dies}" in spatial
    assert "Handling" in cause and "o'clock" not in cause and "Potential causes" in cause
    with pytest.raises(DescriptionError, match="el-1.*sideways"):
        describer.describe(wafer, geom, mode="sideways")


def test_geometry_describer_handles_a_wafer_without_failures():
    wafer = generate_map(["none"], rng=np.random.default_rng(0), wafer_id="n-1")
    grid = np.where(wafer.grid == 2, 1, wafer.grid).astype(np.uint8)
    clean = type(wafer)(grid=grid, id="n-1", labels=("none",))
    text = GeometryDescriber().describe(clean, measure(clean)).text
    assert "no defect pattern" in text.lower() and "0 of" in text


def test_model_describer_sends_the_template_prompt_and_png(edge_loc):
    wafer, geom = edge_loc
    calls = []

    def generate(prompt: str, image: bytes) -> str:
        calls.append((prompt, image))
        return "  An arc of failing dies at the rim near 4 o'clock.  "

    desc = ModelDescriber(generate, image_size=128).describe(wafer, geom, mode="spatial")
    assert desc == Description(wafer_id="el-1", mode="spatial", source="model",
                               text="An arc of failing dies at the rim near 4 o'clock.")
    prompt, image = calls[0]
    assert image.startswith(PNG_SIGNATURE)
    assert "clock positions" in prompt and f"{wafer.shape[0]} x {wafer.shape[1]} dies" in prompt
    assert "teal = die passed" in prompt
    full_prompt = ModelDescriber(generate, palette="grey").prompt(wafer, "full")
    assert "Equipment" in full_prompt or "equipment category" in full_prompt
    assert "white = die failed" in full_prompt


def test_model_describer_rejects_empty_output_and_bad_options(edge_loc):
    wafer, geom = edge_loc
    with pytest.raises(DescriptionError, match="el-1.*empty"):
        ModelDescriber(lambda prompt, image: "   ").describe(wafer, geom)
    with pytest.raises(DescriptionError, match="palette"):
        ModelDescriber(lambda prompt, image: "x", palette="sepia")
