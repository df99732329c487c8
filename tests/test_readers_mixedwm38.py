"""MixedWM38 .npz reader: label order, chunked streaming of stored and compressed archives, bad inputs."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from wafersage.tasks.maps.readers import MapSourceError, read_maps
from wafersage.tasks.maps.readers.mixedwm38 import LABEL_ORDER, read_mixedwm38
from wafersage.tasks.maps.wafer import canonical_label

HOT = np.array([
    [0, 0, 0, 0, 0, 0, 0, 0],  # normal
    [1, 0, 0, 0, 0, 0, 0, 0],  # Center
    [0, 0, 0, 0, 0, 0, 0, 1],  # Random (last column)
    [0, 1, 0, 0, 1, 0, 1, 0],  # Donut + Loc + Scratch
    [0, 0, 1, 1, 0, 0, 0, 0],  # Edge_Loc + Edge_Ring
], dtype=np.int32)
EXPECTED = [("none",), ("Center",), ("Random",), ("Donut", "Loc", "Scratch"), ("Edge-Loc", "Edge-Ring")]


def _maps(count: int, size: int = 52) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 <= (size / 2) ** 2).astype(np.int32)
    maps = np.repeat(disc[None], count, axis=0)
    for i in range(count):
        maps[i, size // 2, 5 + i] = 2  # a distinct failing die per map
    return maps


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_labels_follow_the_dataset_order_across_chunks(tmp_path, save):
    path = tmp_path / "Wafer_Map_Datasets.npz"
    maps = _maps(len(HOT))
    save(path, arr_0=maps, arr_1=HOT)
    read = list(read_mixedwm38(path, chunk_size=2))
    assert [m.labels for m in read] == EXPECTED
    assert [m.id for m in read] == [f"mixedwm38-{i}" for i in range(len(HOT))]
    for wafer, grid in zip(read, maps):
        assert wafer.source == "mixedwm38" and wafer.grid.dtype == np.uint8
        np.testing.assert_array_equal(wafer.grid, grid)


def test_shared_sample_matches_its_label_list(shared_data):
    listed = json.loads((shared_data / "mixedwm38_30maps.json").read_text())
    assert tuple(listed["arr_1_order"]) == LABEL_ORDER
    read = list(read_maps(shared_data / "mixedwm38_30maps.npz", "mixedwm38"))
    assert len(read) == len(listed["rows"]) == 30
    for wafer, row in zip(read, listed["rows"]):
        assert set(wafer.labels) == {canonical_label(name) for name in row["labels"].split("+")}
        assert wafer.shape == (52, 52) and set(np.unique(wafer.grid)) <= {0, 1, 2}


def _write(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays, message", [
    (dict(arr_0=_maps(2)), r"bad\.npz: no 'arr_1' array in the archive \(found arr_0\)"),
    (dict(maps=_maps(2), arr_1=HOT[:2]), r"no 'arr_0' array in the archive \(found maps, arr_1\)"),
    (dict(arr_0=_maps(3), arr_1=HOT[:2]), r"arr_0 has 3 maps but arr_1 has 2 label rows"),
    (dict(arr_0=_maps(2)[:, 0, :], arr_1=HOT[:2]), r"arr_0 has shape \(2, 52\); MixedWM38 maps are \(N, rows, columns\)"),
    (dict(arr_0=_maps(2), arr_1=HOT[:2, :7]), r"arr_1 has shape \(2, 7\); MixedWM38 labels are \(N, 8\)"),
    (dict(arr_0=_maps(2), arr_1=HOT[:2] * 2), r"bad\.npz row 1: arr_1 row .* is not multi-hot"),
    (dict(arr_0=np.array(_maps(2), dtype=object), arr_1=HOT[:2]), r"arr_0 holds Python objects"),
])
def test_bad_archives_say_what_is_wrong(tmp_path, arrays, message):
    with pytest.raises(MapSourceError, match=message):
        list(read_maps(_write(tmp_path, **arrays), "mixedwm38"))


def test_die_values_outside_the_encoding_name_the_row(tmp_path):
    maps = _maps(3)
    maps[2, 0, 0] = 3
    read = read_maps(_write(tmp_path, arr_0=maps, arr_1=HOT[:3]), "mixedwm38")
    assert [next(read).id, next(read).id] == ["mixedwm38-0", "mixedwm38-1"]
    with pytest.raises(MapSourceError, match=r"bad\.npz row 2: .*values \[3\] outside \{0,1,2\}"):
        next(read)


def test_a_pickle_is_not_an_npz(shared_data):
    with pytest.raises(MapSourceError, match=r"lswmd_row19_loc\.pkl: not a \.npz archive.*--format lswmd"):
        list(read_maps(shared_data / "lswmd_row19_loc.pkl", "mixedwm38"))


def test_truncated_member_is_reported(tmp_path):
    path = tmp_path / "short.npz"
    full = tmp_path / "full.npz"
    np.savez(full, arr_0=_maps(2), arr_1=HOT[:2])
    with zipfile.ZipFile(full) as src, zipfile.ZipFile(path, "w") as dst:
        dst.writestr("arr_0.npy", src.read("arr_0.npy")[:-100])
        dst.writestr("arr_1.npy", src.read("arr_1.npy"))
    with pytest.raises(MapSourceError, match=r"short\.npz: arr_0 is truncated"):
        list(read_maps(path, "mixedwm38"))


def test_corrupt_compressed_member_is_reported(tmp_path):
    path = tmp_path / "corrupt.npz"
    np.savez_compressed(path, arr_0=_maps(4), arr_1=HOT[:4])
    data = bytearray(path.read_bytes())
    data[300] ^= 0xFF  # inside arr_0's deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(MapSourceError, match=r"corrupt\.npz: arr_0 is corrupt"):
        list(read_maps(path, "mixedwm38"))
