"""A benchmark build in chunks, in this process or in worker processes, to the same bytes.

The builder cuts the maps, by position, into chunks of :data:`CHUNK_MAPS` (never by the number of workers) and
runs two passes over them. Between the passes, the global steps run over every map in the building process: the
unique-id check, cleaning (Stage 0a; its per-class clusterings are handed to the workers) and the splits.

1. *Survey* a chunk: make its maps (a generated source) or take them (an import, read by the builder), measure them
   and return what the global steps need: each map's split key (id, grid hash, lot, class), its geometry feature
   vector and the maps' sources. The maps and their geometry stay with the worker side for pass 2, cut into parts
   of :data:`PART_MAPS`: in memory when the build runs in one process; with worker processes, in files under the
   staging folder's ``.work/`` (pickled by this build for itself and removed as soon as read). The survey also
   returns each map's premise values (:func:`~..blindness.population.survey_row`).
2. *Synthesise* a part: its kept maps with their splits (and the build's numeric premise thresholds, drawn from
   the survey's values of every kept map) through Stages 0b–2, the PNGs (written by the worker),
   the part's map-store shard ``maps/shard-<part>.npz``, and the lines of ``items``, ``rubrics``, ``descriptions``,
   ``failures`` and ``maps/index.jsonl``, which the builder appends in part order, and the items' records for the
   blind filter, which runs in the builder over every wafer after the pass.

Each wafer draws its questions from a random stream seeded by its position in the kept list, so every part is
computed from its own inputs alone and the folder is the same for any number of workers. Worker processes are
forked (spawned where fork is missing) before the builder uses any thread pool, and run the geometry path only: a
model-backed build waits on the model, not on the CPU, and its client cannot cross processes.
"""
from __future__ import annotations

import copy
import dataclasses
import gc
import hashlib
import multiprocessing
import pickle
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing.pool import Pool
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np
import sklearn
from threadpoolctl import threadpool_limits

from ..bench.splits import SplitKey, split_key
from ..blindness.answers import ItemRecord
from ..blindness.population import DEFAULT_THRESHOLDS, SURVEY_COLUMNS, PremiseThresholds, survey_row
from .facts import fact_sheet, wafer_facts
from .premises import all_around_of
from ..generate.generator import generate_maps
from ..geometry.measure import Geometry, measure_many
from ..maps.render import render_png
from ..maps.store import write_shard
from ..maps.wafer import WaferMap
from .clean import geometry_embedding
from .file_writer import BackgroundFileWriter
from .stages import Stages

if TYPE_CHECKING:
    from .build import GenerateFn, SynthConfig

#: maps surveyed together (measured in one vectorised pass: bigger batches measure faster per map)
CHUNK_MAPS = 2048
#: maps synthesised together: one map-store shard, one unit of work handed to a worker
PART_MAPS = 512
#: zlib level of the benchmark's map store (maps/): a benchmark's maps are a few MB, so speed wins over size
#: (level 1 writes ~3x faster than 6 for ~25% more bytes)
SYNTH_STORE_LEVEL = 1
#: the manifest's counts a part tallies
TALLIES = ("wafers_per_class", "wafers_per_split", "items_per_split", "items_per_category", "items_per_difficulty")
SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")
WORK = ".work"


@dataclass
class ChunkInput:
    """Maps ``start`` .. ``stop - 1`` of the source: ``maps`` as read, or None to generate them."""

    start: int
    stop: int
    maps: list[WaferMap] | None = None


@dataclass
class Survey:
    """What the global steps need of a chunk's maps, in map order."""

    keys: list[SplitKey]
    vectors: np.ndarray
    sources: Counter
    numeric: np.ndarray  # (maps, SURVEY_COLUMNS): blindness.population.survey_row of each map
    slot_values: list[tuple[str, ...]]  # each map's values of blindness.population.SPREAD_SLOTS


@dataclass
class PartWork:
    """Pass 2 for one part: the positions (in the part) of its kept maps, their splits, and the kept-list index of
    the first of them (it seeds the wafer's random stream)."""

    part: int
    positions: list[int]
    splits: list[str]
    first_index: int
    thresholds: PremiseThresholds = DEFAULT_THRESHOLDS


@dataclass
class PartOutput:
    """A part's lines for the benchmark's files (each newline-terminated), its PNGs' sha256 and its tallies."""

    items: str = ""
    rubrics: str = ""
    descriptions: str = ""
    failures: str = ""
    index: str = ""
    image_hashes: dict[str, str] = field(default_factory=dict)
    n_failed: int = 0
    tallies: dict[str, Counter] = field(default_factory=dict)
    records: list[ItemRecord] = field(default_factory=list)  # for the blind filter (none when it is off)
    answers: Counter = field(default_factory=Counter)  # items per (template, asked value)


