"""WM-811K ``LSWMD.pkl``: a pandas DataFrame pickled under Python 2 / pandas 0.x, read safely on current pandas.

Safety: unpickling runs whatever callables the file names, so :class:`RestrictedUnpickler` resolves only the
numpy/pandas globals a LSWMD pickle needs (mapping the old module paths such as ``pandas.indexes.base`` or
``numpy.core.multiarray`` to today's) and refuses every other global, naming the file and the global.

Memory reality: a pickle is all-or-nothing — the DataFrame only exists once the last opcode ran, so the whole
frame is in memory at least once. On top of it, while loading, the unpickler's memo holds the latin1 text of every
array's raw bytes (Python 2 strings), a second copy of the grids that is freed only when loading ends. This reader
unpickles straight from the file (no copy of the file's bytes), then keeps one reference per cell, drops the frame
and releases each row's arrays as soon as its :class:`WaferMap` is built, so importing adds no further copy: the
peak is about 2.8x the file size (``benchmarks/readers_lswmd_memory.py``), i.e. ~5.5 GB for the 2 GB LSWMD.pkl.
"""
from __future__ import annotations

import importlib
import math
import pickle
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
from pandas.core.internals import BlockManager

from ..wafer import WaferMap, WaferMapError
from . import MapSourceError

COLUMNS = ("waferMap", "dieSize", "lotName", "waferIndex", "trianTestLabel", "failureType")
SPLITS = {"training": "train", "test": "test"}

#: old module path (exactly, or as a dotted prefix) -> today's
_MODULE_ALIASES = {
    "__builtin__": "builtins",
    "numpy.core": "numpy._core",
    "pandas.indexes": "pandas.core.indexes",
    "pandas.core.index": "pandas.core.indexes.base",
}


class _LegacyBlockManager(BlockManager):
    """Stands in for ``BlockManager`` while unpickling: pandas 0.x pickles create it with no arguments
    (``NEWOBJ ()``), which today's class refuses; this builds an empty manager that ``__setstate__`` then fills."""

    def __new__(cls, *args: Any) -> BlockManager:  # type: ignore[misc]
        if args:
            return BlockManager(*args)
        return BlockManager.__new__(BlockManager, (), [], False)


_INDEX = "pandas.core.indexes.base"
#: (module, name) as written in the pickle, after module aliasing -> the object it may resolve to
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy._core.multiarray", "_reconstruct"): "numpy._core.multiarray:_reconstruct",
    ("numpy._core.multiarray", "scalar"): "numpy._core.multiarray:scalar",
    ("numpy._core.numeric", "_frombuffer"): "numpy._core.numeric:_frombuffer",  # protocol-5 arrays
    ("numpy", "ndarray"): "numpy:ndarray",
    ("numpy", "dtype"): "numpy:dtype",
    ("_codecs", "encode"): "_codecs:encode",  # how Python 3 writes bytes at protocol 2
    ("builtins", "slice"): "builtins:slice",  # block placements
    ("builtins", "bytes"): "builtins:bytes",  # how Python 3 writes empty bytes at protocol 2
    ("pandas.core.frame", "DataFrame"): "pandas:DataFrame",
    ("pandas", "DataFrame"): "pandas:DataFrame",
    ("pandas.core.series", "Series"): "pandas:Series",
    ("pandas", "Series"): "pandas:Series",
    ("pandas.core.internals", "BlockManager"): _LegacyBlockManager,
    ("pandas.core.internals.managers", "BlockManager"): _LegacyBlockManager,
    ("pandas.core.internals", "SingleBlockManager"): "pandas.core.internals:SingleBlockManager",
    ("pandas.core.internals.managers", "SingleBlockManager"): "pandas.core.internals:SingleBlockManager",
    ("pandas._libs.internals", "_unpickle_block"): "pandas._libs.internals:_unpickle_block",
    ("pandas.core.internals.blocks", "new_block"): "pandas._libs.internals:_unpickle_block",
    (_INDEX, "_new_Index"): f"{_INDEX}:_new_Index",
    (_INDEX, "Index"): f"{_INDEX}:Index",
    (_INDEX, "Int64Index"): f"{_INDEX}:Index",
    (_INDEX, "Float64Index"): f"{_INDEX}:Index",
    ("pandas.core.indexes.numeric", "Int64Index"): f"{_INDEX}:Index",
    ("pandas.core.indexes.numeric", "UInt64Index"): f"{_INDEX}:Index",
    ("pandas.core.indexes.numeric", "Float64Index"): f"{_INDEX}:Index",
    ("pandas.core.indexes.range", "RangeIndex"): "pandas:RangeIndex",
    ("pandas", "Index"): f"{_INDEX}:Index",
    ("pandas", "RangeIndex"): "pandas:RangeIndex",
}


