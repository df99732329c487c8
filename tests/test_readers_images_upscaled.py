"""The image reader reads a nearest-neighbour upscaled render (a benchmark's own 256-px PNGs) back at one pixel per
die, leaves one-pixel-per-die images alone, and refuses an upscaled image no nearest-neighbour scaling explains."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

from wafersage.tasks.generate.generator import generate_map
from wafersage.tasks.maps.readers import MapSourceError, read_maps
from wafersage.tasks.maps.readers.images import undo_upscaling
from wafersage.tasks.maps.render import render_png

SHAPES = [(52, 52), (35, 30), (26, 27), (49, 39), (60, 41), (9, 11), (25, 60)]


def _write(folder, images: dict[str, bytes]):
    folder.mkdir(exist_ok=True)
    for name, data in images.items():
        (folder / name).write_bytes(data)
    with open(folder / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label"])
        writer.writerows([name, "Center"] for name in images)
    return folder


def _maps(seed: int = 0):
    rng = np.random.default_rng(seed)
    return [generate_map(["Scratch" if i % 2 else "Edge-Loc"], rng=rng, shape=shape, wafer_id=f"m{i}")
            for i, shape in enumerate(SHAPES)]


@pytest.mark.parametrize("palette", ["colour", "grey"])
def test_renders_at_256_px_read_back_as_the_die_grid(tmp_path, palette):
    maps = _maps()
    images = {f"{w.id}.png": render_png(w.grid, size=256, palette=palette) for w in maps}
    read = list(read_maps(_write(tmp_path / palette, images), "images"))
    for wafer, back in zip(maps, read):
        assert back.grid.shape == wafer.grid.shape and np.array_equal(back.grid, wafer.grid), wafer.grid.shape
        with Image.open(io.BytesIO(images[f"{wafer.id}.png"])) as img:
            assert back.extra["image_pixels"] == f"{img.height}x{img.width}" and max(img.size) == 256


def test_integer_scales_and_one_pixel_per_die(tmp_path):
    for wafer in _maps(1):
        for size in (4 * max(wafer.grid.shape), 2 * max(wafer.grid.shape)):
            codes = np.asarray(Image.open(io.BytesIO(render_png(wafer.grid, size=size, palette="grey"))))
            codes = np.select([codes == 255, codes == 127], [2, 1], 0)
            assert np.array_equal(undo_upscaling(codes), wafer.grid)
        assert undo_upscaling(wafer.grid) is wafer.grid  # one pixel per die: untouched
    [one] = read_maps(_write(tmp_path, {"a.png": render_png(_maps()[0].grid, size=None)}), "images")
    assert "image_pixels" not in one.extra


def test_an_upscaled_image_no_scaling_explains_is_refused(tmp_path):
    wafer = _maps()[1]
    with Image.open(io.BytesIO(render_png(wafer.grid, size=256))) as img:
        cropped = img.crop((3, 0, img.width, img.height))  # a few pixels cut off one side
        buffer = io.BytesIO()
        cropped.save(buffer, format="PNG")
    folder = _write(tmp_path, {"cropped.png": buffer.getvalue()})
    with pytest.raises(MapSourceError, match=r"labels.csv:2 \(cropped.png\).*looks upscaled.*one pixel per die"):
        list(read_maps(folder, "images"))
