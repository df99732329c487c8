"""measure() on maps whose answer is known by construction, and on the real samples in ../shared/data."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from wafersage.tasks.geometry.features import FEATURE_NAMES, features
from wafersage.tasks.geometry.measure import QUADRANTS, ZONES, Geometry, clock_of, measure, polar, zone_of
from wafersage.tasks.maps.wafer import FAIL, OFF, PASS, WaferMap


def disc(rows: int = 52, cols: int = 52) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A clean wafer filling the grid, and the normalised (x, y) of every cell."""
    r_idx, c_idx = np.indices((rows, cols), dtype=float)
    cy, cx = (rows - 1) / 2, (cols - 1) / 2
    on = ((r_idx - cy) / (rows / 2)) ** 2 + ((c_idx - cx) / (cols / 2)) ** 2 <= 1.0
    grid = np.where(on, PASS, OFF).astype(np.uint8)
    x, y, _ = polar(grid)
    return grid, x, y


def with_fails(grid: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = grid.copy()
    out[mask & (grid != OFF)] = FAIL
    return out


def test_clean_wafer():
    grid, _, _ = disc()
    geom = measure(grid)
    assert geom.n_fail == 0 and geom.texture == "clean" and geom.dominant_zone is None
    assert geom.regions == [] and geom.dominant_clocks == [] and geom.ring_likeness == 0.0


def test_centre_blob_is_centre_not_ring():
    grid, x, y = disc()
    geom = measure(with_fails(grid, np.hypot(x, y) < 0.25))
    assert geom.dominant_zone == "center"
    assert geom.zone_fail_ratio["center"] > 0.4 and geom.zone_fail_ratio["middle"] == geom.zone_fail_ratio["edge"] == 0
    assert geom.ring_likeness < 0.1, "a solid blob has no hollow: not a ring"
    assert geom.largest.r < 0.05 and geom.largest.elongation < 1.3
    assert geom.dominant_clocks == [] and geom.texture == "clustered"


@pytest.mark.parametrize("angle", [0.0, 45.0, 100.0, 135.0])
def test_scratch_orientation_and_line_likeness(angle):
    grid, x, y = disc()
    u = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    across = np.abs(-u[1] * x + u[0] * y)
    along = np.abs(u[0] * x + u[1] * y)
    geom = measure(with_fails(grid, (across < 0.02) & (along < 0.6)))
    big = geom.largest
    diff = abs(big.orientation_deg - angle) % 180
    assert min(diff, 180 - diff) < 5
    assert big.elongation > 8 and geom.line_likeness > 0.9
    assert geom.ring_likeness < 0.2


@pytest.mark.parametrize("clock", [3, 12, 7])
def test_edge_arc_reads_its_clock(clock):
    grid, x, y = disc()
    direction = np.radians(90 - 30 * clock)  # clock position -> angle counter-clockwise from +x
    theta = np.arctan2(y, x)
    off = np.abs((theta - direction + np.pi) % (2 * np.pi) - np.pi)
    arc = (np.hypot(x, y) > 0.85) & (off < np.radians(25))
    geom = measure(with_fails(grid, arc))
    assert geom.dominant_clocks[0] == clock
    assert geom.dominant_zone == "edge" and geom.angular_concentration > 0.8
    assert geom.largest.clock == clock and 30 < geom.largest.angular_span_deg < 70
    assert geom.largest.extent_r[1] > 0.97
    assert geom.ring_likeness < 0.3


def test_donut_and_edge_ring():
    grid, x, y = disc()
    r = np.hypot(x, y)
    donut = measure(with_fails(grid, (r > 0.35) & (r < 0.6)))
    assert donut.ring_likeness > 0.9 and 0.35 <= donut.ring_radius <= 0.6
    assert donut.dominant_zone == "middle" and donut.dominant_clocks == []
    ring = measure(with_fails(grid, r > 0.9))
    assert ring.ring_likeness > 0.9 and ring.ring_radius >= 0.85 and ring.dominant_zone == "edge"


def test_random_texture_is_scattered():
    grid, _, _ = disc()
    rng = np.random.default_rng(0)
    geom = measure(with_fails(grid, rng.random(grid.shape) < 0.12))
    assert geom.texture == "scattered" and abs(geom.neighbour_excess) < 0.1
    assert geom.ring_likeness < 0.3 and geom.dominant_clocks == []
    assert 0.09 < geom.fail_ratio < 0.15


def test_non_square_grid_is_normalised_per_axis():
    grid, x, y = disc(30, 44)
    _, _, r = polar(grid)
    on = grid != OFF
    assert 1.0 <= r[on].max() < 1.06, "edge dies sit near r = 1 (diagonal ones a little beyond)"
    assert abs(np.abs(x[on]).max() - 1) < 1e-9 and abs(np.abs(y[on]).max() - 1) < 1e-9
    ring = measure(with_fails(grid, r > 0.88))
    assert ring.ring_likeness > 0.9, "a rim ring of an elliptic grid is still a ring"


def test_outline_cache_does_not_mix_maps():
    grid, x, y = disc()
    left = measure(with_fails(grid, (x < -0.5) & (np.abs(y) < 0.2)))
    right = measure(with_fails(grid, (x > 0.5) & (np.abs(y) < 0.2)))
    assert left.dominant_clocks[0] == 9 and right.dominant_clocks[0] == 3


def test_regions_order_fractions_and_cap():
    grid, x, y = disc()
    mask = (np.hypot(x - 0.4, y) < 0.15) | (np.hypot(x + 0.4, y) < 0.08)
    geom = measure(with_fails(grid, mask))
    assert [rg.area for rg in geom.regions] == sorted((rg.area for rg in geom.regions), reverse=True)
    assert geom.largest.clock == 3 and geom.regions[1].clock == 9
    assert abs(sum(rg.area_fraction for rg in geom.regions) - geom.fail_ratio) < 1e-9
    speckle = np.zeros_like(mask)
    speckle[2:50:4, 2:50:4] = True
    speckle[3:51:4, 2:50:4] = True
    speckle[2:50:4, 3:51:4] = True  # many separate 3-die L shapes
    assert len(measure(with_fails(grid, speckle)).regions) == 20


def test_features_and_helpers():
    grid, x, y = disc()
    geom = measure(WaferMap(grid=with_fails(grid, np.hypot(x, y) < 0.2), id="f"))
    vec = features(geom)
    assert vec.shape == (len(FEATURE_NAMES),) and np.isfinite(vec).all()
    assert isinstance(Geometry.model_validate(geom.model_dump()), Geometry)
    assert set(geom.quadrant_share) == set(QUADRANTS) and set(geom.zone_share) == set(ZONES)
    assert clock_of(0.0, 1.0) == 12 and clock_of(1.0, 0.0) == 3 and clock_of(-1.0, -1.0) == 8
    assert list(clock_of(np.array([0.0, -1.0]), np.array([-1.0, 0.0]))) == [6, 9]
    assert [zone_of(0.1), zone_of(0.5), zone_of(0.9)] == ["center", "middle", "edge"]
    with pytest.raises(ValueError, match="no die"):
        measure(np.zeros((5, 5), dtype=np.uint8))


def test_real_mixedwm38_samples(shared_data):
    data = np.load(shared_data / "mixedwm38_30maps.npz")
    rows = json.loads((shared_data / "mixedwm38_30maps.json").read_text())["rows"]
    grids = data["arr_0"].astype(np.uint8)
    by_label = {}
    for grid, row in zip(grids, rows):
        by_label.setdefault(row["labels"], []).append(measure(grid))
    center = by_label["Center"][0]
    assert center.dominant_zone == "center" and center.largest.r < 0.25 and center.ring_likeness < 0.2
    assert by_label["Donut+Edge_Ring"][0].ring_likeness >= 0.5
    assert all(g.ring_likeness >= 0.4 and g.ring_radius >= 0.85 for g in by_label["Edge_Ring+Scratch"])
    assert max(g.line_likeness for g in by_label["Center+Scratch"]) > 0.4


def test_real_wm811k_loc_row(shared_data):
    row = pd.read_pickle(shared_data / "lswmd_row19_loc.pkl")
    geom = measure(np.asarray(row["waferMap"], dtype=np.uint8))
    big = geom.largest
    assert big.area >= 40 and big.clock in (2, 3) and 0.5 < big.r < 0.85
    assert geom.dominant_clocks[:1] == [2] and geom.ring_likeness < 0.2


def test_a_near_full_map_is_one_clustered_mass_while_random_scatter_stays_scattered():
    grid, _, _ = disc()
    rng = np.random.default_rng(1)
    full = measure(with_fails(grid, rng.random(grid.shape) < 0.8))
    assert full.fail_ratio > 0.7 and full.clustered_fraction > 0.9
    assert full.texture == "clustered" and abs(full.neighbour_excess) < 0.1  # no excess over chance, yet one mass
    dense_random = measure(with_fails(grid, rng.random(grid.shape) < 0.4))
    assert dense_random.texture == "scattered"
