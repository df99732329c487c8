"""The generator's fast paths give exactly what the plain formulas give: the same masks, parameters and draws.

Each reference below is the straightforward whole-grid computation the drawers used before they were sped up
(numpy's floor modulo, the logistic spelled out, the unevenness cosine over every cell, ``np.unique`` for a
scratch's cells). Every fast drawer must return the same mask and parameters to the last bit and leave the
generator in the same state, on square, odd and non-square grids with every edge exclusion and centre shift.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from wafersage.tasks.generate import patterns
from wafersage.tasks.generate.generator import (
    EDGE_EXCLUSIONS, OUTLINE_SHIFTS, _outline_frame, generate_map, label_classes, wafer_frame,
)
from wafersage.tasks.geometry.measure import clock_of, zone_of
from wafersage.tasks.generate.patterns import DRAWERS, PARAMETER_RANGES, SCRATCH_MAX_R, Frame, background
from wafersage.tasks.maps.wafer import FAIL, LABELS, OFF, PASS, WaferMap, WaferMapError, canonical_label

SHAPES = [(52, 52), (25, 27), (32, 29), (49, 39)]
FRAMES = [_outline_frame(shape, exclusion, shift, -shift) for shape in SHAPES
          for exclusion in EDGE_EXCLUSIONS for shift in OUTLINE_SHIFTS]


def _draw(pattern: str, rng: np.random.Generator) -> dict[str, float]:
    ranges = PARAMETER_RANGES[pattern]
    low = np.array([r.low for r in ranges.values()])
    span = np.array([r.high - r.low for r in ranges.values()])
    return dict(zip(ranges, (low + span * rng.random(low.size)).tolist()))


def _logistic(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _bernoulli(probability, frame: Frame, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(frame.r.shape) < probability) & frame.on


def _unevenness(frame: Frame, amount: float, rng: np.random.Generator) -> np.ndarray:
    side = rng.uniform(0, 2 * np.pi)
    return 1.0 - amount * 0.5 * (1.0 + np.cos(frame.theta - side))


def ref_background(frame, rng):
    p = _draw("background", rng)
    rate = p["noisy_rate"] if rng.random() < p["noisy_share"] else p["clean_rate"]
    probability = np.where(frame.r >= 1.0 - 1.2 * frame.die, rate + p["rim_fail"], rate)
    return _bernoulli(probability, frame, rng), {"background": round(rate, 4), "rim_fail": round(p["rim_fail"], 4)}


def ref_center(frame, rng):
    p = _draw("Center", rng)
    direction = float(rng.uniform(0, 2 * np.pi))
    cx, cy = p["offset"] * math.cos(direction), p["offset"] * math.sin(direction)
    radius = max(p["radius"], 1.5 * frame.die)
    d = np.hypot(frame.x - cx, frame.y - cy)
    mask = _bernoulli(p["density"] * _logistic((radius - d) / p["softness"]), frame, rng)
    return mask, {"x": cx, "y": cy, "radius": radius, "density": p["density"]}


def ref_donut(frame, rng):
    p = _draw("Donut", rng)
    r_in = max(p["r_inner"], 2.5 * frame.die)
    r_out = min(r_in + max(p["width"], 2 * frame.die), 0.85)
    inside = _logistic((frame.r - r_in) / p["softness"]) * _logistic((r_out - frame.r) / p["softness"])
    mask = _bernoulli(p["density"] * inside * _unevenness(frame, p["unevenness"], rng), frame, rng)
    return mask, {"r_inner": r_in, "r_outer": r_out, "density": p["density"]}


def ref_edge_ring(frame, rng):
    p = _draw("Edge-Ring", rng)
    width = max(p["width"], 1.2 * frame.die)
    inner = _logistic((frame.r - (1.0 - width)) / p["softness"])
    mask = _bernoulli(p["density"] * inner * _unevenness(frame, p["unevenness"], rng), frame, rng)
    return mask, {"width": width, "density": p["density"]}


def ref_edge_loc(frame, rng):
    p = _draw("Edge-Loc", rng)
    mid = math.radians(p["angle_deg"])
    half = math.radians(p["arc_deg"]) / 2
    off = np.abs((frame.theta - mid + np.pi) % (2 * np.pi) - np.pi)
    depth = max(p["depth"], 2.5 * frame.die)
    reach = depth * np.sqrt(np.clip(1.0 - (off / half) ** 2, 0.0, 1.0))
    inner = np.where(off < half, _logistic((frame.r - (1.0 - reach)) / p["softness"]), 0.0)
    mask = _bernoulli(p["density"] * inner, frame, rng)
    return mask, {"clock": int(clock_of(math.cos(mid), math.sin(mid))), "angle_deg": p["angle_deg"],
                  "arc_deg": p["arc_deg"], "depth": depth, "density": p["density"]}


def ref_loc(frame, rng):
    p = _draw("Loc", rng)
    theta = math.radians(p["angle_deg"])
    cx, cy = p["r"] * math.cos(theta), p["r"] * math.sin(theta)
    radius = max(p["radius"], 1.5 * frame.die)
    tilt = math.radians(p["tilt_deg"])
    dx, dy = frame.x - cx, frame.y - cy
    cos_t, sin_t = math.cos(tilt), math.sin(tilt)
    along, across = dx * cos_t + dy * sin_t, -dx * sin_t + dy * cos_t
    a, b = radius * math.sqrt(p["aspect"]), radius / math.sqrt(p["aspect"])
    d = np.sqrt((along / a) ** 2 + (across / b) ** 2)
    mask = _bernoulli(p["density"] * _logistic((1.0 - d) * radius / p["softness"]), frame, rng)
    return mask, {"x": cx, "y": cy, "radius": radius, "clock": int(clock_of(cx, cy)), "zone": zone_of(p["r"]),
                  "density": p["density"]}


def ref_scratch(frame, rng):
    p = _draw("Scratch", rng)
    phi = math.radians(p["angle_deg"])
    ux, uy = math.cos(phi), math.sin(phi)
    beta = float(rng.uniform(0, 2 * np.pi))
    mx, my = p["mid_r"] * math.cos(beta), p["mid_r"] * math.sin(beta)
    t0, t1 = patterns._clip_to_disc(mx, my, ux, uy, -p["length"] / 2, p["length"] / 2, SCRATCH_MAX_R)
    length = max(t1 - t0, 8 * frame.die)
    t0, t1 = (t0 + t1 - length) / 2, (t0 + t1 + length) / 2
    n_points = max(int(length / frame.die * 4), 8)
    steps = np.arange(n_points) / (n_points - 1)
    along = t0 + steps * (t1 - t0)
    bend = p["bow"] * length * 4 * steps * (1 - steps)
    xs, ys = mx + along * ux - bend * uy, my + along * uy + bend * ux
    last_row, last_col = frame.on.shape[0] - 1, frame.on.shape[1] - 1
    rows = np.minimum(np.maximum(np.rint(frame.centre[0] - ys * frame.scale[0]), 0), last_row).astype(np.intp)
    cols = np.minimum(np.maximum(np.rint(frame.centre[1] + xs * frame.scale[1]), 0), last_col).astype(np.intp)
    _, first = np.unique(rows * frame.on.shape[1] + cols, return_index=True)
    first.sort()
    rows, cols = rows[first], cols[first]
    keep = frame.on[rows, cols] & (rng.random(rows.size) < p["density"])
    mask = np.zeros_like(frame.on)
    mask[rows[keep], cols[keep]] = True
    thick = rng.random(rows.size) < p["thick_share"]
    mask[np.minimum(np.maximum(rows[thick] + round(-ux), 0), last_row),
         np.minimum(np.maximum(cols[thick] + round(-uy), 0), last_col)] = True
    mask &= frame.on
    x0, y0, x1, y1 = float(xs[0]), float(ys[0]), float(xs[-1]), float(ys[-1])
    return mask, {"angle_deg": p["angle_deg"], "length": math.hypot(x1 - x0, y1 - y0),
                  "x0": x0, "y0": y0, "x1": x1, "y1": y1, "density": p["density"]}


def ref_uniform(name):
    def drawer(frame, rng):
        p = _draw(name, rng)
        return _bernoulli(p["density"], frame, rng), {"density": p["density"]}
    return drawer


REFERENCES = {
    "background": ref_background, "Center": ref_center, "Donut": ref_donut, "Edge-Loc": ref_edge_loc,
    "Edge-Ring": ref_edge_ring, "Loc": ref_loc, "Near-full": ref_uniform("Near-full"),
    "Random": ref_uniform("Random"), "Scratch": ref_scratch,
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_each_drawer_equals_its_plain_formula(name):
    fast = background if name == "background" else DRAWERS[name]
    for seed, frame in enumerate(FRAMES * 4):
        rng_fast, rng_ref = np.random.default_rng([seed, 7]), np.random.default_rng([seed, 7])
        mask, params = fast(frame, rng_fast)
        ref_mask, ref_params = REFERENCES[name](frame, rng_ref)
        assert mask.dtype == bool and mask.shape == frame.on.shape
        assert np.array_equal(mask, ref_mask), (name, seed)
        assert not (mask & ~frame.on).any(), "failing dies lie on the wafer"
        assert params == ref_params and [type(v) for v in params.values()] == [type(v) for v in ref_params.values()]
        assert rng_fast.random() == rng_ref.random(), "the same draws were consumed"


def test_uneven_factor_reaches_the_mask_where_it_matters():
    """A strong dip leaves a visible gap on one side: the shortcut still applies the factor to every live die."""
    frame = _outline_frame((52, 52), 0.0, 0.0, 0.0)
    full = np.where(frame.on, 0.9, 0.0)
    flat = patterns._uneven_bernoulli(full, 0.0, frame, np.random.default_rng(1))
    dipped = patterns._uneven_bernoulli(full, 1.0, frame, np.random.default_rng(1))
    assert (dipped <= flat).all() and dipped.sum() < 0.75 * flat.sum()


def test_angular_distance_equals_floor_modulo_bit_for_bit():
    rng = np.random.default_rng(3)
    theta = np.concatenate([np.arctan2(rng.normal(size=4000), rng.normal(size=4000)), [np.pi, -np.pi, 0.0, -0.0]])
    for mid in [0.0, np.pi, 2 * np.pi - 1e-13, *rng.random(40) * 2 * np.pi]:
        expected = np.abs((theta - mid + np.pi) % (2 * np.pi) - np.pi)
        assert np.array_equal(patterns._angular_distance(theta, mid).view(np.int64), expected.view(np.int64))


def test_draw_helpers_equal_numpys_own_calls():
    for seed in range(300):
        fast, ref = np.random.default_rng([seed]), np.random.default_rng([seed])
        assert patterns._angle(fast) == ref.uniform(0, 2 * np.pi)
        for pattern in PARAMETER_RANGES:
            assert patterns._draw(pattern, fast) == _draw(pattern, ref)
        frame = wafer_frame((30, 31), fast)
        exclusion = EDGE_EXCLUSIONS[int(ref.integers(len(EDGE_EXCLUSIONS)))]
        shift_y, shift_x = (OUTLINE_SHIFTS[int(i)] for i in ref.integers(len(OUTLINE_SHIFTS), size=2))
        assert frame is _outline_frame((30, 31), exclusion, shift_y, shift_x)
        assert fast.random() == ref.random()


def test_frame_arrays_are_contiguous_read_only_and_match_the_outline():
    frame = _outline_frame((32, 29), 0.25, 0.25, -0.25)
    for array in (frame.x, frame.y, frame.r, frame.on, frame.theta, frame.rim):
        assert array.flags.c_contiguous and not array.flags.writeable and array.shape == (32, 29)
    r_idx, c_idx = np.ogrid[:32, :29]
    cy, cx, ry, rx = 31 / 2 + 0.25, 28 / 2 - 0.25, 16 - 0.25, 14.5 - 0.25
    assert np.array_equal(frame.on, ((r_idx - cy) / ry) ** 2 + ((c_idx - cx) / rx) ** 2 <= 1.0)
    assert np.array_equal(frame.theta, np.arctan2(frame.y, frame.x))
    assert np.array_equal(frame.rim, frame.r >= 1.0 - 1.2 * frame.die)


def test_generated_grid_is_the_wm811k_encoding_of_its_masks():
    classes = label_classes()
    for i in range(80):
        labels = classes[i % len(classes)]
        wafer = generate_map(labels, rng=np.random.default_rng([4, i]), shape=(40, 44), wafer_id=f"w{i}")
        rng = np.random.default_rng([4, i])
        frame = wafer_frame((40, 44), rng)
        fail = np.zeros(frame.on.shape, dtype=bool) if wafer.labels[0] in ("Near-full", "Random") else \
            ref_background(frame, rng)[0]
        for label in wafer.labels if wafer.labels != ("none",) else ():
            fail |= REFERENCES[label](frame, rng)[0]
        expected = np.where(frame.on, np.where(fail, FAIL, PASS), OFF).astype(np.uint8)
        assert wafer.grid.dtype == np.uint8 and np.array_equal(wafer.grid, expected)


def test_canonical_label_fast_path_agrees_with_normalising():
    for label in LABELS:
        assert canonical_label(label) == label
        assert canonical_label(f" {label.upper().replace('-', '_')} ") == label
    assert canonical_label("normal") == "none" and canonical_label(np.str_("Center")) == "Center"
    with pytest.raises(WaferMapError, match=r"record w9: unknown defect label 'Centre'.*Did you mean 'Center'"):
        canonical_label("Centre", record="w9")


@pytest.mark.parametrize("grid, message", [
    (np.array([[0, 1], [2, 7]], dtype=np.uint8), r"'m' \(source test\): values \[7\] outside \{0,1,2\}"),
    (np.array([[0, 3], [9, 1]], dtype=np.int64), r"values \[3, 9\] outside \{0,1,2\}"),
    (np.zeros((3, 3), dtype=np.uint8), r"empty wafer — no die on it"),
    (np.array([[0, -1]]), r"values outside 0/1/2"),
    (np.zeros((0, 4), dtype=np.uint8), r"grid is empty \(shape \(0, 4\)\)"),
])
def test_wafer_map_validation_names_the_problem(grid, message):
    with pytest.raises(WaferMapError, match=message):
        WaferMap(grid=grid, id="m", source="test")


def test_wafer_map_keeps_a_private_read_only_copy():
    grid = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    wafer = WaferMap(grid=grid, id="m", labels=("edge_loc", "none"))
    grid[0, 1] = 2
    assert wafer.grid[0, 1] == PASS and not wafer.grid.flags.writeable and wafer.labels == ("Edge-Loc",)
    converted = WaferMap(grid=np.array([[1, 2]], dtype=np.int32), id="c")
    assert converted.grid.dtype == np.uint8 and converted.grid.tolist() == [[1, 2]]
