"""The run folder: ``run.json`` (:class:`RunInfo`) and ``samples.jsonl`` (one :class:`Sample` per line).

``samples.jsonl`` is append-only while a run goes (each line flushed and fsynced); a sample for an item and repeat
supersedes earlier ones (a retried failure). A process killed mid-write leaves at most a torn last line, which
readers skip and the runner drops when it resumes. ``load_run(folder)`` gives the final sample of every item.
"""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ValidationError

from .records import RunInfo, Sample

SAMPLES = "samples.jsonl"
RUN_INFO = "run.json"

UnitKey = tuple[str, int]  # (item_id, repeat)


class RunFolderError(ValueError):
    """A run folder is missing or damaged; the message names the file, the line and the fix."""


def unit_key(sample: Sample) -> UnitKey:
    return sample.item_id, sample.repeat


def read_samples(path: str | Path) -> tuple[list[Sample], bool]:
    """All samples in file order, and whether a torn (unfinished) last line was skipped."""
    path = Path(path)
    if not path.exists():
        return [], False
    lines = path.read_bytes().split(b"\n")
    samples, torn = [], False
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            samples.append(Sample.model_validate_json(line))
        except ValidationError as exc:
            if all(not rest.strip() for rest in lines[lineno:]):
                torn = True  # the last write was cut off (process killed); that item is simply run again
                continue
            raise RunFolderError(
                f"{path}:{lineno}: not a valid sample ({exc.errors()[0]['msg']}); delete that line and rerun "
                "the same 'wafersage eval' command to redo the item"
            ) from None
    return samples, torn


def final_samples(samples: list[Sample]) -> dict[UnitKey, Sample]:
    """The last sample of each (item, repeat), in order of first appearance."""
    latest: dict[UnitKey, Sample] = {}
    for sample in samples:
        latest[unit_key(sample)] = sample
    return latest


def _fsync_dir(folder: Path) -> None:
    if os.name == "posix":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write a file so that a crash leaves either the old or the new content."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def rewrite_samples(path: Path, samples: list[Sample]) -> None:
    atomic_write(path, b"".join(s.model_dump_json().encode() + b"\n" for s in samples))


class SampleWriter:
    """Appends samples to ``samples.jsonl``; ``await write(sample)`` returns once the line is on disk.

    Each line is written and flushed at once; fsyncs run in a worker thread, one at a time, and each covers every
    line written before it started (group commit), so the event loop never waits on the disk and many samples
    arriving together share one fsync.
    """

    def __init__(self, path: Path):
        self._fh = open(path, "ab")
        self._written = 0
        self._synced = 0
        self._syncing: asyncio.Future[None] | None = None

    async def write(self, sample: Sample) -> None:
        self._fh.write(sample.model_dump_json().encode() + b"\n")
        self._fh.flush()
        self._written += 1
        line = self._written
        while self._synced < line:
            if self._syncing is None:
                self._syncing = asyncio.ensure_future(self._sync())
            await asyncio.shield(self._syncing)

    async def _sync(self) -> None:
        covered = self._written
        try:
            await asyncio.to_thread(os.fsync, self._fh.fileno())
        finally:
            self._syncing = None
        self._synced = max(self._synced, covered)

    def close(self) -> None:
        self._fh.close()


def read_run_info(folder: str | Path) -> RunInfo | None:
    path = Path(folder) / RUN_INFO
    if not path.exists():
        return None
    try:
        return RunInfo.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise RunFolderError(
            f"{path}: not a valid run record ({exc.errors()[0]['msg']}); delete the run folder and run again"
        ) from None


def write_run_info(folder: str | Path, info: RunInfo) -> None:
    atomic_write(Path(folder) / RUN_INFO, info.model_dump_json(indent=2).encode() + b"\n")


class RunSummary(BaseModel):
    """Totals over the final samples of a run."""

    n_samples: int
    n_ok: int
    n_failed: int
    n_cached: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_p50_s: float | None
    latency_p95_s: float | None


def summarize(samples: list[Sample]) -> RunSummary:
    ok = [s for s in samples if s.ok]
    latencies = [s.response.latency_s for s in ok if not s.cached]
    p50, p95 = (float(v) for v in np.percentile(latencies, [50, 95])) if latencies else (None, None)
    return RunSummary(
        n_samples=len(samples), n_ok=len(ok), n_failed=len(samples) - len(ok),
        n_cached=sum(s.cached for s in samples),
        input_tokens=sum(s.response.input_tokens for s in samples),
        output_tokens=sum(s.response.output_tokens for s in samples),
        cost_usd=sum(s.response.cost_usd for s in samples),
        latency_p50_s=p50, latency_p95_s=p95,
    )


@dataclass
class Run:
    """A loaded run folder: its record and the final sample of every item and repeat."""

    folder: Path
    info: RunInfo
    samples: list[Sample]

    @property
    def failed(self) -> list[Sample]:
        return [s for s in self.samples if not s.ok]

    def summary(self) -> RunSummary:
        return summarize(self.samples)


def load_run(folder: str | Path) -> Run:
    folder = Path(folder)
    info = read_run_info(folder)
    if info is None:
        raise RunFolderError(f"{folder}: no {RUN_INFO}; is this a run folder? Make one with 'wafersage eval'")
    samples, _ = read_samples(folder / SAMPLES)
    return Run(folder=folder, info=info, samples=list(final_samples(samples).values()))
