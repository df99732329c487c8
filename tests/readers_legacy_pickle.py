"""Write a DataFrame the way Python 2 / pandas 0.19 pickled WM-811K's ``LSWMD.pkl``.

Protocol 2; old module paths (``pandas.core.frame``, ``pandas.core.internals``, ``pandas.indexes.base``,
``pandas.indexes.numeric.Int64Index``, ``numpy.core.multiarray``); every ``str`` and ``bytes`` as a Python 2
``str`` (``BINSTRING``, read back with ``encoding="latin1"``); the frame and its ``BlockManager`` created with
``NEWOBJ ()`` then filled by ``BUILD`` with the 0.14.1 manager state. Used by the reader tests and the benchmark.
"""
from __future__ import annotations

import functools
import pickle
import sys
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class _Global:
    """A ``GLOBAL module\\nname`` reference written verbatim (the old paths no longer import)."""

    module: str
    name: str

    def __call__(self) -> None:  # save_reduce insists that a reduce function be callable
        raise TypeError("a stand-in for pickling only")


@functools.lru_cache(maxsize=None)
def _global(module: str, name: str) -> _Global:
    return _Global(module, name)  # one instance per name, so the pickler's memo writes each global once


@dataclass(eq=False)
class _NewObj:
    cls: _Global
    state: Any


@dataclass(eq=False)
class _Reduce:
    func: _Global
    args: tuple


class LegacyPickler(pickle._Pickler):  # the pure-Python pickler lets us add opcode writers per type
    # dill, once imported (datasets, lm-eval), overwrites pickle's pure-Python dispatch table; it keeps the original
    dispatch = dict(getattr(sys.modules.get("dill._dill"), "pickle_dispatch_copy", pickle._Pickler.dispatch))

    def __init__(self, file: Any) -> None:
        super().__init__(file, protocol=2)

    def _save_global_ref(self, ref: _Global) -> None:
        self.write(pickle.GLOBAL + f"{ref.module}\n{ref.name}\n".encode())
        self.memoize(ref)

    def _save_newobj(self, obj: _NewObj) -> None:
        self.save(obj.cls)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self.save(obj.state)
        self.write(pickle.BUILD)

    def _save_py2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[_Global] = _save_global_ref
    dispatch[_NewObj] = _save_newobj
    dispatch[str] = _save_py2_str
    dispatch[bytes] = _save_py2_str

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _Reduce):
            return obj.func, obj.args
        if type(obj) is np.ndarray:
            _, (_, shape, typecode), state = obj.__reduce__()
            return (_global("numpy.core.multiarray", "_reconstruct"),
                    (_global("numpy", "ndarray"), shape, typecode), state)
        return NotImplemented


def _index(cls: str, data: np.ndarray) -> _Reduce:
    module, name = cls.rsplit(".", 1)
    return _Reduce(_global("pandas.indexes.base", "_new_Index"),
                   (_global(module, name), {"data": data, "name": None}))


def _placement(positions: list[int]) -> slice | np.ndarray:
    if positions == list(range(positions[0], positions[-1] + 1)):
        return slice(positions[0], positions[-1] + 1, 1)
    return np.asarray(positions, dtype=np.int64)


def legacy_frame(frame: pd.DataFrame) -> _NewObj:
    """The pandas 0.19 pickle structure of ``frame``: one float64 block, one object block for the rest."""
    columns = list(frame.columns)
    groups: dict[str, list[int]] = {}
    for position, column in enumerate(columns):
        kind = "float" if frame[column].dtype == np.float64 else "object"
        groups.setdefault(kind, []).append(position)
    axes = [_index("pandas.indexes.base.Index", np.array(columns, dtype=object)),
            _index("pandas.indexes.numeric.Int64Index", np.asarray(frame.index, dtype=np.int64))]
    blocks, block_values, block_items = [], [], []
    for kind, positions in groups.items():
        dtype = np.float64 if kind == "float" else object
        values = np.empty((len(positions), len(frame)), dtype=dtype)
        for row, position in enumerate(positions):
            values[row, :] = frame[columns[position]].to_numpy(dtype=dtype)
        blocks.append({"values": values, "mgr_locs": _placement(positions)})
        block_values.append(values)
        block_items.append(_index("pandas.indexes.base.Index", np.array([columns[p] for p in positions], dtype=object)))
    manager = _NewObj(_global("pandas.core.internals", "BlockManager"),
                      (axes, block_values, block_items, {"0.14.1": {"axes": axes, "blocks": blocks}}))
    return _NewObj(_global("pandas.core.frame", "DataFrame"),
                   {"_data": manager, "_typ": "dataframe", "_metadata": []})


def write_legacy_lswmd(frame: pd.DataFrame, path: str | Path) -> Path:
    """Pickle ``frame`` as Python 2 / pandas 0.19 did for LSWMD.pkl."""
    path = Path(path)
    with open(path, "wb") as fh:
        LegacyPickler(fh).dump(legacy_frame(frame))
    return path


def lswmd_frame(rows: list[dict[str, Any]], index: list[int] | None = None) -> pd.DataFrame:
    """A LSWMD-shaped frame from row dicts; object columns hold numpy arrays as in the original."""
    columns = ["waferMap", "dieSize", "lotName", "waferIndex", "trianTestLabel", "failureType"]
    data = {}
    for column in columns:
        values = [row[column] for row in rows]
        if column in ("dieSize", "waferIndex"):
            data[column] = pd.Series(values, dtype=np.float64)
        else:
            cells = np.empty(len(values), dtype=object)
            for i, value in enumerate(values):  # one by one: numpy would stack equal-shaped arrays
                cells[i] = value
            data[column] = pd.Series(cells, dtype=object)
    frame = pd.DataFrame(data)
    frame.index = pd.Index(index if index is not None else range(len(rows)), dtype=np.int64)
    frame.columns = pd.Index(columns, dtype=object)
    return frame
