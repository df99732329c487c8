"""The benchmark builder: maps -> measure -> clean -> split -> describe -> rubric -> VQA items -> images -> folder.

``build_benchmark(config, out_dir)`` writes the layout documented in :mod:`wafersage.tasks.bench.folder`, plus
``descriptions.jsonl`` (Stage-0b text per wafer). The same config and seed give identical bytes. The folder is
built beside ``out_dir`` and moved into place only when complete, so a failed build never leaves half a benchmark.
The model-backed describer is used when the caller passes a ``generate`` callable (``describe_with``), the model-backed
VQA writer when it passes ``write_with``; tasks never imports a model (``wafersage synth --describe-model NAME
--writer-model NAME`` builds the callables in :mod:`wafersage.harness.synth_cli`).
"""
from __future__ import annotations

import copy
import dataclasses
import gc
import hashlib
import re
import shutil
from collections import Counter
from contextlib import contextmanager, nullcontext
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Iterator, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from tqdm import tqdm

import wafersage

from ...configio import load_validated_yaml
from ..bench.folder import write_manifest
from .clean import CleaningOptions, CleaningReport, clean
from .file_writer import BackgroundFileWriter
from ..geometry.measure import MEASURE_BATCH, Geometry, measure_many
from ..bench.schema import Rubric, VQAItem
from ..bench.splits import SplitFractions, assign_splits
from ..maps.store import write_store
from .stages import Stages, WaferFailure
from ..maps.wafer import PATTERNS, WaferMap

SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")
#: zlib level of the benchmark's map store (maps/): a benchmark's maps are a few MB, so speed wins over size
#: (level 1 writes ~3x faster than 6 for ~25% more bytes)
SYNTH_STORE_LEVEL = 1


class SynthConfigError(ValueError):
    """A synthesis config file is missing or invalid; the message names the file and the field."""


class GeneratedSource(BaseModel):
    """Maps from the seeded procedural generator."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["generated"] = Field(description="Draw maps from wafersage.tasks.generate.generator.")
    n: int = Field(gt=0, description="Number of maps to generate (before cleaning).")
    patterns: list[str] | None = Field(
        None, description="Restrict single-pattern draws to these labels (null: all eight patterns and 'none').")
    size: tuple[int, int] | None = Field(
        None, description="Grid rows x columns for every map; null draws sizes like WM-811K's.")
    mixtures: bool = Field(True, description="Also draw MixedWM38's two-, three- and four-type mixtures.")
    balanced: bool = Field(
        False, description="Cycle through the label classes in order instead of drawing each map's class at "
                           "random: every class appears once n reaches the number of classes (MixedWM38-like).")

    @model_validator(mode="after")
    def _known_patterns(self) -> "GeneratedSource":
        unknown = sorted(set(self.patterns or ()) - set(PATTERNS) - {"none"})
        if unknown:
            raise ValueError(f"unknown patterns {unknown}; use some of {', '.join(PATTERNS)}, none")
        return self


class ImportSource(BaseModel):
    """Real labelled maps read by wafersage.tasks.maps.readers.read_maps."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["import"] = Field(description="Read maps from a dataset file or folder.")
    path: Path = Field(description="Dataset file or folder (relative paths are relative to the config file).")
    format: str = Field(description="Reader format: lswmd, mixedwm38, images (or a map store: store).")
    limit: int | None = Field(None, gt=0, description="Read at most this many maps (in file order).")


Source = Annotated[Union[GeneratedSource, ImportSource], Field(discriminator="kind")]


class SynthConfig(BaseModel):
    """Everything that decides a benchmark's bytes. Loaded from YAML with :meth:`from_yaml`."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, description="Benchmark name, shown on leaderboards.")
    version: str = Field("1", description="Benchmark version; bump it when the config changes.")
    seed: int = Field(0, description="Seed of generation, cleaning, splits and question phrasing.")
    source: Source = Field(description="Where the maps come from: kind 'generated' or 'import'.")
    cleaning: CleaningOptions = Field(default_factory=CleaningOptions, description="Stage-0a cleaning options.")
    splits: SplitFractions = Field(default_factory=SplitFractions, description="Share of wafers per split.")
    image_size: int = Field(256, ge=16, le=4096, description="Long side of the rendered PNGs, in pixels.")
    palette: Literal["colour", "grey"] = Field("colour", description="Render palette (see tasks/palette.py).")
    knowledge: Path | None = Field(
        None, description="Root-cause knowledge YAML (pattern -> equipment, step, causes); null uses the built-in.")
    describer: Literal["geometry", "model"] = Field(
        "geometry", description="'geometry': descriptions and rubrics from measured geometry; 'model': a VLM "
                                "through the generate callable the caller passes.")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    def resolve(self, path: Path) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        return path if path.is_absolute() else self._base_dir / path

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> "SynthConfig":
        """Load a config file; relative paths in it resolve against the file's folder."""
        path = Path(path)
        config = load_validated_yaml(cls, path, SynthConfigError, "synthesis config", "name, seed, source, ...",
                                     **overrides)
        config._base_dir = path.resolve().parent
        return config


