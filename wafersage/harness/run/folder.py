"""The run folder: ``run.json`` (:class:`RunInfo`) and ``samples.jsonl`` (one :class:`Sample` per line).

``samples.jsonl`` is append-only while a run goes (each line flushed and fsynced); a sample for an item and repeat
supersedes earlier ones (a retried failure). A process killed mid-write leaves at most a torn last line, which
readers skip and the runner drops when it resumes. ``load_run(folder)`` gives the final sample of every item.

One process at a time works on a run folder: :func:`folder_lock` holds an OS lock (``flock``) on ``.lock`` in it
for the run's life, so a second ``wafersage eval`` (or ``score``) on the folder is refused naming the holder's PID,
and a crashed holder's lock goes with its process.
"""
from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from pydantic import BaseModel, ValidationError

from .records import RunInfo, Sample

SAMPLES = "samples.jsonl"
RUN_INFO = "run.json"
LOCK = ".lock"

UnitKey = tuple[str, int]  # (item_id, repeat)
#: an fsync of samples.jsonl starts at most this often unless a waiter needs one sooner (see :class:`SampleWriter`)
SYNC_INTERVAL_S = 0.05


class RunFolderError(ValueError):
    """A run folder is missing or damaged; the message names the file, the line and the fix."""


class RunFolderBusy(RunFolderError):
    """Another process holds the run folder's lock."""


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it (``PID N on HOST``), or a placeholder while it is being written."""
    text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    return text or "a process that is starting"


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the exclusive OS lock of ``folder`` (created when missing) while the block runs; yields the folder.

    The lock is ``flock`` on ``FOLDER/.lock``, which records the holder's PID and host. A second process is
    refused with :class:`RunFolderBusy` naming them and the fix; the OS releases the lock when its process exits,
    however it dies, so a crashed run never blocks the next one. A folder this call created is removed again when
    the block leaves nothing in it but the lock (a run refused before it wrote anything)."""
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise RunFolderBusy(
                f"{folder}: another wafersage process ({holder}) is working on this run folder; wait for it to "
                "finish, or stop it and rerun this command to resume (what it wrote is kept), or pass another "
                "--out folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        try:
            yield folder
        finally:
            if created and [p.name for p in folder.iterdir()] == [LOCK]:
                (folder / LOCK).unlink()
                folder.rmdir()
    finally:
        os.close(fd)  # releases the lock


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
    """Appends samples to ``samples.jsonl``, each line written and flushed at once, and fsyncs them (group commit).

    Fsyncs run in a worker thread, one at a time, each covering every line written before it started, so the event
    loop never waits on the disk and samples arriving together share one fsync. A line written while none runs gets
    one at once if none started in the last :data:`SYNC_INTERVAL_S`, else when that interval is over or as soon as
    someone waits for it, whichever comes first: answers trickling in from a slow model at high concurrency share
    fsyncs instead of paying one every line or two, and a waiter never waits for the interval. ``before_sync``
    (e.g. committing the response cache's staged answers) runs in that thread just before each fsync. :meth:`append` returns at once with the line's number, :meth:`synced`
    waits until a line is on disk, ``await write(sample)`` does both, :meth:`drain` waits for every line.
    """

    def __init__(self, path: Path, before_sync: Callable[[], object] | None = None):
        self._fh = open(path, "ab")
        self._before_sync = before_sync
        self._written = 0
        self._synced = 0
        self._syncing: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None  # the next fsync, when lines wait for the interval to pass
        self._last_start = -float("inf")

    def append(self, sample: Sample) -> int:
        """Write and flush one line (inside a running event loop); returns its number for :meth:`synced`."""
        self._fh.write(sample.model_dump_json().encode() + b"\n")
        self._fh.flush()
        self._written += 1
        if self._syncing is None and self._timer is None:
            self._schedule_sync()
        return self._written

    async def synced(self, line: int) -> None:
        """Return once line number ``line`` (and every line before it) is on disk."""
        while self._synced < line:
            if self._syncing is None:  # none runs (the next waits for the interval, or the last failed): start one
                self._start_sync()
            assert self._syncing is not None
            await asyncio.shield(self._syncing)

    async def write(self, sample: Sample) -> None:
        """Append ``sample`` and return once its line is on disk."""
        await self.synced(self.append(sample))

    async def drain(self) -> None:
        """Return once every line written so far is on disk."""
        await self.synced(self._written)

    def _schedule_sync(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._last_start + SYNC_INTERVAL_S - loop.time()
        if delay <= 0:
            self._start_sync()
        else:
            self._timer = loop.call_later(delay, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        if self._syncing is None and self._synced < self._written:
            try:
                self._start_sync()
            except RuntimeError:  # the event loop is shutting its executor down: close() syncs the rest
                pass

    def _start_sync(self) -> None:
        # an executor future with a callback, not a task; the callback records the lines covered and resolves the
        # future that waiters hold, then schedules the next fsync whenever lines were written meanwhile, whether or
        # not anyone waits for them yet
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        loop = asyncio.get_running_loop()
        self._last_start = loop.time()
        fsync = loop.run_in_executor(None, self._commit)
        self._syncing = announced = loop.create_future()
        fsync.add_done_callback(functools.partial(self._sync_done, self._written, announced))

    def _sync_done(self, covered: int, announced: asyncio.Future[None], fsync: asyncio.Future[None]) -> None:
        self._syncing = None
        if fsync.cancelled():
            announced.cancel()
        elif (error := fsync.exception()) is not None:
            announced.set_exception(error)  # the next one to wait starts another fsync
        else:
            self._synced = max(self._synced, covered)
            announced.set_result(None)  # waiters wake up after this callback, to the new state
            if self._synced < self._written and self._timer is None:
                try:
                    self._schedule_sync()
                except RuntimeError:  # the event loop is shutting its executor down: close() syncs the rest
                    pass

    def _commit(self) -> None:
        if self._before_sync is not None:
            self._before_sync()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Sync what is left (lines written after the last fsync, when the loop stopped early) and close."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            if not self._fh.closed and self._synced < self._written:
                self._commit()
                self._synced = self._written
        finally:
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


def summarize(samples: list[Sample], timed: bool = True) -> RunSummary:
    """Totals of ``samples``; latency percentiles over the answers not from the cache, none when not ``timed``
    (imported answers that did not report their latency)."""
    ok = [s for s in samples if s.ok]
    latencies = [s.response.latency_s for s in ok if not s.cached] if timed else []
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
        imported = self.info.imported
        return summarize(self.samples, timed=imported is None or imported.latency_reported)


def load_run(folder: str | Path) -> Run:
    folder = Path(folder)
    info = read_run_info(folder)
    if info is None:
        raise RunFolderError(f"{folder}: no {RUN_INFO}; is this a run folder? Make one with 'wafersage eval'")
    samples, _ = read_samples(folder / SAMPLES)
    return Run(folder=folder, info=info, samples=list(final_samples(samples).values()))