def _current_module(module: str) -> str:
    for old, new in _MODULE_ALIASES.items():
        if module == old or module.startswith(old + "."):
            return new + module[len(old):]
    return module


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits only the numpy/pandas data classes of a LSWMD pickle."""

    def __init__(self, file: Any, *, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED.get((_current_module(module), name))
        if target is None:
            raise MapSourceError(
                f"{self.path}: refused to load the global {module}.{name} named in the pickle: the LSWMD reader "
                f"admits only the numpy/pandas data classes a WM-811K pickle needs. The file is not LSWMD.pkl or "
                f"carries code; do not open it with pickle or pandas.read_pickle. A pandas pickle with pyarrow "
                f"strings can be re-saved with df.astype(object).to_pickle(...)"
            )
        if isinstance(target, str):
            module_name, attr = target.split(":")
            return getattr(importlib.import_module(module_name), attr)
        return target


def load_frame(path: str | Path) -> pd.DataFrame:
    """Unpickle a LSWMD DataFrame (or a one-row Series, taken as a one-row frame) through the restricted unpickler."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            loaded = RestrictedUnpickler(fh, path=path).load()
    except MapSourceError:
        raise
    except MemoryError:
        raise MapSourceError(
            f"{path}: out of memory while unpickling ({path.stat().st_size / 1e9:.1f} GB file); the whole frame must "
            f"fit in memory once (the peak is about 2.8x the file size), so free memory or use a larger machine"
        ) from None
    except Exception as exc:  # the pickle machinery raises many types for a file that is not a pickle
        raise MapSourceError(
            f"{path}: not a readable WM-811K pickle ({type(exc).__name__}: {' '.join(str(exc).split())}); "
            f"--format lswmd expects LSWMD.pkl "
            f"— use --format mixedwm38 for a .npz, --format images for a folder with labels.csv"
        ) from exc
    if isinstance(loaded, pd.Series):
        loaded = loaded.to_frame().T
    if not isinstance(loaded, pd.DataFrame):
        raise MapSourceError(f"{path}: the pickle holds a {type(loaded).__name__}, not the LSWMD DataFrame")
    missing = [column for column in COLUMNS if column not in loaded.columns]
    if missing:
        raise MapSourceError(
            f"{path}: missing LSWMD column(s) {', '.join(missing)}; found {', '.join(map(str, loaded.columns))}. "
            f"WM-811K frames have {', '.join(COLUMNS)}"
        )
    return loaded


def read_lswmd(path: str | Path) -> Iterator[WaferMap]:
    """Yield the maps of ``LSWMD.pkl`` row by row, ids ``lswmd-<row>`` (the ``index`` column if present, else the
    frame's index). Empty label arrays mean unlabeled (``labels=()``); ``trianTestLabel`` gives the split."""
    path = Path(path)
    frame = load_frame(path)
    row_ids = frame["index"].tolist() if "index" in frame.columns else frame.index.tolist()
    cells = {column: frame[column].tolist() for column in COLUMNS}
    del frame  # from here on each cell has one owner, released below as its row is converted
    for i, row_id in enumerate(row_ids):
        row = {column: values[i] for column, values in cells.items()}
        for values in cells.values():
            values[i] = None
        yield _row_to_map(path, row_id, row)


def _row_to_map(path: Path, row_id: Any, row: dict[str, Any]) -> WaferMap:
    where = f"{path} row {row_id}"
    try:
        return WaferMap(
            grid=np.asarray(row["waferMap"]),
            id=f"lswmd-{row_id}",
            source="lswmd",
            labels=tuple(_strings(row["failureType"])),
            lot=_text(row["lotName"]),
            wafer_index=_whole_number(row["waferIndex"], where),
            die_size=_number(row["dieSize"], where, "dieSize"),
            split=_split(row["trianTestLabel"], where),
        )
    except MapSourceError:
        raise
    except WaferMapError as exc:
        raise MapSourceError(f"{where}: {exc}") from None


def _strings(cell: Any) -> list[str]:
    """Flatten a label cell (``[['Loc']]``, an empty (0, 0) array, a list, a string or missing) to strings."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return []
    if isinstance(cell, (str, bytes)):
        cell = [cell]
    items = np.asarray(cell, dtype=object).ravel().tolist()
    texts = [item.decode("latin1") if isinstance(item, bytes) else str(item) for item in items]
    return [text.strip() for text in texts if text.strip()]


def _split(cell: Any, where: str) -> str | None:
    values = _strings(cell)
    if not values:
        return None
    split = SPLITS.get(values[0].lower())
    if split is None or len(values) > 1:
        raise MapSourceError(f"{where}: trianTestLabel {values!r} is neither 'Training' nor 'Test' (nor empty)")
    return split


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def _number(value: Any, where: str, column: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MapSourceError(f"{where}: {column} {value!r} is not a number") from None
    return None if math.isnan(number) else number


def _whole_number(value: Any, where: str) -> int | None:
    number = _number(value, where, "waferIndex")
    if number is None:
        return None
    if not number.is_integer():
        raise MapSourceError(f"{where}: waferIndex {value!r} is not a whole number (WM-811K uses 1-25)")
    return int(number)
