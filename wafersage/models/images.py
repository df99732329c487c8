"""Images as backends send them: the long side capped (:func:`capped_size`, the one size rule every backend uses),
as base64 data URLs for chat APIs (:func:`encode_image`; encodings are cached per file and settings). Only PNG and
JPEG files within the size limits of :mod:`wafersage.tasks.maps.untrusted` are sent."""
from __future__ import annotations

import base64
import io
import os
import struct
from functools import lru_cache
from typing import Literal

from PIL import Image
from pydantic import BaseModel

from ..tasks.maps.untrusted import check_image

ImageFormat = Literal["png", "jpeg"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST_PATH_BYTES = 4 * 1024 * 1024


class EncodedImage(BaseModel):
    """One image as it is sent: the data URL, the pixel size after capping, the format and the URL's byte length."""

    data_url: str
    width: int
    height: int
    image_format: ImageFormat

    @property
    def nbytes(self) -> int:
        return len(self.data_url)


class ImageReadError(ValueError):
    """An image file could not be read or decoded."""


@lru_cache(maxsize=65536)
def image_size(path: str) -> tuple[int, int]:
    """(width, height) of an image file, read from its header."""
    with Image.open(path) as img:
        return img.size


def capped_size(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """The size after scaling down (never up) so the long side is at most ``max_side``, keeping the aspect."""
    width, height = size
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_image(path: str | os.PathLike[str], max_side: int | None = 512,
                 image_format: ImageFormat = "png") -> EncodedImage:
    """Encode ``path`` as a data URL; images whose long side exceeds ``max_side`` are shrunk (aspect kept)."""
    check_image(path, where="image to send", error=ImageReadError)
    stat = os.stat(path)
    return _encode_cached(os.fspath(path), stat.st_mtime_ns, stat.st_size, max_side, image_format)


def _png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk (None when ``data`` is not a PNG)."""
    if len(data) >= 24 and data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


@lru_cache(maxsize=4096)
def _encode_cached(path: str, mtime_ns: int, size: int, max_side: int | None,
                   image_format: ImageFormat) -> EncodedImage:
    if image_format == "png" and size <= FAST_PATH_BYTES:  # a small PNG within the cap goes as it is, unparsed
        with open(path, "rb") as handle:
            data = handle.read()
        dims = _png_size(data)
        if dims and capped_size(dims, max_side) == dims:
            return _as_url(data, *dims, image_format)
    try:
        with Image.open(path) as image:  # reads the header only; pixels are decoded when needed
            source_format = (image.format or "").lower()
            width, height = capped_size(image.size, max_side)
            if (width, height) != image.size:
                # wafer maps are die grids: nearest keeps each die one solid colour
                image = image.resize((width, height), Image.Resampling.NEAREST)
            elif source_format == image_format:
                with open(path, "rb") as handle:  # already right: send the file's own bytes
                    return _as_url(handle.read(), width, height, image_format)
            buffer = io.BytesIO()
            if image_format == "jpeg":
                image.convert("RGB").save(buffer, format="JPEG", quality=90)
            else:
                image.save(buffer, format="PNG", optimize=False)
    except OSError as exc:
        raise ImageReadError(f"cannot decode image {path}: {exc}") from None
    return _as_url(buffer.getvalue(), width, height, image_format)


def _as_url(data: bytes, width: int, height: int, image_format: ImageFormat) -> EncodedImage:
    url = f"data:image/{image_format};base64,{base64.b64encode(data).decode('ascii')}"
    return EncodedImage(data_url=url, width=width, height=height, image_format=image_format)


def clear_image_cache() -> None:
    """Forget cached encodings (benchmarks measure encoding cost with a cold cache)."""
    _encode_cached.cache_clear()
