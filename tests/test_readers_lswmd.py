"""WM-811K LSWMD.pkl reader: the Python 2 / pandas 0.x pickle format, the restricted unpickler, bad inputs."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pandas as pd
import pytest
from readers_legacy_pickle import lswmd_frame, write_legacy_lswmd

from wafersage.tasks.maps.readers import MapSourceError, read_maps
from wafersage.tasks.maps.readers.lswmd import load_frame


def _grid(fail_at: tuple[int, int] = (1, 1), size: int = 5) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    grid = np.where((yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= (size // 2) ** 2, 1, 0).astype(np.uint8)
    grid[fail_at] = 2
    return grid


def _row(**overrides) -> dict:
    row = dict(waferMap=_grid(), dieSize=1683.0, lotName="lot1", waferIndex=20.0,
               trianTestLabel=np.array([["Training"]]), failureType=np.array([["Loc"]]))
    return row | overrides


ROWS = [
    _row(),
    _row(waferMap=_grid((2, 2)), waferIndex=21.0, trianTestLabel=np.zeros((0, 0)), failureType=np.zeros((0, 0))),
    _row(waferMap=_grid((3, 1), size=7), lotName="lot2", waferIndex=1.0, dieSize=533.0,
         trianTestLabel=np.array([[b"Test"]]), failureType=np.array([[b"none"]])),
    _row(failureType=np.array([["Edge-Ring"]]), trianTestLabel=np.array([["Test"]])),
]


@pytest.fixture
def legacy_pkl(tmp_path):
    return write_legacy_lswmd(lswmd_frame(ROWS, index=[19, 20, 811456, 7]), tmp_path / "LSWMD.pkl")


def test_legacy_file_is_the_old_format_that_modern_pandas_cannot_read(legacy_pkl):
    with pytest.raises(ModuleNotFoundError, match="pandas.indexes"):
        pd.read_pickle(legacy_pkl)


def test_reads_every_row_with_its_fields(legacy_pkl):
    maps = list(read_maps(legacy_pkl, "lswmd"))
    assert [m.id for m in maps] == ["lswmd-19", "lswmd-20", "lswmd-811456", "lswmd-7"]
    assert [m.labels for m in maps] == [("Loc",), (), ("none",), ("Edge-Ring",)]
    assert [m.split for m in maps] == ["train", None, "test", "test"]
    assert [m.lot for m in maps] == ["lot1", "lot1", "lot2", "lot1"]
    assert [m.wafer_index for m in maps] == [20, 21, 1, 20]
    assert all(isinstance(m.wafer_index, int) for m in maps)
    assert [m.die_size for m in maps] == [1683.0, 1683.0, 533.0, 1683.0]
    assert {m.source for m in maps} == {"lswmd"}
    for wafer, row in zip(maps, ROWS):
        assert wafer.grid.dtype == np.uint8
        np.testing.assert_array_equal(wafer.grid, row["waferMap"])


def test_modern_pandas_pickle_of_the_same_frame_reads_the_same(tmp_path, legacy_pkl):
    modern = tmp_path / "modern.pkl"
    lswmd_frame(ROWS, index=[19, 20, 811456, 7]).to_pickle(modern)
    old, new = list(read_maps(legacy_pkl, "lswmd")), list(read_maps(modern, "lswmd"))
    assert [m.metadata() for m in old] == [m.metadata() for m in new]


def test_shared_row19_series_reads_as_one_row(shared_data):
    (wafer,) = read_maps(shared_data / "lswmd_row19_loc.pkl", "lswmd")
    assert wafer.id == "lswmd-19"
    assert wafer.labels == ("Loc",) and wafer.split == "train"
    assert (wafer.lot, wafer.wafer_index, wafer.die_size) == ("lot1", 20, 1683.0)
    assert wafer.shape == (45, 48)
    reference = pd.read_pickle(shared_data / "lswmd_row19_loc.pkl")  # a modern pickle; pandas reads it too
    np.testing.assert_array_equal(wafer.grid, reference["waferMap"])


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_crafted_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    crafted = tmp_path / "LSWMD.pkl"
    crafted.write_bytes(pickle.dumps(_RunsShell(f"touch {marker}"), protocol=2))
    with pytest.raises(MapSourceError) as info:
        list(read_maps(crafted, "lswmd"))
    message = str(info.value)
    assert str(crafted) in message
    assert f"{os.system.__module__}.system" in message and "refused" in message
    assert not marker.exists()


def test_allowed_module_with_a_dangerous_function_is_refused(tmp_path):
    crafted = tmp_path / "LSWMD.pkl"
    crafted.write_bytes(b"\x80\x02cpandas\nread_pickle\nq\x00X\x03\x00\x00\x00/x\x85R.")
    with pytest.raises(MapSourceError, match=r"refused to load the global pandas\.read_pickle"):
        load_frame(crafted)


def test_not_a_pickle_names_the_file_and_the_other_formats(tmp_path):
    npz = tmp_path / "maps.npz"
    np.savez(npz, arr_0=np.zeros((1, 2, 2)))
    with pytest.raises(MapSourceError, match=r"maps\.npz: not a readable WM-811K pickle.*--format mixedwm38"):
        list(read_maps(npz, "lswmd"))


def test_pickle_of_something_else_is_named(tmp_path):
    other = tmp_path / "list.pkl"
    other.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(MapSourceError, match=r"list\.pkl: the pickle holds a list, not the LSWMD DataFrame"):
        list(read_maps(other, "lswmd"))


def test_missing_columns_are_listed(tmp_path):
    frame = lswmd_frame(ROWS).drop(columns=["failureType", "lotName"])
    path = write_legacy_lswmd(frame, tmp_path / "LSWMD.pkl")
    with pytest.raises(MapSourceError, match=r"LSWMD\.pkl: missing LSWMD column\(s\) lotName, failureType"):
        list(read_maps(path, "lswmd"))


def test_bad_die_values_name_the_file_and_the_row_after_the_good_rows(tmp_path):
    bad = _grid()
    bad[0, 0] = 3
    path = write_legacy_lswmd(lswmd_frame([ROWS[0], _row(waferMap=bad)], index=[5, 6]), tmp_path / "LSWMD.pkl")
    maps = read_maps(path, "lswmd")
    assert next(maps).id == "lswmd-5"
    with pytest.raises(MapSourceError, match=r"LSWMD\.pkl row 6: .*values \[3\] outside \{0,1,2\}"):
        next(maps)


@pytest.mark.parametrize("overrides, message", [
    (dict(trianTestLabel=np.array([["Validation"]])), r"row 0: trianTestLabel \['Validation'\] is neither"),
    (dict(failureType=np.array([["Blob"]])), r"row 0: .*unknown defect label 'Blob'"),
    (dict(waferMap=np.ones(4, np.uint8)), r"row 0: .*must be 2-D"),
    (dict(waferIndex=2.5), r"row 0: waferIndex 2\.5 is not a whole number"),
])
def test_bad_cells_name_the_row(tmp_path, overrides, message):
    path = write_legacy_lswmd(lswmd_frame([_row(**overrides)]), tmp_path / "LSWMD.pkl")
    with pytest.raises(MapSourceError, match=message):
        list(read_maps(path, "lswmd"))
