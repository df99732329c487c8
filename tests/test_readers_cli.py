"""`wafersage maps import` and the read_maps entry point: store round trip, limits, shards, partial failures."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.tasks.maps.readers import MapSourceError, read_maps
from wafersage.tasks.maps.store import INDEX, read_store


def _mixed(tmp_path, count: int = 7, bad_row: int | None = None):
    yy, xx = np.mgrid[:52, :52]
    disc = ((yy - 25.5) ** 2 + (xx - 25.5) ** 2 <= 26 ** 2).astype(np.int32)
    maps = np.repeat(disc[None], count, axis=0)
    hot = np.zeros((count, 8), dtype=np.int32)
    for i in range(count):
        maps[i, 26, i] = 2
        hot[i, i % 8] = 1
    if bad_row is not None:
        maps[bad_row, 0, 0] = 7
    path = tmp_path / "mixed.npz"
    np.savez_compressed(path, arr_0=maps, arr_1=hot)
    return path


def _import(*args: str):
    return CliRunner().invoke(main, ["maps", "import", *map(str, args)])


def test_import_writes_a_store_that_reads_back_identically(tmp_path):
    source, out = _mixed(tmp_path), tmp_path / "store"
    result = _import(source, "--format", "mixedwm38", "--out", out, "--shard-size", "3")
    assert result.exit_code == 0, result.output
    assert "imported 7 maps" in result.output and "Center 1" in result.output
    assert sorted(p.name for p in out.glob("shard-*.npz")) == ["shard-00000.npz", "shard-00001.npz", "shard-00002.npz"]
    stored, original = list(read_store(out)), list(read_maps(source, "mixedwm38"))
    assert [m.metadata() for m in stored] == [m.metadata() for m in original]
    for a, b in zip(stored, original):
        np.testing.assert_array_equal(a.grid, b.grid)


def test_limit_imports_the_first_maps(tmp_path):
    out = tmp_path / "store"
    result = _import(_mixed(tmp_path), "--format", "mixedwm38", "--out", out, "--limit", "2")
    assert result.exit_code == 0, result.output
    assert [m.id for m in read_store(out)] == ["mixedwm38-0", "mixedwm38-1"]


def test_existing_store_is_kept_unless_overwrite(tmp_path):
    source, out = _mixed(tmp_path), tmp_path / "store"
    assert _import(source, "--format", "mixedwm38", "--out", out, "--limit", "2").exit_code == 0
    refused = _import(source, "--format", "mixedwm38", "--out", out)
    assert refused.exit_code == 1 and "already holds a map store" in refused.output and "--force" in refused.output
    assert len(list(read_store(out))) == 2
    replaced = _import(source, "--format", "mixedwm38", "--out", out, "--force", "--shard-size", "100")
    assert replaced.exit_code == 0, replaced.output
    assert len(list(read_store(out))) == 7 and len(list(out.glob("shard-*.npz"))) == 1


def test_bad_row_keeps_the_maps_read_before_it(tmp_path):
    out = tmp_path / "store"
    result = _import(_mixed(tmp_path, bad_row=4), "--format", "mixedwm38", "--out", out, "--shard-size", "3")
    assert result.exit_code == 1
    assert "mixed.npz row 4" in result.output and "values [7] outside {0,1,2}" in result.output
    assert "The 4 maps read before this error are saved" in result.output
    assert [m.id for m in read_store(out)] == [f"mixedwm38-{i}" for i in range(4)]


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_crafted_pickle_fails_cleanly_and_leaves_no_store(tmp_path):
    marker, crafted, out = tmp_path / "pwned", tmp_path / "LSWMD.pkl", tmp_path / "store"
    crafted.write_bytes(pickle.dumps(_RunsShell(f"touch {marker}"), protocol=2))
    result = _import(crafted, "--format", "lswmd", "--out", out)
    assert result.exit_code == 1
    assert "Error:" in result.output and "LSWMD.pkl: refused to load the global" in result.output
    assert not marker.exists() and not (out / INDEX).exists()


def test_wrong_format_choice_and_unknown_format_name(tmp_path):
    result = _import(_mixed(tmp_path), "--format", "mixed", "--out", tmp_path / "store")
    assert result.exit_code == 2 and "'mixed' is not one of" in result.output
    with pytest.raises(MapSourceError, match=r"unknown map format 'mixedwm'.*Did you mean mixedwm38\?"):
        read_maps(tmp_path, "mixedwm")


def test_missing_source_is_named(tmp_path):
    with pytest.raises(MapSourceError, match=r"nothere\.npz: no such file or folder"):
        read_maps(tmp_path / "nothere.npz", "mixedwm38")