def _lines(models: Iterable) -> str:
    return "".join(m.model_dump_json() + "\n" for m in models)


def safe_id(wafer: WaferMap) -> WaferMap:
    """Ids name image files: replace characters a file name cannot safely hold."""
    safe = SAFE_ID.sub("_", wafer.id)
    return wafer if safe == wafer.id else dataclasses.replace(wafer, id=safe)


def with_split(wafer: WaferMap, split: str) -> WaferMap:
    """``wafer`` with its split set. The map was validated when it was made and its grid is read-only, so the copy
    shares the grid instead of re-running ``__post_init__`` (which would copy and re-check it: ~50 us per map)."""
    copied = copy.copy(wafer)
    object.__setattr__(copied, "split", split)
    return copied


class ChunkWorker:
    """Does the passes' work on one side: the building process itself, or one worker process."""

    def __init__(self, config: "SynthConfig", root: Path, spill: bool, describe_with: "GenerateFn | None" = None,
                 write_with: "GenerateFn | None" = None):
        self.config, self.root = config, root
        self.work = root / WORK if spill else None
        self.describe_with, self.write_with = describe_with, write_with
        self.kept: dict[int, tuple[list[WaferMap], list[Geometry]]] = {}
        self._stages: Stages | None = None

    def survey(self, chunk: ChunkInput) -> Survey:
        assert chunk.start % PART_MAPS == 0, "chunks are cut at part boundaries (CHUNK_MAPS is a multiple)"
        maps = chunk.maps
        if maps is None:
            source = self.config.source
            maps = list(generate_maps(chunk.stop, self.config.seed, patterns=source.patterns, size=source.size,
                                      mixtures=source.mixtures, balanced=source.balanced,
                                      mixture_share=source.mixture_share, start=chunk.start))
        maps = [safe_id(w) for w in maps]
        geoms = measure_many(maps)
        for offset in range(0, len(maps), PART_MAPS):
            self._keep((chunk.start + offset) // PART_MAPS, maps[offset:offset + PART_MAPS],
                       geoms[offset:offset + PART_MAPS])
        return Survey(keys=[split_key(w) for w in maps], vectors=geometry_embedding(maps, geoms),
                      sources=Counter(w.source for w in maps),
                      **survey_rows(maps, geoms))

    def _keep(self, part: int, maps: list[WaferMap], geoms: list[Geometry]) -> None:
        if self.work is None:
            self.kept[part] = maps, geoms
            return
        with open(self.work / f"part-{part:06d}.pkl", "wb") as fh:
            pickle.dump((maps, geoms), fh, protocol=pickle.HIGHEST_PROTOCOL)

    def _take(self, part: int, read: bool = True) -> tuple[list[WaferMap], list[Geometry]]:
        """A part's maps and geometry, released here (``read`` False: released unread)."""
        if self.work is None:
            return self.kept.pop(part)
        path = self.work / f"part-{part:06d}.pkl"
        kept: tuple[list[WaferMap], list[Geometry]] = ([], [])
        if read:
            with open(path, "rb") as fh:  # written by this build's survey, in its own staging folder
                kept = pickle.load(fh)
        path.unlink()
        return kept

    def synthesise(self, work: PartWork) -> PartOutput:
        maps, geoms = self._take(work.part, read=bool(work.positions))
        if self._stages is None:
            self._stages = Stages(self.config, self.describe_with, self.write_with)
        config, out = self.config, PartOutput()
        wafers, items, rubrics, descriptions, failures = [], [], [], [], []
        with BackgroundFileWriter() as files:
            for k, (position, split) in enumerate(zip(work.positions, work.splits)):
                wafer = with_split(maps[position], split)
                image = f"images/{wafer.id}.png"
                result = self._stages.run(wafer, geoms[position], image=image, thresholds=work.thresholds,
                                          rng=np.random.default_rng([config.seed, work.first_index + k]))
                if result.failure is not None:
                    failures.append(result.failure)
                    continue
                png = render_png(wafer.grid, size=config.image_size, palette=config.palette)
                files.submit(self.root / image, png)
                out.image_hashes[image] = hashlib.sha256(png).hexdigest()
                wafers.append(wafer)
                descriptions.append(result.description)
                rubrics.append(result.rubric)
                items.extend(result.items)
                out.answers.update((r.template, r.truth) for r in result.records)
                if config.blind_filter.mode != "off":
                    out.records.extend(result.records)
            if wafers:
                out.index = "".join(write_shard(wafers, self.root / "maps", f"shard-{work.part:05d}.npz",
                                                compress_level=SYNTH_STORE_LEVEL))
        out.items, out.rubrics, out.descriptions = _lines(items), _lines(rubrics), _lines(descriptions)
        out.failures, out.n_failed = _lines(failures), len(failures)
        out.tallies = dict(zip(TALLIES, (
            Counter(w.label_text for w in wafers), Counter(w.split for w in wafers), Counter(it.split for it in items),
            Counter(it.category for it in items), Counter(it.difficulty for it in items))))
        return out


