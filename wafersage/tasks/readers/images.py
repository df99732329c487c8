"""A folder of wafer-map images (one PNG/JPEG per map, one pixel per die) with a ``labels.csv``.

``labels.csv`` has the columns ``file`` and ``label`` (``+``-joined for mixed patterns, e.g. ``Center+Scratch``;
an empty label means unlabeled); the optional columns ``id``, ``lot``, ``wafer_index``, ``die_size`` and ``split``
fill the map's fields, any other column is kept in the map's ``extra`` metadata (e.g. ``lswmd_row``). The palette is
detected per image: grey levels 0/127/255 (WM-811K renders) or the project's colour palette
(:mod:`wafersage.tasks.palette`). Prefer PNG: a colour JPEG saved with chroma subsampling (4:2:0, the usual default)
averages 2x2 pixel blocks and can turn a lone failing die into a passing one; save JPEGs with ``subsampling=0``.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..palette import COLOUR, GREY, decode_colour, decode_grey
from ..wafer import WaferMap, WaferMapError
from . import MapSourceError

LABELS_CSV = "labels.csv"
REQUIRED = ("file", "label")
FIELDS = ("id", "lot", "wafer_index", "die_size", "split")
#: largest distance from a palette level a pixel may have (JPEG noise); beyond it the image matches no palette
GREY_TOLERANCE = 40
COLOUR_TOLERANCE = 60


def read_image_folder(path: str | Path) -> Iterator[WaferMap]:
    """Yield one map per ``labels.csv`` row; ``path`` is the folder or its ``labels.csv``. Ids default to the
    image's file stem."""
    path = Path(path)
    folder, table = (path.parent, path) if path.is_file() else (path, path / LABELS_CSV)
    if not table.is_file():
        raise MapSourceError(
            f"{folder}: no {LABELS_CSV}; --format images expects a folder of PNG/JPEG maps with a {LABELS_CSV} "
            f"(columns file,label[,extra columns])"
        )
    with open(table, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [column for column in REQUIRED if column not in (reader.fieldnames or [])]
        if missing:
            raise MapSourceError(
                f"{table}: missing column(s) {', '.join(missing)} (header: {', '.join(reader.fieldnames or [])}); "
                f"the first line must name at least file,label"
            )
        for row in reader:
            yield _row_to_map(folder, f"{table}:{reader.line_num}", row)


def _row_to_map(folder: Path, where: str, row: dict[str, Any]) -> WaferMap:
    if None in row:
        raise MapSourceError(f"{where}: more cells than header columns; quote cells that contain commas")
    image = folder / (row["file"] or "").strip()
    if not row["file"] or not image.is_file():
        raise MapSourceError(f"{where}: image {row['file']!r} not found in {folder}; fix the file name or add the image")
    fields = {name: (row.get(name) or "").strip() or None for name in FIELDS}
    extra = {key: value for key, value in row.items() if key not in REQUIRED + FIELDS}
    label_text = (row["label"] or "").strip()
    try:
        return WaferMap(
            grid=decode_image(image),
            id=fields["id"] or image.stem,
            source="images",
            labels=tuple(part.strip() for part in label_text.split("+")) if label_text else (),
            lot=fields["lot"],
            wafer_index=int(fields["wafer_index"]) if fields["wafer_index"] else None,
            die_size=float(fields["die_size"]) if fields["die_size"] else None,
            split=fields["split"],
            extra=extra,
        )
    except (WaferMapError, ValueError) as exc:
        raise MapSourceError(f"{where} ({image.name}): {exc}") from None


def decode_image(path: Path) -> np.ndarray:
    """Image -> die codes. Grey images (or RGB with equal channels) use the grey levels, colour ones the palette;
    a pixel far from every level of the detected palette is an error naming the image."""
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L" if image.mode in ("1", "L", "LA", "I", "I;16") else "RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise WaferMapError(f"cannot read {path.name} as an image ({exc}); use PNG or JPEG files") from None
    pixels = pixels.astype(np.int32)
    if pixels.ndim == 3 and (np.abs(pixels - pixels[..., :1]) <= GREY_TOLERANCE // 4).all():
        pixels = pixels.mean(axis=-1)
    if pixels.ndim == 2:
        codes = decode_grey(pixels)
        distance = np.abs(pixels - GREY[codes].astype(np.int32))
        palette, tolerance = "grey levels 0/127/255", GREY_TOLERANCE
    else:
        codes = decode_colour(pixels)
        distance = np.sqrt(((pixels - COLOUR[codes].astype(np.int32)) ** 2).sum(-1))
        palette, tolerance = "colour palette " + "/".join(map(str, COLOUR.tolist())), COLOUR_TOLERANCE
    if (distance > tolerance).any():
        y, x = np.argwhere(distance > tolerance)[0]
        raise WaferMapError(
            f"pixel (row {y}, column {x}) value {pixels[y, x].tolist()} matches no palette (nearest: {palette}); "
            f"images must be one pixel per die in WM-811K grey or the project's colours"
        )
    return codes
