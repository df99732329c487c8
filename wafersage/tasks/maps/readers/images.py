"""A folder of wafer-map images (one PNG/JPEG per map, one pixel per die) with a ``labels.csv``.

``labels.csv`` has the columns ``file`` and ``label`` (``+``-joined for mixed patterns, e.g. ``Center+Scratch``;
an empty label means unlabeled); the optional columns ``id``, ``lot``, ``wafer_index``, ``die_size`` and ``split``
fill the map's fields, any other column is kept in the map's ``extra`` metadata (e.g. ``lswmd_row``). The palette is
detected per image: grey levels 0/127/255 (WM-811K renders) or the project's colour palette
(:mod:`wafersage.tasks.maps.palette`). Prefer PNG: a colour JPEG saved with chroma subsampling (4:2:0, the usual default)
averages 2x2 pixel blocks and can turn a lone failing die into a passing one; save JPEGs with ``subsampling=0``.

An image upscaled by nearest-neighbour scaling (a benchmark's own ``images/*.png``, ``render_png(grid, size=256)``:
every die a solid block of ``floor`` or ``ceil`` of the scale in pixels, integer or not) is detected and read back
at one pixel per die (:func:`undo_upscaling`); the map's ``extra`` then records ``image_pixels`` (``HxW``). An image
whose every die spans two or more pixels but that no nearest-neighbour scaling explains is refused with the fix.
A ``file`` must name a PNG or JPEG inside the folder (:mod:`wafersage.tasks.maps.untrusted`).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..palette import COLOUR, GREY, decode_colour, decode_grey
from ..untrusted import check_image, safe_join
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
    image = safe_join(folder, (row["file"] or "").strip(), where=f"{where}: file", error=MapSourceError)
    if not image.is_file():
        raise MapSourceError(f"{where}: image {row['file']!r} not found in {folder}; fix the file name or add the image")
    check_image(image, where=where, error=MapSourceError)
    fields = {name: (row.get(name) or "").strip() or None for name in FIELDS}
    extra = {key: value for key, value in row.items() if key not in REQUIRED + FIELDS}
    label_text = (row["label"] or "").strip()
    try:
        pixels = decode_image(image)
        grid = undo_upscaling(pixels)
        if grid.shape != pixels.shape:
            extra["image_pixels"] = f"{pixels.shape[0]}x{pixels.shape[1]}"
        return WaferMap(
            grid=grid,
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


def _runs_of_equal_lines(codes: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions along ``axis`` where a pixel line differs from the one before, and the lengths of the runs of equal
    lines between them."""
    lines = np.moveaxis(codes, axis, 0)
    changes = np.flatnonzero((lines[1:] != lines[:-1]).reshape(len(lines) - 1, -1).any(axis=1)) + 1
    return changes, np.diff(np.concatenate([[0], changes, [len(lines)]]))


def _nearest_index(n: int, length: int) -> np.ndarray:
    """Source index of each of ``length`` pixels when ``n`` dies are scaled to ``length`` (render.render_png's rule)."""
    return (np.arange(length) * n) // length


def _die_counts(changes: np.ndarray, length: int) -> list[int]:
    """Die counts ``n`` (at least 2 pixels per die) whose nearest-neighbour blocks put every change on a block
    start, smallest first."""
    out = []
    for n in range(1, length // 2 + 1):
        starts = np.flatnonzero(np.diff(_nearest_index(n, length))) + 1
        if np.isin(changes, starts, assume_unique=True).all():
            out.append(n)
    return out


def undo_upscaling(codes: np.ndarray) -> np.ndarray:
    """One code per die from a nearest-neighbour upscaled map image; ``codes`` unchanged when a die is one pixel.

    Raises :class:`WaferMapError` for an image whose dies all span >= 2 pixels but no nearest-neighbour scaling
    (one scale for both axes, long side = image's long side) reproduces exactly.
    """
    height, width = codes.shape
    changes_r, runs_r = _runs_of_equal_lines(codes, 0)
    changes_c, runs_c = _runs_of_equal_lines(codes, 1)
    if min(runs_r.min(), runs_c.min()) < 2:
        return codes  # some die is a single pixel: already one pixel per die
    long_side = max(height, width)
    for rows in _die_counts(changes_r, height):
        for cols in _die_counts(changes_c, width):
            scale = long_side / max(rows, cols)
            if (max(1, round(rows * scale)), max(1, round(cols * scale))) != (height, width):
                continue
            row_index, col_index = _nearest_index(rows, height), _nearest_index(cols, width)
            starts_r = np.searchsorted(row_index, np.arange(rows))
            starts_c = np.searchsorted(col_index, np.arange(cols))
            grid = codes[np.ix_(starts_r, starts_c)]
            if np.array_equal(grid[np.ix_(row_index, col_index)], codes):
                return grid
    raise WaferMapError(
        f"the {height}x{width} image looks upscaled (every die spans 2 or more pixels) but no nearest-neighbour "
        "scaling explains it (smoothed or cropped?); save the map at one pixel per die, or as rendered by "
        "wafersage.tasks.maps.render.render_png")
