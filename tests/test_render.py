"""PNG rendering (deterministic bytes, sizes, palettes, decodable) and contact sheets."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from wafersage.tasks.generate.generator import generate_maps
from wafersage.tasks.maps.palette import COLOUR, GREY, decode_colour, decode_grey
from wafersage.tasks.maps.render import RenderError, contact_sheet, render_array, render_png, save_png


@pytest.fixture(scope="module")
def maps():
    return list(generate_maps(6, 3))


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_png_bytes_are_deterministic_and_carry_no_metadata(maps):
    grid = maps[0].grid
    first, second = render_png(grid, size=256), render_png(grid.copy(), size=256)
    assert first == second
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"tIME", b"pHYs"):
        assert chunk not in first
    assert render_png(maps[1].grid, size=256) != first


@pytest.mark.parametrize("size", [None, 52, 100, 256, 513])
def test_long_side_is_the_requested_size(size):
    grid = next(iter(generate_maps(1, 0, size=(40, 26)))).grid
    image = _open(render_png(grid, size=size))
    expected = (26, 40) if size is None else (round(26 * size / 40), size)
    assert image.size == expected


def test_colour_png_decodes_back_to_the_grid(maps):
    for wafer in maps:
        rows, cols = wafer.shape
        scale = 5
        image = _open(render_png(wafer.grid, size=scale * max(rows, cols)))
        assert image.mode == "P"
        assert np.array_equal(np.asarray(image)[::scale, ::scale], wafer.grid), "palette indices are die codes"
        rgb = np.asarray(image.convert("RGB"))
        assert np.array_equal(decode_colour(rgb[2::scale, 2::scale]), wafer.grid)
        assert {tuple(c) for c in rgb.reshape(-1, 3)} <= {tuple(c) for c in COLOUR}


def test_grey_palette_and_nearest_neighbour_blocks(maps):
    grid = maps[0].grid
    image = _open(render_png(grid, palette="grey"))
    assert image.mode == "L" and np.array_equal(decode_grey(np.asarray(image)), grid)
    assert set(np.unique(np.asarray(image))) <= set(GREY.tolist())
    pixels = render_array(grid, size=3 * max(grid.shape), palette="grey")
    assert np.array_equal(pixels[::3, ::3], GREY[grid])
    assert np.array_equal(pixels[1::3, 2::3], GREY[grid]), "each die is a solid 3x3 block"


def test_bad_render_requests():
    grid = np.ones((4, 4), dtype=np.uint8)
    with pytest.raises(RenderError, match="unknown palette 'sepia'"):
        render_png(grid, palette="sepia")
    with pytest.raises(RenderError, match="positive"):
        render_png(grid, size=0)
    with pytest.raises(RenderError, match="2-D"):
        render_png(np.ones(5, dtype=np.uint8))
    with pytest.raises(RenderError, match="at least one map"):
        contact_sheet([])


def test_save_png_and_contact_sheet(maps, tmp_path):
    path = save_png(maps[0], tmp_path / "sub" / "w.png", size=128)
    assert _open(path.read_bytes()).size[0] <= 128 and path.read_bytes() == render_png(maps[0].grid, 128)
    sheet = contact_sheet(maps, columns=4, cell=64)
    plain = contact_sheet(maps, columns=4, cell=64, labels=False)
    assert sheet.mode == "RGB" and sheet.width == plain.width == 4 * (64 + 4) + 4
    assert sheet.height > plain.height, "captions take room under each row"
    caption = np.asarray(sheet)[4 + 64 + 2: 4 + 64 + 22, 4: 4 + 64]
    assert (caption.sum(-1) < 300).any(), "caption text is drawn"
    big = np.ones((300, 200), dtype=np.uint8)
    wide = contact_sheet([type(maps[0])(grid=big, id="big")], columns=1, cell=50, labels=False)
    assert wide.size == (50 + 8, 50 + 8)
