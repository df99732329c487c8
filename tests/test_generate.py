"""The procedural generator: determinism, label classes, sizes, ground truth, and agreement with measure()."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from wafersage.tasks.generate.generator import (
    COMMON_SHAPES, MIXTURES, SHAPE_ROWS, SOLO_ONLY, generate_map, generate_maps, label_classes,
)
from wafersage.tasks.geometry.measure import measure
from wafersage.tasks.generate.patterns import PARAMETER_RANGES
from wafersage.tasks.maps.store import read_store, write_store
from wafersage.tasks.maps.wafer import FAIL, OFF, PATTERNS, WaferMapError

TRUTH_KEYS = {
    "Center": {"x", "y", "radius"}, "Donut": {"r_inner", "r_outer"}, "Edge-Ring": {"width"},
    "Edge-Loc": {"clock", "arc_deg", "depth"}, "Loc": {"x", "y", "radius", "clock", "zone"},
    "Scratch": {"angle_deg", "length", "x0", "y0", "x1", "y1"}, "Random": {"density"}, "Near-full": {"density"},
    "none": {"background"},
}


def test_mixtures_are_mixedwm38s_29_classes():
    sizes = Counter(len(combo) for combo in MIXTURES)
    assert sizes == {2: 13, 3: 12, 4: 4}
    assert len(set(MIXTURES)) == 29
    for combo in MIXTURES:
        assert not set(combo) & set(SOLO_ONLY)
        assert not {"Center", "Donut"} <= set(combo) and not {"Edge-Loc", "Edge-Ring"} <= set(combo)
        assert list(combo) == [p for p in PATTERNS if p in combo], "combos are listed in canonical order"


def test_same_arguments_same_bytes_and_prefix_stable(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    write_store(generate_maps(30, 7), first)
    write_store(generate_maps(30, 7), second)
    for name in ("index.jsonl", "shard-00000.npz"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    longer = list(generate_maps(40, 7))
    shorter = list(generate_maps(30, 7))
    assert all(np.array_equal(a.grid, b.grid) and a.truth == b.truth for a, b in zip(shorter, longer))
    other = list(generate_maps(30, 8))
    assert any(not np.array_equal(a.grid, b.grid) for a, b in zip(shorter, other))
    assert [m.id for m in shorter[:2]] == ["gen-7-000000", "gen-7-000001"]


def test_store_round_trip_keeps_truth(tmp_path):
    maps = list(generate_maps(12, 1))
    write_store(maps, tmp_path)
    back = list(read_store(tmp_path))
    assert [m.truth for m in back] == [m.truth for m in maps]
    assert all(np.array_equal(a.grid, b.grid) for a, b in zip(back, maps))


def test_labels_cover_every_class_and_respect_patterns():
    seen = Counter(m.labels for m in generate_maps(600, 2))
    assert set(seen) == set(label_classes())
    assert len(seen) == 38
    restricted = {m.labels for m in generate_maps(80, 3, patterns=["center", "Scratch"])}
    assert restricted == {("Center",), ("Scratch",), ("Center", "Scratch")}
    singles = {m.labels for m in generate_maps(80, 3, patterns=["Center", "Scratch", "none"], mixtures=False)}
    assert singles == {("Center",), ("Scratch",), ("none",)}


def test_sizes_fixed_or_drawn_like_wm811k():
    assert {m.shape for m in generate_maps(10, 4, size=(30, 41))} == {(30, 41)}
    shapes = [m.shape for m in generate_maps(300, 4)]
    rows = np.array([s[0] for s in shapes])
    assert rows.min() >= SHAPE_ROWS[0] and rows.max() <= SHAPE_ROWS[1]
    assert Counter(shapes)[(52, 52)] >= 0.15 * len(shapes)
    assert len(set(shapes)) > 20, "sizes vary beyond the common ones"
    assert {s for s, _ in COMMON_SHAPES} <= set(shapes)


def test_wafer_is_round_and_fills_its_grid():
    for wafer in generate_maps(40, 5):
        on = wafer.grid != OFF
        rows, cols = wafer.shape
        assert on.any(axis=1).sum() >= rows - 2 and on.any(axis=0).sum() >= cols - 2, "at most one empty line a side"
        assert 0.70 < on.mean() < 0.82, "an ellipse inscribed in the grid covers about pi/4 of it"
        assert not on[0, 0] and not on[-1, -1]


def test_truth_has_the_documented_parameters_in_range():
    for wafer in generate_maps(200, 6):
        assert [t.pattern for t in wafer.truth] == list(wafer.labels)
        for truth in wafer.truth:
            assert TRUTH_KEYS[truth.pattern] <= set(truth.params), truth
            if truth.pattern == "Edge-Loc":
                assert 1 <= truth.params["clock"] <= 12
            if truth.pattern == "Scratch":
                p = truth.params
                assert np.hypot(p["x0"], p["y0"]) <= 1.0 and np.hypot(p["x1"], p["y1"]) <= 1.0
            if truth.pattern == "Donut":
                assert truth.params["r_inner"] < truth.params["r_outer"] <= 0.85
    assert set(PARAMETER_RANGES) == set(PATTERNS) | {"background"}
    assert all(r.low <= r.high and r.help for ranges in PARAMETER_RANGES.values() for r in ranges.values())


def test_mixture_share_sets_how_many_maps_are_mixtures_in_any_range():
    labels = [m.labels for m in generate_maps(200, 7, size=(32, 32), balanced=True, mixture_share=0.3)]
    assert sum(len(x) > 1 for x in labels) == 60
    singles = Counter(x for x in labels if len(x) == 1)
    assert set(singles) == {c for c in label_classes() if len(c) == 1}  # the eight patterns and none, in turn
    assert max(singles.values()) - min(singles.values()) <= 1
    assert sum(len(x) > 1 for x in labels[40:90]) == 15  # any run of maps holds its share
    later = [m.labels for m in generate_maps(200, 7, size=(32, 32), balanced=True, mixture_share=0.3, start=120)]
    assert later == labels[120:]  # a worker's range makes the same maps
    drawn = [m.labels for m in generate_maps(300, 3, size=(32, 32), mixture_share=0.2)]
    assert sum(len(x) > 1 for x in drawn) == 60 and len(set(drawn)) > 20
    assert all(len(m.labels) == 1 for m in generate_maps(20, 1, size=(32, 32), mixture_share=0.0))
    with pytest.raises(WaferMapError, match="mixture_share=0.5 needs .* 0 mixture"):
        generate_maps(5, 0, mixtures=False, mixture_share=0.5)


def test_bad_requests_name_the_fix():
    rng = np.random.default_rng(0)
    with pytest.raises(WaferMapError, match="only alone"):
        generate_map(["Near-full", "Center"], rng=rng, wafer_id="w1")
    with pytest.raises(WaferMapError, match="unknown defect label 'Blob'"):
        generate_map(["Blob"], rng=rng, wafer_id="w2")
    with pytest.raises(WaferMapError, match="too small"):
        generate_map(["Center"], rng=rng, shape=(5, 5), wafer_id="w3")
    with pytest.raises(WaferMapError, match="no label can be drawn"):
        generate_maps(5, 0, patterns=[])  # fails at the call, before any map is made
    with pytest.raises(WaferMapError, match="seed"):
        generate_maps(5, -1)


def _angle_diff(a: float, b: float, period: float) -> float:
    d = abs(a - b) % period
    return min(d, period - d)


def _agrees(truth, geom) -> bool:
    """Does the measured geometry show the generated component where the truth says it is?"""
    p, kind = truth.params, truth.pattern
    if kind in ("Center", "Loc"):
        near = 0.12 if kind == "Center" else 0.15
        return any(np.hypot(rg.x - p["x"], rg.y - p["y"]) < near for rg in geom.regions[:4])
    if kind == "Donut":
        return geom.ring_likeness >= 0.5 and p["r_inner"] - 0.1 <= geom.ring_radius <= p["r_outer"] + 0.1
    if kind == "Edge-Ring":
        return geom.ring_likeness >= 0.5 and geom.ring_radius >= 0.8
    if kind == "Edge-Loc":
        return bool(geom.dominant_clocks) and _angle_diff(geom.dominant_clocks[0], p["clock"], 12) <= 1
    if kind == "Scratch":
        return any(rg.elongation >= 3 and _angle_diff(rg.orientation_deg, p["angle_deg"], 180) <= 12
                   for rg in geom.regions[:4])
    if kind == "Random":
        return geom.ring_likeness < 0.5 and not geom.dominant_clocks and geom.texture != "clustered"
    if kind == "Near-full":
        return geom.fail_ratio >= 0.55
    return geom.fail_ratio < 0.25 and (not geom.regions or geom.regions[0].area < 12)


def _agreement(maps) -> dict[str, float]:
    hits: dict[str, list[bool]] = {}
    for wafer in maps:
        geom = measure(wafer)
        for truth in wafer.truth:
            hits.setdefault(truth.pattern, []).append(_agrees(truth, geom))
    return {kind: float(np.mean(v)) for kind, v in hits.items()}


def test_single_patterns_measure_as_generated():
    rates = _agreement(generate_maps(450, 21, mixtures=False))
    assert set(rates) == set(PATTERNS) | {"none"}
    low = {k: v for k, v in rates.items() if v < 0.9}
    assert not low, f"generated truth and measured geometry disagree too often: {low}"


def test_mixture_components_mostly_measure_as_generated():
    """Components overlap in mixtures (a scratch through a blob is one region), so the bar is lower."""
    rates = _agreement(generate_maps(300, 22))
    for kind, floor in {"Center": 0.6, "Donut": 0.6, "Edge-Loc": 0.7, "Edge-Ring": 0.5, "Loc": 0.3,
                        "Scratch": 0.3}.items():
        assert rates[kind] >= floor, (kind, rates)


def test_generated_52x52_wafers_match_mixedwm38_outline(shared_data):
    real = np.load(shared_data / "mixedwm38_30maps.npz")["arr_0"]
    real_dies = (real != OFF).sum(axis=(1, 2))
    generated = np.array([(m.grid != OFF).sum() for m in generate_maps(60, 9, size=(52, 52))])
    assert generated.min() <= real_dies.min() and real_dies.max() <= generated.max() + 40
    real_fail = (real == FAIL).sum(axis=(1, 2)) / real_dies
    gen_fail = np.array([measure(m).fail_ratio for m in generate_maps(60, 9, size=(52, 52))])
    assert 0.3 * np.median(real_fail) < np.median(gen_fail) < 1.5 * np.median(real_fail)