#: ``generate(prompt, png_bytes_or_None) -> text``: any model, wrapped by the caller (tasks never imports models).
GenerateFn = Callable[[str, Union[bytes, None]], str]


def load_maps(config: SynthConfig) -> Iterator[WaferMap]:
    """Stream the configured maps."""
    source = config.source
    if isinstance(source, GeneratedSource):
        from ..generate.generator import generate_maps

        if source.balanced:
            return _balanced_maps(source, config.seed)
        return generate_maps(source.n, config.seed, patterns=source.patterns, size=source.size,
                             mixtures=source.mixtures)
    path = config.resolve(source.path)
    if source.format == "store":
        from ..maps.store import read_store

        maps = read_store(path)
    else:
        from ..maps.readers import read_maps

        maps = read_maps(path, source.format)
    return islice(maps, source.limit) if source.limit else maps


def _balanced_maps(source: GeneratedSource, seed: int) -> Iterator[WaferMap]:
    """Like :func:`~wafersage.tasks.generate.generator.generate_maps` (same ids and seeding), classes taken in turn."""
    from ..generate.generator import draw_shape, generate_map, label_classes

    classes = label_classes(source.patterns, source.mixtures)
    for i in range(source.n):
        rng = np.random.default_rng([seed, i])
        shape = tuple(source.size) if source.size is not None else draw_shape(rng)
        yield generate_map(classes[i % len(classes)], rng=rng, shape=shape, wafer_id=f"gen-{seed}-{i:06d}")


