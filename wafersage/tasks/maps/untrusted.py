"""Reading files named by untrusted folders: benchmark folders, map stores, image folders, run folders.

A folder that arrives from elsewhere names files: an item's ``image``, the manifest's file list, a store's shard
paths, a ``labels.csv`` row. :func:`safe_join` resolves such a name inside its folder (absolute paths, ``..`` and
symlinks that lead out are refused); :func:`check_image` makes sure a file is a PNG or JPEG within
:data:`MAX_IMAGE_BYTES` and :data:`MAX_IMAGE_PIXELS` (no decompression bombs) before it is sent to a model or
embedded in a page. Both raise the caller's error type with ``where`` (file and record) and the path named.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path, PurePosixPath, PureWindowsPath

from PIL import Image

#: largest image file accepted (bytes); the openai backend's default data-URL limit
MAX_IMAGE_BYTES = 20_000_000
#: largest image accepted (width x height), checked from the header before any pixel is decoded
MAX_IMAGE_PIXELS = 4096 * 4096
IMAGE_FORMATS = ("PNG", "JPEG")


class UntrustedInputError(ValueError):
    """A file named by an untrusted folder was refused; the message names the file, the record and the path."""


def safe_join(root: str | Path, name: str | os.PathLike[str], *, where: str,
              error: type[Exception] = UntrustedInputError) -> Path:
    """The resolved path of ``name`` inside ``root``; raises ``error`` when it is absolute, empty or leads out of
    ``root`` (through ``..`` or a symlink)."""
    text = os.fspath(name) if isinstance(name, (str, os.PathLike)) else ""
    base = Path(root).resolve()
    if not text or "\x00" in text or PurePosixPath(text).is_absolute() or PureWindowsPath(text).drive:
        raise error(f"{where}: refused path {name!r}: not a relative path inside {base}; "
                    "a folder may only name files inside itself")
    target = (base / text).resolve()
    if not target.is_relative_to(base):
        raise error(f"{where}: refused path {text!r}: it leads out of {base} (to {target}); "
                    "a folder may only name files inside itself (no '..', no symlinks out)")
    return target


def check_image(path: str | Path, *, where: str, error: type[Exception] = UntrustedInputError) -> tuple[int, int]:
    """(width, height) of a PNG or JPEG image file within the size limits; raises ``error`` for anything else."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise error(f"{where}: cannot read image {path}: {exc.strerror or exc}") from None
    checked = _check(os.fspath(path), stat.st_size, stat.st_mtime_ns)
    if isinstance(checked, str):
        raise error(f"{where}: refused image {path}: {checked}")
    return checked


@lru_cache(maxsize=65536)
def _check(path: str, size: int, mtime_ns: int) -> tuple[int, int] | str:
    """The image's size, or why it is refused (memoised per file version)."""
    if size > MAX_IMAGE_BYTES:
        return f"{size:,} bytes, over the limit of {MAX_IMAGE_BYTES:,}"
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                return f"{width}x{height} pixels, over the limit of {MAX_IMAGE_PIXELS:,} (a decompression bomb?)"
            image.verify()
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for a file that is not a sound image
        return f"not a readable PNG or JPEG image ({type(exc).__name__}: {exc})"
    return width, height
