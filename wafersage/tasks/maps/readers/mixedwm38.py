"""MixedWM38 ``Wafer_Map_Datasets.npz``: ``arr_0`` (N, 52, 52) maps and ``arr_1`` (N, 8) multi-hot labels.

The archive is streamed: each member is opened inside the zip and read ``chunk_size`` maps at a time, so memory
stays at one chunk whether the ``.npz`` is stored or compressed (a compressed member cannot be memory-mapped,
and ``np.load(..., mmap_mode=...)`` ignores ``mmap_mode`` for ``.npz`` files anyway).
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from ..wafer import WaferMap, WaferMapError
from . import MapSourceError

#: the column order of ``arr_1`` (Wang et al. 2020); an all-zero row is a normal wafer
LABEL_ORDER: tuple[str, ...] = ("Center", "Donut", "Edge_Loc", "Edge_Ring", "Loc", "Near_Full", "Scratch", "Random")
MAPS, LABELS = "arr_0", "arr_1"


class _NpyStream:
    """One ``.npy`` member of a zip, read row block by row block."""

    def __init__(self, archive: zipfile.ZipFile, path: Path, key: str) -> None:
        self.path, self.key = path, key
        name = f"{key}.npy"
        if name not in archive.namelist():
            found = ", ".join(n.removesuffix(".npy") for n in archive.namelist()) or "nothing"
            raise MapSourceError(
                f"{path}: no {key!r} array in the archive (found {found}); MixedWM38 files hold {MAPS} (maps) and "
                f"{LABELS} (labels) as written by np.savez"
            )
        self.fh: IO[bytes] = archive.open(name)
        try:
            version = np.lib.format.read_magic(self.fh)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}[version]
            self.shape, fortran_order, self.dtype = read_header(self.fh)
        except (ValueError, KeyError) as exc:
            raise MapSourceError(f"{path}: member {name} is not a readable .npy array ({exc})") from None
        if self.dtype.hasobject:
            raise MapSourceError(f"{path}: {key} holds Python objects; MixedWM38 arrays are integers")
        if fortran_order and len(self.shape) > 1:
            raise MapSourceError(
                f"{path}: {key} is stored in Fortran order and cannot be streamed by rows; re-save it with "
                f"np.savez(path, arr_0=np.ascontiguousarray(arr_0), arr_1=...)"
            )
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def read_rows(self, count: int) -> np.ndarray:
        try:
            data = self.fh.read(count * self.row_bytes)
        except (zipfile.BadZipFile, OSError, zlib.error) as exc:  # a CRC mismatch or a corrupt deflate stream
            raise MapSourceError(f"{self.path}: {self.key} is corrupt ({exc}); download the file again") from None
        if len(data) != count * self.row_bytes:
            raise MapSourceError(f"{self.path}: {self.key} is truncated; the file is incomplete, download it again")
        return np.frombuffer(data, dtype=self.dtype).reshape((count, *self.shape[1:]))


def read_mixedwm38(path: str | Path, chunk_size: int = 1024) -> Iterator[WaferMap]:
    """Yield the maps of a MixedWM38 ``.npz`` with ids ``mixedwm38-<row>``; labels from the multi-hot rows."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise MapSourceError(
            f"{path}: not a .npz archive ({exc}); --format mixedwm38 expects Wafer_Map_Datasets.npz — use "
            f"--format lswmd for LSWMD.pkl, --format images for a folder with labels.csv"
        ) from None
    with archive:
        maps, labels = _NpyStream(archive, path, MAPS), _NpyStream(archive, path, LABELS)
        _check_shapes(path, maps.shape, labels.shape)
        for start in range(0, maps.shape[0], chunk_size):
            count = min(chunk_size, maps.shape[0] - start)
            grids, hots = maps.read_rows(count), labels.read_rows(count)
            for offset in range(count):
                yield _to_map(path, start + offset, grids[offset], hots[offset])


def _check_shapes(path: Path, maps: tuple[int, ...], labels: tuple[int, ...]) -> None:
    if len(maps) != 3:
        raise MapSourceError(f"{path}: {MAPS} has shape {maps}; MixedWM38 maps are (N, rows, columns), e.g. (38015, 52, 52)")
    if len(labels) != 2 or labels[1] != len(LABEL_ORDER):
        raise MapSourceError(
            f"{path}: {LABELS} has shape {labels}; MixedWM38 labels are (N, {len(LABEL_ORDER)}) multi-hot in the order "
            f"{', '.join(LABEL_ORDER)}"
        )
    if maps[0] != labels[0]:
        raise MapSourceError(
            f"{path}: {MAPS} has {maps[0]} maps but {LABELS} has {labels[0]} label rows; they must match one to one"
        )


def _to_map(path: Path, row: int, grid: np.ndarray, hot: np.ndarray) -> WaferMap:
    if not np.isin(hot, (0, 1)).all():
        raise MapSourceError(f"{path} row {row}: {LABELS} row {hot.tolist()} is not multi-hot (only 0 and 1 allowed)")
    names = tuple(name for name, flag in zip(LABEL_ORDER, hot) if flag) or ("none",)
    try:
        return WaferMap(grid=grid, id=f"mixedwm38-{row}", source="mixedwm38", labels=names)
    except WaferMapError as exc:
        raise MapSourceError(f"{path} row {row}: {exc}") from None