def survey_rows(maps: list[WaferMap], geoms: list[Geometry]) -> dict:
    """What the population step needs of the maps: ``numeric``, their premise values
    (:func:`~..blindness.population.survey_row`), and ``slot_values``, their values of
    :data:`~..blindness.population.SPREAD_SLOTS` (as the rubric states them)."""
    rows, slots = [], []
    for wafer, geom in zip(maps, geoms):
        facts = wafer_facts(wafer, geom)
        rows.append(survey_row(geom, all_around_of(facts.distributions, bool(facts.clocks))))
        sheet = fact_sheet(facts)
        slots.append((sheet.density, sheet.texture, ", ".join(facts.distributions)))
    return {"numeric": np.array(rows, dtype=float).reshape(-1, SURVEY_COLUMNS), "slot_values": slots}


def source_chunks(n_generated: int | None, maps: Iterable[WaferMap] | None) -> Iterator[ChunkInput]:
    """The source cut into chunks: ranges of a generated source's ``n_generated`` maps for the workers to make, or
    the ``maps`` a reader streams (one stream: read here) in batches."""
    if n_generated is not None:
        for start in range(0, n_generated, CHUNK_MAPS):
            yield ChunkInput(start, min(start + CHUNK_MAPS, n_generated))
        return
    stream, start = iter(maps or ()), 0
    while batch := list(islice(stream, CHUNK_MAPS)):
        yield ChunkInput(start, start + len(batch), batch)
        start += len(batch)


def part_work(kept: list[int], splits: list[str], n_maps: int,
              thresholds: PremiseThresholds = DEFAULT_THRESHOLDS) -> Iterator[PartWork]:
    """Pass 2's work, part by part, from the kept maps' positions and splits (parts without kept maps too: their
    maps are released)."""
    by_part: dict[int, PartWork] = {}
    for index, (position, split) in enumerate(zip(kept, splits)):
        work = by_part.setdefault(position // PART_MAPS,
                                  PartWork(position // PART_MAPS, [], [], index, thresholds))
        work.positions.append(position % PART_MAPS)
        work.splits.append(split)
    for part in range(-(-n_maps // PART_MAPS)):
        yield by_part.get(part) or PartWork(part, [], [], 0)


_WORKER: ChunkWorker | None = None  # a worker process's own


def _start_worker(config: "SynthConfig", root: Path) -> None:
    global _WORKER
    gc.disable()  # the geometry path makes almost no reference cycles (see build._automatic_gc_paused)
    # one thread per process, and scikit-learn's checks off, as clean() runs its fits (the workers cluster classes)
    threadpool_limits(1)
    sklearn.set_config(assume_finite=True, skip_parameter_validation=True)
    _WORKER = ChunkWorker(config, root, spill=True)


def _survey(chunk: ChunkInput) -> Survey:
    assert _WORKER is not None
    return _WORKER.survey(chunk)


def _synthesise(work: PartWork) -> PartOutput:
    assert _WORKER is not None
    return _WORKER.synthesise(work)


class ChunkRunner:
    """Runs the passes over chunks and parts in this process (``workers`` 1) or in ``workers`` processes, results in
    input order. Use as a context manager: it starts the processes, and stops them and removes ``.work/`` after."""

    def __init__(self, config: "SynthConfig", root: Path, workers: int = 1, *,
                 describe_with: "GenerateFn | None" = None, write_with: "GenerateFn | None" = None):
        self.config, self.root, self.workers = config, root, workers
        self._local = ChunkWorker(config, root, spill=False, describe_with=describe_with, write_with=write_with)
        self._pool: Pool | None = None

    def __enter__(self) -> "ChunkRunner":
        if self.workers > 1:
            (self.root / WORK).mkdir()
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self._pool = context.Pool(self.workers, initializer=_start_worker, initargs=(self.config, self.root))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            if exc_type is None:
                pool.close()
            else:
                pool.terminate()
            pool.join()
        shutil.rmtree(self.root / WORK, ignore_errors=True)

    def _map(self, local: Callable, remote: Callable, tasks: Iterable) -> Iterator:
        if self._pool is None:
            return map(local, tasks)
        return self._pool.imap(remote, tasks)

    def map(self, function: Callable, tasks: Iterable) -> Iterator:
        """``map(function, tasks)`` here or in the workers (``function`` is then pickled by name)."""
        return self._map(function, function, tasks)

    def survey(self, chunks: Iterable[ChunkInput]) -> Iterator[Survey]:
        return self._map(self._local.survey, _survey, chunks)

    def synthesise(self, parts: Iterable[PartWork]) -> Iterator[PartOutput]:
        return self._map(self._local.synthesise, _synthesise, parts)
