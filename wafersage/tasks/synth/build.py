"""The benchmark builder: maps -> measure -> clean -> split -> describe -> rubric -> VQA items -> images -> folder.

``build_benchmark(config, out_dir)`` writes the layout documented in :mod:`wafersage.tasks.bench.folder`, plus
``descriptions.jsonl`` (Stage-0b text per wafer). After the per-wafer work, the blind filter
(:mod:`wafersage.tasks.blindness.filter`) scores every item with blind adversaries cross-fitted by wafer and drops
(or flags) the blind-answerable ones; the manifest records the numeric premise thresholds (``premise_thresholds``),
the filter's counts (``blind_filter``) and each template's answer distribution and entropy (``answer_balance``). The same config and seed give identical bytes, with any number of
worker processes (the per-map work runs in chunks, :mod:`.chunks`; cleaning and splits run here over every map).
The folder is built beside ``out_dir`` and moved into place only when complete, so a failed build never leaves half
a benchmark.
The model-backed describer is used when the caller passes a ``generate`` callable (``describe_with``), the model-backed
VQA writer when it passes ``write_with``; tasks never imports a model (``wafersage synth --describe-model NAME
--writer-model NAME`` builds the callables in :mod:`wafersage.harness.synth_cli`).
"""
from __future__ import annotations

import gc
import json
import shutil
from collections import Counter
from contextlib import ExitStack, contextmanager, nullcontext
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from tqdm import tqdm

import wafersage

from ...configio import load_validated_yaml
from ..bench.folder import write_manifest
from ..bench.schema import VQAItem
from ..blindness.answers import ItemRecord, answer_balance
from ..blindness.filter import BlindFilterOptions, blind_filter
from ..blindness.population import SURVEY_COLUMNS, population_thresholds
from ..bench.splits import SplitFractions, SplitKey, assign_split_keys
from ..generate.generator import generate_maps
from ..maps.wafer import PATTERNS, WaferMap
from .chunks import TALLIES, ChunkRunner, part_work, source_chunks
from .clean import CleaningOptions, CleaningReport, clean_embedded
from .vqa import CATEGORY_RANGES


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
    mixture_share: float | None = Field(
        None, ge=0.0, le=1.0, description="Share of the maps that are mixtures (needs mixtures: true); the rest are "
                                          "single patterns and normal wafers. Null: every class equally likely, "
                                          "which makes 29 of 38 classes, three maps in four, mixtures.")

    @model_validator(mode="after")
    def _known_patterns(self) -> "GeneratedSource":
        unknown = sorted(set(self.patterns or ()) - set(PATTERNS) - {"none"})
        if unknown:
            raise ValueError(f"unknown patterns {unknown}; use some of {', '.join(PATTERNS)}, none")
        if self.mixture_share is not None and not self.mixtures:
            raise ValueError(f"mixture_share {self.mixture_share} needs mixtures: true (or drop mixture_share)")
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
    blind_filter: BlindFilterOptions = Field(
        default_factory=BlindFilterOptions,
        description="The vision-indispensable filter: what to do with items a blind adversary, cross-fitted on "
                    "other wafers, answers with high confidence (drop on val/test by default).")
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
        return generate_maps(source.n, config.seed, patterns=source.patterns, size=source.size,
                             mixtures=source.mixtures, balanced=source.balanced,
                             mixture_share=source.mixture_share)
    path = config.resolve(source.path)
    if source.format == "store":
        from ..maps.store import read_store

        maps = read_store(path)
    else:
        from ..maps.readers import read_maps

        maps = read_maps(path, source.format)
    return islice(maps, source.limit) if source.limit else maps


def build_benchmark(config: SynthConfig, out_dir: str | Path, *, describe_with: GenerateFn | None = None,
                    write_with: GenerateFn | None = None, models: dict[str, Any] | None = None,
                    progress: bool = True, overwrite: bool = False, workers: int = 1) -> Path:
    """Build the benchmark folder for ``config`` at ``out_dir`` and return its path.

    ``models`` (e.g. ``{"describer": public model config, "writer": ...}``) is recorded in the manifest as is.
    A wafer whose model call fails or whose reply stays unusable is recorded in ``failures.jsonl``; a model that can
    answer nothing (:class:`~.prompt_templates.ModelUnavailable`) or a bug in a stage (:class:`~.stages.StageError`)
    stops the build at once, leaving ``out_dir`` as it was. ``workers`` > 1 runs the per-map work of the geometry
    path in that many processes (:mod:`.chunks`); the folder is the same to the byte."""
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
    if workers < 1:
        raise SynthConfigError(f"--workers must be at least 1, got {workers}")
    if workers > 1 and (describe_with is not None or write_with is not None):
        raise SynthConfigError(
            f"--workers {workers} runs the geometry path in {workers} processes; a build with a model waits on the "
            "model, not on the CPU, and its client cannot be shared between processes: build it with --workers 1")
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "images").mkdir(parents=True)
    try:
        with _automatic_gc_paused() if describe_with is None and write_with is None else nullcontext(), \
                ChunkRunner(config, staging, workers, describe_with=describe_with, write_with=write_with) as runner:
            manifest_fields, image_hashes = _build_into(config, staging, runner, progress)
            extra = {"models": models} if models else {}
            write_manifest(staging, known_hashes=image_hashes, **manifest_fields, **extra)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return out


