"""How die codes map to pixels, and back. Both palettes are documented in the README."""
from __future__ import annotations

import numpy as np

#: grey levels of WM-811K renders: off-wafer black, pass mid-grey, fail white
GREY = np.array([0, 127, 255], dtype=np.uint8)
#: the project's colour palette (RGB): off-wafer white, pass die teal, fail die amber-red
COLOUR = np.array([[255, 255, 255], [32, 128, 128], [230, 70, 40]], dtype=np.uint8)


def decode_grey(pixels: np.ndarray) -> np.ndarray:
    """Grey image -> die codes, by the nearest of the three grey levels."""
    pixels = np.asarray(pixels, dtype=np.int16)
    return np.abs(pixels[..., None] - GREY.astype(np.int16)).argmin(-1).astype(np.uint8)


def decode_colour(pixels: np.ndarray, palette: np.ndarray = COLOUR) -> np.ndarray:
    """RGB image -> die codes, by the nearest palette colour."""
    pixels = np.asarray(pixels, dtype=np.int32)[..., :3]
    dist = ((pixels[..., None, :] - palette.astype(np.int32)) ** 2).sum(-1)
    return dist.argmin(-1).astype(np.uint8)
