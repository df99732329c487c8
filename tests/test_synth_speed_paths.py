"""The fast paths of synthesis give exactly what the plain per-map computation gives.

``measure_many`` measures maps of one grid shape in one vectorised pass; every map must come out identical (to
the last bit) to measuring it alone. The PNG scaler uses cached index vectors; its pixels must equal the direct
nearest-neighbour formula.
"""
from __future__ import annotations

import numpy as np
import pytest

from wafersage.tasks.geometry import measure as geometry
from wafersage.tasks.generate.generator import generate_maps
from wafersage.tasks.geometry.measure import MEASURE_BATCH, measure, measure_many
from wafersage.tasks.maps.render import render_array
from wafersage.tasks.maps.wafer import FAIL, OFF, PASS


def _variants(grids: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Clean copies (no failing die), heavy speckle (hundreds of regions) and a near-full map of some grids."""
    out = []
    for grid in grids[:4]:
        clean = np.where(grid == FAIL, PASS, grid).astype(np.uint8)
        speckle = np.where((grid != OFF) & (rng.random(grid.shape) < 0.5), FAIL, grid).astype(np.uint8)
        full = np.where(grid != OFF, FAIL, OFF).astype(np.uint8)
        out += [clean, speckle, full]
    return out


def test_measure_many_equals_measuring_each_map_alone():
    rng = np.random.default_rng(5)
    maps = list(generate_maps(120, 11)) + list(generate_maps(80, 12, size=(52, 52)))  # many shapes and outlines
    grids = [m.grid for m in maps]
    mixed = [*maps[:100], *_variants(grids, rng), *grids[100:]]  # WaferMaps and raw grids, interleaved groups
    together = measure_many(mixed)
    assert len(together) == len(mixed)
    for item, geom in zip(mixed, together):
        assert geom.model_dump() == measure(item).model_dump()


def test_measure_many_splits_big_groups_into_batches():
    grid = next(iter(generate_maps(1, 3, size=(30, 30)))).grid
    rng = np.random.default_rng(0)
    on = grid != OFF
    grids = [np.where(on, np.where(rng.random(grid.shape) < p, FAIL, PASS), OFF).astype(np.uint8)
             for p in rng.uniform(0.0, 0.6, MEASURE_BATCH + 7)]  # one outline, more maps than one batch
    together = measure_many(grids)
    for index in (0, MEASURE_BATCH - 1, MEASURE_BATCH, len(grids) - 1):
        assert together[index].model_dump() == measure(grids[index]).model_dump()


def test_measure_many_names_the_empty_map():
    grids = [next(iter(generate_maps(1, 0))).grid, np.zeros((6, 6), dtype=np.uint8)]
    with pytest.raises(ValueError, match=r"no die.*map 1 of 2"):
        measure_many(grids)
    assert measure_many([]) == []


@pytest.mark.parametrize("scale", [1.0, 1e12])
def test_stable_order_matches_lexsort(scale):
    rng = np.random.default_rng(1)
    group = np.sort(rng.integers(0, 40, 3000))
    key = 1000.0 + np.round(rng.random(3000) * 50) * scale  # ties on purpose; 1e12 needs the lexsort fallback
    np.testing.assert_array_equal(geometry._stable_order(group, key), np.lexsort((key, group)))


@pytest.mark.parametrize("shape,size", [((52, 52), 256), ((40, 26), 100), ((25, 27), 513), ((33, 61), 17)])
def test_scaled_pixels_follow_the_nearest_neighbour_formula(shape, size):
    grid = np.random.default_rng(2).integers(0, 3, shape).astype(np.uint8)
    rows, cols = shape
    scale = size / max(rows, cols)
    out_rows, out_cols = max(1, round(rows * scale)), max(1, round(cols * scale))
    expected = grid[np.ix_(np.arange(out_rows) * rows // out_rows, np.arange(out_cols) * cols // out_cols)]
    np.testing.assert_array_equal(render_array(grid, size=size, palette="grey"),
                                  render_array(expected, size=None, palette="grey"))


def test_clock_of_one_point_matches_the_vectorised_formula():
    rng = np.random.default_rng(3)
    # (exactly between two sectors, the two atan2 implementations may round the last bit apart)
    points = np.concatenate([rng.uniform(-1, 1, (5000, 2)), [[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]],
                             [[np.sin(np.radians(a)), np.cos(np.radians(a))] for a in range(0, 360, 30)]])
    vectorised = geometry.clock_of(points[:, 0], points[:, 1])
    one_by_one = [geometry.clock_of(float(x), float(y)) for x, y in points]
    assert one_by_one == vectorised.tolist() and all(type(c) is int for c in one_by_one)


def test_setting_the_split_keeps_everything_else_and_leaves_the_original_alone():
    from dataclasses import replace

    from wafersage.tasks.synth.chunks import with_split

    wafer = next(iter(generate_maps(1, 4, size=(30, 30))))
    fast, plain = with_split(wafer, "val"), replace(wafer, split="val")
    assert fast.metadata() == plain.metadata() and fast.split == "val"
    np.testing.assert_array_equal(fast.grid, plain.grid)
    assert not fast.grid.flags.writeable
    assert wafer.split is None


def test_store_default_level_writes_the_bytes_of_savez_compressed(tmp_path):
    import io

    from wafersage.tasks.maps.store import write_store

    maps = list(generate_maps(25, 9))
    write_store(maps, tmp_path)
    expected = io.BytesIO()
    np.savez_compressed(expected, **{f"m{i}": m.grid for i, m in enumerate(maps)})
    assert (tmp_path / "shard-00000.npz").read_bytes() == expected.getvalue()


def test_store_fast_level_reads_back_the_same_maps_and_is_reproducible(tmp_path):
    from wafersage.tasks.maps.store import read_store, write_store

    maps = list(generate_maps(25, 9))
    for name in ("a", "b"):
        write_store(maps, tmp_path / name, shard_size=10, compress_level=1)
    for shard in ("shard-00000.npz", "shard-00002.npz"):
        assert (tmp_path / "a" / shard).read_bytes() == (tmp_path / "b" / shard).read_bytes()
    back = list(read_store(tmp_path / "a"))
    assert [m.id for m in back] == [m.id for m in maps]
    assert all(np.array_equal(a.grid, b.grid) and a.truth == b.truth for a, b in zip(back, maps))
    with pytest.raises(ValueError, match="compress_level must be 0..9"):
        write_store(maps, tmp_path / "c", compress_level=11)