def build_benchmark(config: SynthConfig, out_dir: str | Path, *, describe_with: GenerateFn | None = None,
                    write_with: GenerateFn | None = None, models: dict[str, Any] | None = None,
                    progress: bool = True, overwrite: bool = False) -> Path:
    """Build the benchmark folder for ``config`` at ``out_dir`` and return its path.

    ``models`` (e.g. ``{"describer": public model config, "writer": ...}``) is recorded in the manifest as is.
    A wafer whose model call fails or whose reply stays unusable is recorded in ``failures.jsonl``; a model that can
    answer nothing (:class:`~.prompt_templates.ModelUnavailable`) or a bug in a stage (:class:`~.stages.StageError`)
    stops the build at once, leaving ``out_dir`` as it was."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out}: folder exists and is not empty; choose another --out or pass --force")
        if not (out / "manifest.json").exists():
            raise FileExistsError(f"{out}: not a benchmark folder (no manifest.json), so it is not replaced even "
                                  "with --force; choose another --out")
    if (config.describer == "model") != (describe_with is not None):
        raise SynthConfigError(
            f"config {config.name!r} has describer {config.describer!r} but a generate callable was "
            f"{'not ' if describe_with is None else ''}passed; the model describer needs describer: model in the "
            "config and a model ('wafersage synth --describe-model NAME'), the geometry describer needs neither")
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "images").mkdir(parents=True)
    try:
        with _automatic_gc_paused() if describe_with is None and write_with is None else nullcontext():
            manifest_fields, image_hashes = _build_into(config, staging, describe_with, write_with, progress)
            extra = {"models": models} if models else {}
            write_manifest(staging, known_hashes=image_hashes, **manifest_fields, **extra)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return out


def _build_into(config: SynthConfig, root: Path, describe_with: GenerateFn | None, write_with: GenerateFn | None,
                progress: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """Build everything but the manifest into ``root``; returns the manifest's fields and the images' sha256."""
    from ..maps.render import render_png

    bar = dict(disable=not progress, unit="map", leave=False)
    maps = [_safe_id(w) for w in tqdm(load_maps(config), desc="read maps", **bar)]
    _check_unique_ids(maps)
    geoms = _measure(maps, bar)
    report: CleaningReport = clean(maps, config.cleaning, geometries=geoms)
    report.write(root / "cleaning_report.json")
    keep = set(report.kept_ids)
    kept = [(w, g) for w, g in zip(maps, geoms) if w.id in keep]
    splits = assign_splits([w for w, _ in kept], config.splits, config.seed)
    stages = Stages(config, describe_with, write_with)
    wafers_out: list[WaferMap] = []
    items: list[VQAItem] = []
    rubrics: list[Rubric] = []
    descriptions: list = []
    failures: list[WaferFailure] = []
    image_hashes: dict[str, str] = {}
    with BackgroundFileWriter() as files:
        for index, ((wafer, geom), split) in enumerate(tqdm(list(zip(kept, splits)), desc="synthesise", **bar)):
            wafer = _with_split(wafer, split)
            image = f"images/{wafer.id}.png"
            result = stages.run(wafer, geom, image=image, rng=np.random.default_rng([config.seed, index]))
            if result.failure is not None:
                failures.append(result.failure)
                continue
            png = render_png(wafer.grid, size=config.image_size, palette=config.palette)
            files.submit(root / image, png)
            image_hashes[image] = hashlib.sha256(png).hexdigest()
            wafers_out.append(wafer)
            descriptions.append(result.description)
            rubrics.append(result.rubric)
            items.extend(result.items)
    write_store(wafers_out, root / "maps", compress_level=SYNTH_STORE_LEVEL)
    _write_jsonl(root / "items.jsonl", (it.model_dump_json() for it in items))
    _write_jsonl(root / "rubrics.jsonl", (r.model_dump_json() for r in rubrics))
    _write_jsonl(root / "descriptions.jsonl", (d.model_dump_json() for d in descriptions))
    if failures:
        _write_jsonl(root / "failures.jsonl", (f.model_dump_json() for f in failures))
    return {
        "name": config.name, "version": config.version, "seed": config.seed,
        "config": config.model_dump(mode="json"), "sources": _sources(config, maps),
        "counts": _counts(maps, report, wafers_out, items, failures),
        "wafersage_version": wafersage.__version__,
    }, image_hashes


@contextmanager
def _automatic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a build on the geometry path. The builder keeps every map,
    rubric and item until it writes them, so each automatic collection rescans a growing heap (about a fifth of the
    build time at 2,000 wafers), while that path makes almost no reference cycles (74 objects for 2,000 wafers).
    Builds that call models keep the collector: HTTP clients make cycles, and the model's latency dominates."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _measure(maps: list[WaferMap], bar: dict[str, Any]) -> list[Geometry]:
    """Geometry of every map, measured in batches (maps of one grid shape are measured together)."""
    geoms: list[Geometry] = []
    with tqdm(total=len(maps), desc="measure", **bar) as progress:
        for start in range(0, len(maps), 4 * MEASURE_BATCH):
            batch = maps[start:start + 4 * MEASURE_BATCH]
            geoms.extend(measure_many(batch))
            progress.update(len(batch))
    return geoms


def _with_split(wafer: WaferMap, split: str) -> WaferMap:
    """``wafer`` with its split set. The map was validated when it was made and its grid is read-only, so the copy
    shares the grid instead of re-running ``__post_init__`` (which would copy and re-check it: ~50 us per map)."""
    copied = copy.copy(wafer)
    object.__setattr__(copied, "split", split)
    return copied


def _safe_id(wafer: WaferMap) -> WaferMap:
    """Ids name image files: replace characters a file name cannot safely hold."""
    safe = SAFE_ID.sub("_", wafer.id)
    return wafer if safe == wafer.id else dataclasses.replace(wafer, id=safe)


def _check_unique_ids(maps: list[WaferMap]) -> None:
    repeated = [i for i, n in Counter(w.id for w in maps).items() if n > 1]
    if repeated:
        raise SynthConfigError(
            f"map ids repeat ({', '.join(repeated[:5])}); each wafer needs a unique id — fix the source data or "
            "import it through 'wafersage maps import', which numbers rows")


def _write_jsonl(path: Path, lines: Iterable[str]) -> None:
    """One JSON document per line (pydantic's field order, so the bytes are stable)."""
    with open(path, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")


def _sources(config: SynthConfig, maps: list[WaferMap]) -> list[dict[str, Any]]:
    src = config.source
    described = {"kind": src.kind, "maps_read": len(maps), "map_sources": dict(sorted(Counter(w.source for w in maps).items()))}
    if isinstance(src, ImportSource):
        described |= {"path": src.path.name, "format": src.format}
    return [described]


def _counts(maps: list[WaferMap], report: CleaningReport, wafers: list[WaferMap], items: list[VQAItem],
            failures: list[WaferFailure]) -> dict[str, Any]:
    def tally(values) -> dict[str, int]:
        return dict(sorted(Counter(values).items()))

    return {
        "maps_read": len(maps), "maps_flagged": report.n_flagged, "maps_kept": report.n_kept,
        "wafers": len(wafers), "items": len(items), "failed_wafers": len(failures),
        "wafers_per_class": tally(w.label_text for w in wafers),
        "wafers_per_split": tally(w.split for w in wafers),
        "items_per_split": tally(it.split for it in items),
        "items_per_category": tally(it.category for it in items),
        "items_per_difficulty": tally(it.difficulty for it in items),
    }