def _build_into(config: SynthConfig, root: Path, runner: ChunkRunner,
                progress: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """Build everything but the manifest into ``root``; returns the manifest's fields and the images' sha256."""
    bar = dict(disable=not progress, unit="map", leave=False)
    keys: list[SplitKey] = []
    vectors, numeric, slot_values, sources = [], [], [], Counter()
    total = config.source.n if isinstance(config.source, GeneratedSource) else None
    with tqdm(total=total, desc="read and measure maps", **bar) as survey_bar:
        for survey in runner.survey(source_chunks(total, None if total is not None else load_maps(config))):
            keys += survey.keys
            vectors.append(survey.vectors)
            numeric.append(survey.numeric)
            slot_values += survey.slot_values
            sources.update(survey.sources)
            survey_bar.update(len(survey.keys))
    _check_unique_ids([k.id for k in keys])
    report: CleaningReport = clean_embedded([k.id for k in keys], [k.label for k in keys],
                                            np.concatenate(vectors) if vectors else np.zeros((0, 0)), config.cleaning,
                                            map_tasks=runner.map)
    report.write(root / "cleaning_report.json")
    keep = set(report.kept_ids)
    kept = [position for position, key in enumerate(keys) if key.id in keep]
    splits = assign_split_keys([keys[p] for p in kept], config.splits, config.seed)
    thresholds = population_thresholds(np.concatenate(numeric)[kept] if numeric else np.zeros((0, SURVEY_COLUMNS)),
                                       [slot_values[p] for p in kept])
    records: list[ItemRecord] = []
    answers: Counter = Counter()
    (root / "maps").mkdir()
    counts = {name: Counter() for name in TALLIES}
    image_hashes: dict[str, str] = {}
    n_failed = 0
    with ExitStack() as files, tqdm(total=len(kept), desc="synthesise", **bar) as synth_bar:
        out = {name: files.enter_context(open(root / name, "w", encoding="utf-8"))
               for name in ("items.jsonl", "rubrics.jsonl", "descriptions.jsonl", "maps/index.jsonl")}
        failures = None
        for part in runner.synthesise(part_work(kept, splits, len(keys), thresholds)):
            for name, text in (("items.jsonl", part.items), ("rubrics.jsonl", part.rubrics),
                               ("descriptions.jsonl", part.descriptions), ("maps/index.jsonl", part.index)):
                out[name].write(text)
            if part.failures:
                failures = failures or files.enter_context(open(root / "failures.jsonl", "w", encoding="utf-8"))
                failures.write(part.failures)
            n_failed += part.n_failed
            records += part.records
            answers.update(part.answers)
            image_hashes |= part.image_hashes
            for name, tally in part.tallies.items():
                counts[name].update(tally)
            synth_bar.update(len(part.image_hashes) + part.n_failed)
    filtered = blind_filter(records, config.blind_filter, CATEGORY_RANGES, config.seed)
    answers.subtract((r.template, r.truth) for r, keep in zip(records, filtered.keep) if not keep)
    if not all(filtered.keep):
        _drop_items(root / "items.jsonl", filtered.keep, records, counts)
    return {
        "name": config.name, "version": config.version, "seed": config.seed,
        "config": config.model_dump(mode="json"), "sources": _sources(config, len(keys), sources),
        "counts": {
            "maps_read": len(keys), "maps_flagged": report.n_flagged, "maps_kept": report.n_kept,
            "wafers": sum(counts["wafers_per_class"].values()), "items": sum(counts["items_per_split"].values()),
            "failed_wafers": n_failed,
            **{name: dict(sorted(tally.items())) for name, tally in counts.items()},
        },
        "premise_thresholds": thresholds.model_dump(),
        "blind_filter": filtered.report,
        "answer_balance": {template: balance.model_dump() for template, balance in answer_balance(answers).items()},
        "wafersage_version": wafersage.__version__,
    }, image_hashes


def _drop_items(path: Path, keep: list[bool], records: list[ItemRecord], counts: dict[str, Counter]) -> None:
    """Rewrite ``items.jsonl`` with the kept lines (``keep`` and ``records``: one per line, in order), a wafer's
    items numbered again from 0 where any was dropped, and take the dropped items out of the item tallies."""
    changed = {r.wafer_id for r, k in zip(records, keep) if not k}
    index: Counter = Counter()
    with open(path, encoding="utf-8") as src:
        lines = src.readlines()
    with open(path, "w", encoding="utf-8") as out:
        for line, record, k in zip(lines, records, keep):
            if record.wafer_id not in changed:
                out.write(line)
                continue
            row = json.loads(line)
            if not k:
                for name, key in (("items_per_split", "split"), ("items_per_category", "category"),
                                  ("items_per_difficulty", "difficulty")):
                    counts[name][row[key]] -= 1
                continue
            qa = index[record.wafer_id]
            index[record.wafer_id] += 1
            out.write(VQAItem.model_validate(row | {"id": f"{row['wafer_id']}-q{qa}", "qa_index": qa})
                      .model_dump_json() + "\n")


@contextmanager
def _automatic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a build on the geometry path. The builder keeps every map and
    its geometry until pass 2, so each automatic collection rescans a growing heap (about a fifth of the
    build time at 2,000 wafers), while that path makes almost no reference cycles (74 objects for 2,000 wafers).
    Builds that call models keep the collector: HTTP clients make cycles, and the model's latency dominates."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check_unique_ids(ids: list[str]) -> None:
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    if repeated:
        raise SynthConfigError(
            f"map ids repeat ({', '.join(repeated[:5])}); each wafer needs a unique id — fix the source data or "
            "import it through 'wafersage maps import', which numbers rows")


def _sources(config: SynthConfig, n_read: int, sources: Counter) -> list[dict[str, Any]]:
    src = config.source
    described = {"kind": src.kind, "maps_read": n_read, "map_sources": dict(sorted(sources.items()))}
    if isinstance(src, ImportSource):
        described |= {"path": src.path.name, "format": src.format}
    return [described]
