"""Wafer maps to pictures: deterministic PNG bytes for benchmarks and contact sheets for people.

Pixels come from :mod:`wafersage.tasks.maps.palette` (``colour``: the project palette, the default; ``grey``: WM-811K's
grey levels). Scaling is nearest-neighbour, so every die is a crisp block of one colour and the image decodes
back to the grid (``palette.decode_colour`` / ``decode_grey``) when sampled at the die centres.
PNG bytes carry no metadata (no time stamp, no text chunks) and use fixed zlib options: the same grid, size and
palette give the same bytes on every run. Colour PNGs are 3-entry palette images (a third of the bytes of RGB and
faster to write); any reader that converts to RGB sees the palette colours, and the raw indices are the die codes.
"""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .palette import COLOUR, GREY
from .wafer import WaferMap

PALETTES = {"colour": COLOUR, "grey": GREY}
#: fixed encoder options: deterministic output. zlib level 1: these block images (each die a solid block of one
#: palette index) encode about twice as fast as at level 6 for ~18% more bytes (~1.2 kB per 256 px map).
PNG_OPTIONS = {"optimize": False, "compress_level": 1}


class RenderError(ValueError):
    """A render request is invalid; the message names the fix."""


def _palette(name: str) -> np.ndarray:
    try:
        return PALETTES[name]
    except KeyError:
        raise RenderError(f"unknown palette {name!r}; use one of {', '.join(PALETTES)}") from None


def _scaled(grid: np.ndarray, size: int | None) -> np.ndarray:
    """``grid`` scaled nearest-neighbour to long side ``size``: cell (i, j) shows die (i·H/h, j·W/w)."""
    grid = np.asarray(grid)
    if grid.ndim != 2 or grid.size == 0:
        raise RenderError(f"cannot render a grid of shape {grid.shape}; pass a non-empty 2-D die grid")
    if size is not None and size < 1:
        raise RenderError(f"image size must be a positive number of pixels, got {size}")
    if size is None or size == max(grid.shape):
        return grid
    row_index, col_index = _scale_index(grid.shape, size)
    return grid.take(col_index, axis=1).take(row_index, axis=0)  # columns first: 4x faster than rows first


@lru_cache(maxsize=256)
def _scale_index(shape: tuple[int, int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source row and column of every output row and column (maps of one product share a grid size)."""
    rows, cols = shape
    scale = size / max(rows, cols)
    out_rows, out_cols = max(1, round(rows * scale)), max(1, round(cols * scale))
    return (np.arange(out_rows) * rows) // out_rows, (np.arange(out_cols) * cols) // out_cols


def render_array(grid: np.ndarray, size: int | None = None, palette: str = "colour") -> np.ndarray:
    """Pixels of ``grid`` (H×W for grey, H×W×3 for colour) with the long side ``size`` pixels.

    Nearest-neighbour scaling, so every die is a solid block of ``size // long_side`` or one more pixels;
    ``None`` keeps one pixel per die.
    """
    return _palette(palette)[_scaled(grid, size)]


def render_image(grid: np.ndarray, size: int | None = None, palette: str = "colour") -> Image.Image:
    """The picture of ``grid``: a palette image (mode ``P``) whose pixel indices are the die codes for
    ``colour``, a mode ``L`` image for ``grey``. Both look like :func:`render_array`."""
    lut = _palette(palette)
    codes = np.ascontiguousarray(_scaled(grid, size), dtype=np.uint8)
    if lut.ndim == 1:
        return Image.fromarray(lut[codes])
    image = Image.fromarray(codes)
    image.putpalette(lut.ravel().tolist())
    return image


def png_bytes(image: Image.Image) -> bytes:
    """Encode ``image`` as PNG with fixed options and no metadata."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **PNG_OPTIONS)
    return buffer.getvalue()


def render_png(grid: np.ndarray, size: int | None = None, palette: str = "colour") -> bytes:
    """PNG bytes of ``grid`` with long side about ``size`` pixels (see :func:`render_array`); deterministic."""
    return png_bytes(render_image(grid, size, palette))


def save_png(wafer: WaferMap, path: str | Path, size: int | None = 256, palette: str = "colour") -> Path:
    """Write ``wafer`` as a PNG file and return its path (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_png(wafer.grid, size=size, palette=palette))
    return path


def contact_sheet(maps: Sequence[WaferMap], columns: int = 8, cell: int = 128, labels: bool = True,
                  palette: str = "colour") -> Image.Image:
    """A grid of map thumbnails, each scaled to ``cell`` pixels on its long side and centred in its cell, with the
    map's ``id`` and label text under it (``labels=False`` leaves the captions out)."""
    if not maps:
        raise RenderError("contact sheet needs at least one map")
    if columns < 1 or cell < 8:
        raise RenderError(f"columns must be >= 1 and cell >= 8 pixels (got columns={columns}, cell={cell})")
    font = ImageFont.load_default()
    caption = 24 if labels else 0
    pad = 4
    rows = -(-len(maps) // columns)
    width, height = columns * (cell + pad) + pad, rows * (cell + caption + pad) + pad
    sheet = Image.new("RGB", (width, height), (245, 245, 245))
    draw = ImageDraw.Draw(sheet)
    for i, wafer in enumerate(maps):
        left = pad + (i % columns) * (cell + pad)
        top = pad + (i // columns) * (cell + caption + pad)
        thumb = render_image(wafer.grid, size=cell, palette=palette).convert("RGB")
        sheet.paste(thumb, (left + (cell - thumb.width) // 2, top + (cell - thumb.height) // 2))
        if labels:
            draw.text((left, top + cell + 1), _fit(wafer.id, cell), fill=(60, 60, 60), font=font)
            draw.text((left, top + cell + 12), _fit(wafer.label_text, cell), fill=(0, 0, 0), font=font)
    return sheet


def _fit(text: str, width_px: int, char_px: int = 6) -> str:
    """Cut ``text`` to what fits ``width_px`` in the default bitmap font, keeping its end (ids differ there)."""
    room = max(width_px // char_px, 4)
    return text if len(text) <= room else "…" + text[-(room - 1):]
