"""The benchmark folder: the unit the harness evaluates.

Layout::

    manifest.json        name, version, seed, config, sources, counts, sha256 of every other file
    items.jsonl          VQAItem per line
    rubrics.jsonl        Rubric per line (one per wafer)
    maps/                the wafers' grids and metadata (see :mod:`wafersage.tasks.maps.store`), split in metadata
    images/<wafer>.png   rendered maps, referenced by items
    cleaning_report.json Stage-0 cleaning report

Loading verifies every hash and names the file that changed. A folder is untrusted input: every file it names
(manifest entries, items' images, shard paths) must lie inside it, and images must be PNG or JPEG files within the
size limits of :mod:`wafersage.tasks.maps.untrusted`, or loading refuses naming the file, the record and the path.
"""
from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Mapping

from .schema import Rubric, VQAItem
from ..maps.store import read_store
from ..maps.untrusted import check_image, safe_join
from ..maps.wafer import WaferMap

MANIFEST = "manifest.json"
#: the folder format: 2 adds each rubric's fact sheet and each item's focus. A version-1 folder is still read (its
#: facts are measured from its maps, its focus read from the question's wording); a newer one is refused.
SCHEMA_VERSION = 2


class BenchmarkError(ValueError):
    """A benchmark folder is missing, changed or malformed; the message names the file and the fix."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(root: str | Path, *, known_hashes: Mapping[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    """Hash every file under ``root`` (but the manifest) and write ``manifest.json``; returns the manifest.

    ``known_hashes`` (relative path -> sha256) are taken as given instead of read back, for files the caller has
    just written from bytes it hashed (a build's PNGs: thousands of small reads saved)."""
    root = Path(root)
    known = known_hashes or {}
    files = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if name != MANIFEST and (name in known or path.is_file()):
            files[name] = known.get(name) or sha256_file(path)
    manifest = {"schema_version": SCHEMA_VERSION, **fields, "files": files}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def _read_jsonl(path: Path, model: type) -> list:
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                out.append(model.model_validate_json(line))
            except ValueError as exc:
                raise BenchmarkError(f"{path}:{lineno}: invalid {model.__name__}: {exc}") from exc
    return out


class Benchmark:
    """A loaded benchmark folder. ``Benchmark.load(path)`` verifies hashes first."""

    def __init__(self, root: Path, manifest: dict[str, Any]):
        self.root = root
        self.manifest = manifest
        self._images: dict[str, Path] = {}  # image name -> its checked path (wafers share one image per item)

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> "Benchmark":
        root = Path(path)
        if not (root / MANIFEST).exists():
            raise BenchmarkError(f"{root}: no {MANIFEST}; is this a benchmark folder? Build one with 'wafersage synth'")
        manifest_path = safe_join(root, MANIFEST, where=str(root), error=BenchmarkError)
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BenchmarkError(f"{manifest_path}: not valid JSON ({exc}); rebuild with 'wafersage synth'") from exc
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files", {}), dict):
            raise BenchmarkError(f"{manifest_path}: not a benchmark manifest (a JSON object with a 'files' object); "
                                 "rebuild with 'wafersage synth'")
        version = manifest.get("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise BenchmarkError(f"{manifest_path}: benchmark format {version!r} is newer than this wafersage reads "
                                 f"({SCHEMA_VERSION}); upgrade wafersage, or rebuild the folder with 'wafersage synth'")
        if verify:
            for rel, digest in manifest.get("files", {}).items():
                file = safe_join(root, rel, where=f"{manifest_path}: files entry", error=BenchmarkError)
                if not file.exists():
                    raise BenchmarkError(f"{root}: {rel} is listed in the manifest but missing; rebuild the benchmark")
                if sha256_file(file) != digest:
                    raise BenchmarkError(
                        f"{root}: {rel} changed since the benchmark was built (sha256 mismatch); "
                        "restore it or rebuild with 'wafersage synth'"
                    )
        return cls(root, manifest)

    @property
    def name(self) -> str:
        return self.manifest.get("name", self.root.name)

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "0"))

    @cached_property
    def location(self) -> str:
        """The folder as an absolute path, resolved once (requests carry it for the baselines)."""
        return str(self.root.resolve())

    @cached_property
    def hash(self) -> str:
        """sha256 over the manifest's file hashes: changes whenever any file of the benchmark changes."""
        files = json.dumps(self.manifest.get("files", {}), sort_keys=True).encode()
        return hashlib.sha256(files).hexdigest()

    def file(self, name: str, where: str | None = None) -> Path:
        """The path of ``name`` inside the folder; :class:`BenchmarkError` when it leads out of it."""
        return safe_join(self.root, name, where=where or str(self.root), error=BenchmarkError)

    @cached_property
    def all_items(self) -> list[VQAItem]:
        path = self.file("items.jsonl")
        items = _read_jsonl(path, VQAItem)
        first_with: dict[str, str] = {}
        for item in items:
            first_with.setdefault(item.image, item.id)
        for image, item_id in first_with.items():  # refused before anything reads a file outside the folder
            self.file(image, f"{path}: item {item_id} image")
        return items

    def items(self, split: str | None = None) -> list[VQAItem]:
        if split in (None, "all"):
            return list(self.all_items)
        return [it for it in self.all_items if it.split == split]

    @cached_property
    def rubrics(self) -> dict[str, Rubric]:
        return {r.wafer_id: r for r in _read_jsonl(self.file("rubrics.jsonl"), Rubric)}

    def image_path(self, item: VQAItem) -> Path:
        """The item's image: inside the folder and a PNG or JPEG within the size limits, else :class:`BenchmarkError`
        naming the item and the path. Checked once per image name and benchmark object."""
        if (path := self._images.get(item.image)) is None:
            where = f"{self.root / 'items.jsonl'}: item {item.id} image"
            path = self.file(item.image, where)
            check_image(path, where=where, error=BenchmarkError)
            self._images[item.image] = path
        return path

    def wafers(self, split: str | None = None) -> Iterator[WaferMap]:
        for wafer in read_store(self.file("maps")):
            if split in (None, "all") or wafer.split == split:
                yield wafer
