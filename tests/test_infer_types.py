"""Defect types from geometry alone (labels hidden)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from wafersage.tasks.geometry.measure import measure
from wafersage.tasks.geometry.infer import infer_types
from wafersage.tasks.maps.wafer import FAIL, OFF, PASS, WaferMap

N = 52


def _wafer(fail: np.ndarray) -> WaferMap:
    rows, cols = np.indices((N, N), dtype=float)
    x, y = (cols - (N - 1) / 2) / (N / 2), ((N - 1) / 2 - rows) / (N / 2)
    on = x * x + y * y <= 1.0
    return WaferMap(grid=np.where(on, np.where(fail & on, FAIL, PASS), OFF).astype(np.uint8), id="hand")


def _polar() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols = np.indices((N, N), dtype=float)
    x, y = (cols - (N - 1) / 2) / (N / 2), ((N - 1) / 2 - rows) / (N / 2)
    return x, y, np.hypot(x, y)


@pytest.mark.parametrize("name,expected", [
    ("clean", ["none"]), ("center", ["Center"]), ("edge_ring", ["Edge-Ring"]), ("donut", ["Donut"]),
    ("edge_arc", ["Edge-Loc"]), ("scratch", ["Scratch"]), ("local", ["Loc"]), ("near_full", ["Near-full"]),
    ("random", ["Random"]), ("center_edge_ring", ["Center", "Edge-Ring"]),
])
def test_hand_drawn_patterns(name, expected):
    x, y, r = _polar()
    angle = np.degrees(np.arctan2(x, y)) % 360
    noise = np.random.default_rng(0).random((N, N))
    fail = {
        "clean": r > 5,
        "center": r <= 0.3,
        "edge_ring": r >= 0.86,
        "donut": (r >= 0.3) & (r <= 0.5),
        "edge_arc": (r >= 0.78) & (np.abs(angle - 90) <= 25),
        "scratch": (np.abs(y - 0.6 * x - 0.1) <= 0.03) & (x > -0.5) & (x < 0.5),
        "local": np.hypot(x + 0.45, y - 0.2) <= 0.14,
        "near_full": noise < 0.8,
        "random": noise < 0.25,
        "center_edge_ring": (r <= 0.3) | (r >= 0.86),
    }[name]
    assert infer_types(measure(_wafer(fail))) == expected


def test_generated_single_patterns_are_mostly_read_right(synth_stage_maps):
    maps, geoms = synth_stage_maps
    exact, contained, total = Counter(), Counter(), Counter()
    for wafer, geom in zip(maps, geoms):
        truth, guess = set(wafer.labels), set(infer_types(geom))
        group = "single" if len(truth) == 1 else "mixed"
        total[group] += 1
        exact[group] += truth == guess
        contained[group] += truth <= guess
    assert exact["single"] / total["single"] >= 0.6
    assert contained["single"] / total["single"] >= 0.75
    assert contained["mixed"] / total["mixed"] >= 0.3


def test_inferred_types_are_canonical_and_ordered(synth_stage_maps):
    from wafersage.tasks.maps.wafer import LABELS

    for geom in synth_stage_maps[1]:
        types = infer_types(geom)
        assert types and types == [label for label in LABELS if label in types]
        assert "none" not in types or types == ["none"]
        assert not ({"Near-full", "Random"} & set(types)) or len(types) == 1
