"""Image folder + labels.csv reader: palette detection, multi-labels, extra columns, bad rows (the holdout is read
by tests/test_validate_real.py only)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wafersage.tasks.maps.palette import COLOUR, GREY
from wafersage.tasks.maps.readers import MapSourceError, read_maps


def _grid(rows: int = 9, cols: int = 11, fail: tuple[int, int] = (4, 5)) -> np.ndarray:
    yy, xx = np.mgrid[:rows, :cols]
    grid = (((yy - rows // 2) / (rows / 2)) ** 2 + ((xx - cols // 2) / (cols / 2)) ** 2 <= 1).astype(np.uint8)
    grid[fail] = 2
    return grid


def _folder(tmp_path: Path, rows: list[dict], header: list[str] | None = None) -> Path:
    header = header or list(rows[0])
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return tmp_path


def test_grey_colour_rgb_grey_and_jpeg_images_decode_to_the_same_codes(tmp_path):
    grid = _grid()
    Image.fromarray(GREY[grid]).save(tmp_path / "grey.png")
    Image.fromarray(COLOUR[grid]).save(tmp_path / "colour.png")
    Image.fromarray(GREY[grid]).convert("RGB").save(tmp_path / "rgb_grey.png")
    Image.fromarray(GREY[grid]).save(tmp_path / "grey.jpg", quality=95)
    # colour JPEG without chroma subsampling: 4:2:0 averages 2x2 blocks and loses a lone failing die
    Image.fromarray(COLOUR[grid]).save(tmp_path / "colour.jpg", quality=95, subsampling=0)
    files = ["grey.png", "colour.png", "rgb_grey.png", "grey.jpg", "colour.jpg"]
    folder = _folder(tmp_path, [{"file": name, "label": "Loc"} for name in files])
    maps = list(read_maps(folder, "images"))
    assert [m.id for m in maps] == ["grey", "colour", "rgb_grey", "grey", "colour"]
    for wafer in maps:
        np.testing.assert_array_equal(wafer.grid, grid)


def test_labels_fields_and_extra_columns(tmp_path):
    Image.fromarray(GREY[_grid()]).save(tmp_path / "a.png")
    rows = [
        {"file": "a.png", "label": "Center+edge_ring", "lswmd_row": "19", "lot": "lot7", "wafer_index": "3",
         "split": "test", "die_size": "1683.0", "id": ""},
        {"file": "a.png", "label": "", "lswmd_row": "20", "lot": "", "wafer_index": "", "split": "",
         "die_size": "", "id": "custom-id"},
        {"file": "a.png", "label": "normal", "lswmd_row": "", "lot": "", "wafer_index": "", "split": "",
         "die_size": "", "id": ""},
    ]
    first, second, third = read_maps(_folder(tmp_path, rows), "images")
    assert first.labels == ("Center", "Edge-Ring") and first.extra == {"lswmd_row": "19"}
    assert (first.lot, first.wafer_index, first.split, first.die_size) == ("lot7", 3, "test", 1683.0)
    assert second.id == "custom-id" and second.labels == () and second.lot is None
    assert third.labels == ("none",)


def test_folder_may_be_given_by_its_labels_csv(tmp_path):
    Image.fromarray(GREY[_grid()]).save(tmp_path / "a.png")
    folder = _folder(tmp_path, [{"file": "a.png", "label": "Scratch"}])
    (wafer,) = read_maps(folder / "labels.csv", "images")
    assert wafer.labels == ("Scratch",)


def test_missing_image_names_the_csv_line(tmp_path):
    Image.fromarray(GREY[_grid()]).save(tmp_path / "a.png")
    folder = _folder(tmp_path, [{"file": "a.png", "label": "Loc"}, {"file": "gone.png", "label": "Loc"}])
    maps = read_maps(folder, "images")
    assert next(maps).labels == ("Loc",)
    with pytest.raises(MapSourceError, match=r"labels\.csv:3: image 'gone\.png' not found in"):
        next(maps)


def test_unknown_label_names_the_csv_line_and_the_image(tmp_path):
    Image.fromarray(GREY[_grid()]).save(tmp_path / "a.png")
    folder = _folder(tmp_path, [{"file": "a.png", "label": "Center+Blob"}])
    with pytest.raises(MapSourceError, match=r"labels\.csv:2 \(a\.png\): .*unknown defect label 'Blob'"):
        list(read_maps(folder, "images"))


def test_colours_outside_every_palette_are_refused(tmp_path):
    pixels = COLOUR[_grid()].copy()
    pixels[2, 3] = (20, 200, 20)  # bright green: neither grey nor the project's colours
    Image.fromarray(pixels).save(tmp_path / "green.png")
    folder = _folder(tmp_path, [{"file": "green.png", "label": "Loc"}])
    with pytest.raises(MapSourceError, match=r"labels\.csv:2 \(green\.png\): pixel \(row 2, column 3\) .* matches no"):
        list(read_maps(folder, "images"))


def test_grey_level_far_from_the_three_levels_is_refused(tmp_path):
    pixels = GREY[_grid()].copy()
    pixels[0, 0] = 60
    Image.fromarray(pixels).save(tmp_path / "mid.png")
    with pytest.raises(MapSourceError, match=r"mid\.png\): pixel \(row 0, column 0\) value 60 matches no palette"):
        list(read_maps(_folder(tmp_path, [{"file": "mid.png", "label": "Loc"}]), "images"))


def test_not_an_image_is_named(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(MapSourceError, match=r"labels\.csv:2: refused image \S*notes\.png: not a readable PNG or JPEG"):
        list(read_maps(_folder(tmp_path, [{"file": "notes.png", "label": "Loc"}]), "images"))


def test_missing_columns_and_missing_csv(tmp_path):
    with pytest.raises(MapSourceError, match=r"no labels\.csv; --format images expects"):
        list(read_maps(tmp_path, "images"))
    folder = _folder(tmp_path, [{"file": "a.png", "pattern": "Loc"}])
    with pytest.raises(MapSourceError, match=r"labels\.csv: missing column\(s\) label \(header: file, pattern\)"):
        list(read_maps(folder, "images"))
