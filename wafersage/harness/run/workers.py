"""``wafersage eval --workers N``: one run answered by N processes, for when one process's CPU is the limit.

The coordinating process owns the run folder (it holds the folder's lock, checks the resume, writes ``run.json``)
and deals the units still to do round-robin into N shards. Each shard is answered by a spawned worker process in
``RUN/shards/worker-K/`` (its own ``samples.jsonl``, its own lock, one writer per folder; the response cache is
shared). Each worker gets an Nth of the run's concurrency and of the model's per-endpoint limit and per-minute
budgets (:func:`worker_config`), so N workers ask the endpoints no harder than one process would. At the end
:func:`merge_shards` appends the shards' samples to the run's ``samples.jsonl`` and removes them: the result is one
ordinary run folder. A coordinator that was stopped leaves the shards in place; the next command on the folder
merges them first, so what the workers answered is kept.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ...models.base import GenerationParams
from ...models.config import ModelConfig
from ...models.registry import backend_options, load_model
from ...tasks.bench.folder import Benchmark
from .cache import ResponseCache
from .folder import SAMPLES, SampleWriter, UnitKey, atomic_write, folder_lock, read_samples

log = logging.getLogger(__name__)

SHARDS = "shards"
#: backends that hold the weights in the process: N workers would load them N times
IN_PROCESS_BACKENDS = ("hf", "vllm")
#: options divided among the workers (each a per-process limit)
SHARED_LIMITS = ("max_concurrency", "requests_per_minute", "tokens_per_minute")


@dataclass
class ShardJob:
    """What one worker answers, and where (sent to the spawned process, so plain picklable values)."""

    folder: Path
    bench_dir: str
    split: str
    repeats: int
    keys: list[UnitKey]
    config: ModelConfig
    params: GenerationParams
    cache_path: Path
    concurrency: int


def check_workers(workers: int, config: ModelConfig) -> str | None:
    """Why ``--workers`` cannot be used with this model (None when it can)."""
    if workers < 1:
        return f"--workers must be at least 1, got {workers}"
    if workers > 1 and config.backend in IN_PROCESS_BACKENDS:
        return (f"--workers {workers} would load the {config.backend} model's weights once per process; run it "
                f"with --workers 1 (its batch_size sets how many requests it answers at once)")
    return None


def _share(total: float, index: int, count: int) -> float:
    """Worker ``index``'s part of ``total`` (integers split as evenly as they go, at least 1)."""
    if isinstance(total, int):
        return max(1, total // count + (index < total % count))
    return total / count


def worker_config(config: ModelConfig, index: int, count: int) -> ModelConfig:
    """The config worker ``index`` of ``count`` runs with: its part of each per-process limit (operational settings,
    outside cache keys and the resume fingerprint)."""
    options = backend_options(config)
    update = {name: _share(getattr(options, name), index, count) for name in SHARED_LIMITS
              if getattr(options, name, None) is not None}
    return config.model_copy(update=update) if update else config


def shard_jobs(folder: Path, bench: Benchmark, split: str, repeats: int, todo: list[UnitKey], config: ModelConfig,
               params: GenerationParams, cache_path: Path, concurrency: int, workers: int) -> list[ShardJob]:
    """The units still to do, dealt round-robin into ``workers`` shards (empty shards are left out)."""
    return [ShardJob(folder=folder / SHARDS / f"worker-{k}", bench_dir=str(bench.root), split=split,
                     repeats=repeats, keys=todo[k::workers], config=worker_config(config, k, workers),
                     params=params, cache_path=cache_path, concurrency=int(_share(concurrency, k, workers)))
            for k in range(min(workers, len(todo)))]


def run_shards(jobs: list[ShardJob], progress: bool | None, label: str) -> None:
    """Answer every shard in its own process (a worker that fails is logged; its unanswered units stay to do).
    The progress bar counts the lines the workers write."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no event loop or SQLite handle inherited
    processes = [context.Process(target=answer_shard, args=(job,), name=f"wafersage-{job.folder.name}")
                 for job in jobs]
    bar = tqdm(total=sum(len(job.keys) for job in jobs), unit="item", desc=label, dynamic_ncols=True,
               disable=None if progress is None else not progress)
    read = {job.folder / SAMPLES: 0 for job in jobs}  # bytes of each shard's samples counted so far
    try:
        for process in processes:
            process.start()
        while any(process.is_alive() for process in processes):
            time.sleep(0.2)
            for path, offset in read.items():
                lines, read[path] = _new_lines(path, offset)
                bar.update(lines)
    finally:
        for process in processes:
            if process.is_alive():  # the coordinator was interrupted: stop the workers, keep what they wrote
                process.terminate()
            if process.pid is not None:
                process.join()
        bar.close()
    for process in processes:
        if process.exitcode:
            log.warning("%s stopped with exit code %s; the items it did not answer count as failed until the "
                        "same command is run again", process.name, process.exitcode)


def _new_lines(path: Path, offset: int) -> tuple[int, int]:
    """Lines appended to ``path`` after byte ``offset``, and the offset after the last of them."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return 0, offset
    return data.count(b"\n"), offset + data.rfind(b"\n") + 1


def answer_shard(job: ShardJob) -> None:
    """A worker process: answer the shard's units into its own folder (as the single-process run would)."""
    from .runner import execute  # the runner imports this module; a worker is a fresh process that needs it

    _stop_with_parent()
    bench = Benchmark.load(job.bench_dir, verify=False)  # the coordinator verified it
    keys = set(job.keys)
    items = [item for item in bench.items(job.split) if any((item.id, r) in keys for r in range(job.repeats))]
    model = load_model(job.config)
    with folder_lock(job.folder):
        cache = ResponseCache(job.cache_path)
        writer = SampleWriter(job.folder / SAMPLES, before_sync=cache.commit_staged)
        try:
            asyncio.run(execute(model, items, job.repeats, keys, bench, job.config, job.params, cache, writer,
                                job.concurrency, progress=False))
        except KeyboardInterrupt:  # Ctrl-C reaches every process of the group: the coordinator reports it
            raise SystemExit(130) from None
        finally:
            writer.close()
            cache.close()


def _stop_with_parent() -> None:
    """Linux: the kernel sends SIGTERM to this worker when the coordinator dies, however it dies."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: a worker finishes its shard, which the next run merges
        return
    if os.getppid() != parent:  # the coordinator died before the call
        os._exit(1)


def merge_shards(folder: Path) -> int:
    """Append the samples of every shard under ``folder/shards`` to ``folder/samples.jsonl`` (fsynced) and remove
    the shards; returns how many samples were merged. A torn last line of a shard is skipped (its unit is simply
    still to do); a shard whose worker still runs is refused (:class:`~.folder.RunFolderBusy`)."""
    root = folder / SHARDS
    if not root.is_dir():
        return 0
    shards = sorted(path for path in root.iterdir() if path.is_dir())
    merged = []
    for shard in shards:
        with folder_lock(shard):  # refused while a worker (of an earlier, stopped coordinator) still writes it
            merged += read_samples(shard / SAMPLES)[0]
    if merged:
        target = folder / SAMPLES
        existing = target.read_bytes() if target.exists() else b""
        if existing and not existing.endswith(b"\n"):
            existing = existing[: existing.rfind(b"\n") + 1]  # a torn last line: its unit is done by a shard
        atomic_write(target, existing + b"".join(s.model_dump_json().encode() + b"\n" for s in merged))
    shutil.rmtree(root)
    return len(merged)
