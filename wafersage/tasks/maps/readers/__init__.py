"""Readers of real wafer-map datasets; :func:`read_maps` is the one entry point.

Formats (``format`` argument, also ``wafersage maps import --format``):

- ``lswmd``: WM-811K ``LSWMD.pkl`` (an old pandas pickle), read through a restricted unpickler;
- ``mixedwm38``: MixedWM38 ``Wafer_Map_Datasets.npz`` (``arr_0`` maps, ``arr_1`` multi-hot labels), streamed;
- ``images``: a folder of PNG/JPEG maps with a ``labels.csv`` (``file,label[,extra columns]``).

Each reader is a lazy ``module:function`` entry, so importing this package stays cheap (pandas loads only for
``lswmd``). Every reader yields :class:`~wafersage.tasks.maps.wafer.WaferMap` objects one at a time.
"""
from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Callable, Iterator

from ..wafer import WaferMap, WaferMapError

#: format name -> "module:function" of a reader ``(path) -> Iterator[WaferMap]``
READERS: dict[str, str] = {
    "lswmd": "wafersage.tasks.maps.readers.lswmd:read_lswmd",
    "mixedwm38": "wafersage.tasks.maps.readers.mixedwm38:read_mixedwm38",
    "images": "wafersage.tasks.maps.readers.images:read_image_folder",
}

FORMATS: tuple[str, ...] = tuple(READERS)


class MapSourceError(WaferMapError):
    """A real-data source cannot be read; the message names the file, the record and the fix."""


def reader_for(format: str) -> Callable[[Path], Iterator[WaferMap]]:
    """The reader function of a format name; unknown names answer with the closest known ones."""
    target = READERS.get(format)
    if target is None:
        close = difflib.get_close_matches(str(format), FORMATS, n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise MapSourceError(f"unknown map format {format!r}; use one of {', '.join(FORMATS)}.{hint}")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def read_maps(source: str | Path, format: str) -> Iterator[WaferMap]:
    """Stream the wafer maps of a real dataset file or folder in ``format`` (one of :data:`FORMATS`).

    Errors are :class:`MapSourceError` naming the file and the row; maps yielded before an error stay valid.
    """
    reader = reader_for(format)
    source = Path(source)
    if not source.exists():
        raise MapSourceError(f"{source}: no such file or folder; check the path of the {format} source")
    return reader(source)
