"""Sharded runs and their merge: one run's items answered on several machines, put back into one run folder.

``wafersage eval --shard K/N`` answers the K-th of N parts of the run's selection (the split's items, the first
``--limit`` of them). The parts are cut by wafer: the selection's wafers, in order of first appearance, are dealt
round-robin to the shards, so a wafer's questions stay together, shards differ by at most one wafer, and the same
selection always gives the same parts. ``run.json`` records the shard and the whole selection it belongs to
(:class:`ShardInfo`).

:func:`merge_runs` puts shard folders back together: it checks that they were made on one benchmark and split
with the same request fingerprint (model config, system prompt, sampling settings: everything that shapes a
request) and repeats, over the same selection, and that together they cover every item of it exactly once
(naming the items in no shard and those in more than one, and the shards to run), then writes one ordinary run
folder: the selection's samples in selection order, ``run.json`` without a shard and with ``merged_from``. Samples
a shard lacks (an interrupted shard) stay missing, and are reported; ``wafersage score`` counts them as missing and
rerunning ``wafersage eval`` on the merged folder answers them. A run folder without a shard counts as shard 1/1.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from contextlib import ExitStack
from typing import Sequence

from ...tasks.bench.folder import Benchmark
from ...tasks.bench.schema import VQAItem
from .fingerprint import changed_parts
from .folder import RUN_INFO, SAMPLES, UnitKey, folder_lock, load_run, rewrite_samples, write_run_info
from .records import RunInfo, Sample, ShardInfo

SHARD_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class MergeError(ValueError):
    """Run folders that cannot be merged; the message names the folders, the items and the fix."""


def parse_shard(spec: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N), 1 <= K <= N; :class:`ValueError` naming the form otherwise."""
    match = SHARD_SPEC.match(spec)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"--shard {spec!r}: give K/N with 1 <= K <= N, e.g. --shard 2/3 for the second of three")
    return int(match[1]), int(match[2])


def selection_sha256(item_ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(item_ids).encode()).hexdigest()


def shard_of(wafer_ids: Sequence[str], index: int, count: int) -> list[bool]:
    """Which entries belong to shard ``index`` of ``count``: their wafer's position among the distinct wafers, in
    order of first appearance, modulo ``count``."""
    order: dict[str, int] = {}
    for wafer in wafer_ids:
        order.setdefault(wafer, len(order))
    return [order[wafer] % count == index - 1 for wafer in wafer_ids]


def shard_items(items: Sequence[VQAItem], spec: str) -> tuple[list[VQAItem], ShardInfo]:
    """Shard ``spec`` ("K/N") of a selection; returns its items and the record for ``run.json``."""
    index, count = parse_shard(spec)
    ids = [item.id for item in items]
    info = ShardInfo(index=index, count=count, selection_items=len(ids), selection_sha256=selection_sha256(ids))
    return [item for item, mine in zip(items, shard_of([it.wafer_id for it in items], index, count)) if mine], info


@dataclass
class MergeResult:
    """The merged folder's record, and the samples its shards lacked (interrupted shards: missing in it too)."""

    info: RunInfo
    missing: list[UnitKey]


def _shard(info: RunInfo) -> ShardInfo:
    if info.shard is not None:
        return info.shard
    ids = info.item_ids or []
    return ShardInfo(index=1, count=1, selection_items=len(ids), selection_sha256=selection_sha256(ids))


def _listed(ids: Sequence[str], limit: int = 5) -> str:
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _check_alike(folders: Sequence[Path], infos: Sequence[RunInfo]) -> None:
    """Same benchmark, split, request fingerprint, repeats and selection, or a :class:`MergeError` naming the part."""
    first, base = infos[0], _shard(infos[0])
    for folder, info in zip(folders[1:], infos[1:]):
        theirs = f"{folder} and {folders[0]}"
        if info.bench_hash != first.bench_hash:
            raise MergeError(f"{theirs} were made on different benchmarks ({info.bench_hash[:12]} vs "
                             f"{first.bench_hash[:12]}); merge shards of one benchmark folder")
        if info.split != first.split:
            raise MergeError(f"{theirs} hold different splits ({info.split!r} vs {first.split!r})")
        if info.fingerprint is None or first.fingerprint is None:
            raise MergeError(f"{theirs}: a run.json records no request fingerprint (made by an older wafersage), "
                             "so the shards cannot be shown to share model, prompt and settings; rerun them")
        changed = changed_parts(first.fingerprint, info.fingerprint)
        if changed:
            raise MergeError(f"{theirs} were asked differently (changed: {', '.join(changed)}): their answers must "
                             "not mix; rerun the odd shard with the settings of the others")
        if info.repeats != first.repeats:
            raise MergeError(f"{theirs} answer each item {info.repeats} and {first.repeats} times; use one --repeats")
        shard = _shard(info)
        if (shard.selection_items, shard.selection_sha256) != (base.selection_items, base.selection_sha256):
            raise MergeError(f"{theirs} are shards of different selections ({shard.selection_items} and "
                             f"{base.selection_items} items: another --limit?); run every shard with the same "
                             "--split and --limit")


def _check_cover(folders: Sequence[Path], infos: Sequence[RunInfo], selection: Sequence[str]) -> None:
    """Every item of the selection in exactly one shard, or a :class:`MergeError` naming gaps and overlaps."""
    holders: dict[str, list[int]] = {}
    for position, info in enumerate(infos):
        for item_id in info.item_ids or []:
            holders.setdefault(item_id, []).append(position)
    gaps = [i for i in selection if i not in holders]
    overlaps = [i for i in selection if len(holders.get(i, ())) > 1]
    strangers = [i for i in holders if i not in set(selection)]
    if not (gaps or overlaps or strangers):
        return
    problems = []
    if gaps:
        counts = {_shard(info).count for info in infos}
        absent = ""
        if len(counts) == 1:
            count = counts.pop()
            have = {_shard(info).index for info in infos}
            todo = [f"{k}/{count}" for k in range(1, count + 1) if k not in have]
            if todo:
                absent = f" (shard {', '.join(todo)} not given: run 'wafersage eval ... --shard K/N' for it)"
        problems.append(f"{len(gaps)} items are in no shard: {_listed(gaps)}{absent}")
    if overlaps:
        pairs = sorted({" and ".join(str(folders[p]) for p in holders[i]) for i in overlaps})
        problems.append(f"{len(overlaps)} items are in more than one shard: {_listed(overlaps)} (held by "
                        f"{'; '.join(pairs)}); give each shard once")
    if strangers:
        problems.append(f"{len(strangers)} items are not in the selection: {_listed(strangers)}")
    raise MergeError("the shards do not cover the selection exactly once: " + "; ".join(problems))


def merge_runs(folders: Sequence[str | Path], out: str | Path, bench_dir: str | Path | None = None) -> MergeResult:
    """Merge shard run folders into the run folder ``out`` (see the module docstring). ``bench_dir``: the benchmark
    folder on this machine (default: the one the first shard recorded); it must be the shards' benchmark."""
    folders = [Path(f) for f in folders]
    out = Path(out)
    if not folders:
        raise MergeError("no run folders given; pass the shard folders to merge")
    for folder in folders:
        if not (folder / RUN_INFO).exists():
            raise MergeError(f"{folder}: no {RUN_INFO}; pass run folders made by 'wafersage eval --shard K/N'")
    if out.exists() and any(p.name != ".lock" for p in out.iterdir()):
        raise MergeError(f"{out}: folder exists and is not empty; pass another --out")
    with ExitStack() as locks:  # no eval may be writing a shard while it is read
        for folder in folders:
            locks.enter_context(folder_lock(folder))
        runs = [load_run(folder) for folder in folders]
    infos = [run.info for run in runs]
    _check_alike(folders, infos)
    bench = Benchmark.load(bench_dir if bench_dir is not None else infos[0].bench_dir)
    if bench.hash != infos[0].bench_hash:
        raise MergeError(f"{bench.root} has hash {bench.hash[:12]}, not the shards' benchmark "
                         f"({infos[0].bench_hash[:12]}); pass --bench with the folder they ran on")
    base = _shard(infos[0])
    selection = [item.id for item in bench.items(infos[0].split)[:base.selection_items]]
    if selection_sha256(selection) != base.selection_sha256:
        raise MergeError(f"{bench.root}: split {infos[0].split!r} does not hold the shards' selection "
                         f"({base.selection_items} items); pass --bench with the folder they ran on")
    _check_cover(folders, infos, selection)
    repeats = infos[0].repeats
    found: dict[UnitKey, Sample] = {}
    for run in runs:
        keys = {(i, r) for i in run.info.item_ids or [] for r in range(repeats)}
        found |= {(s.item_id, s.repeat): s for s in run.samples if (s.item_id, s.repeat) in keys}
    order = [(i, r) for i in selection for r in range(repeats)]
    samples = [found[key] for key in order if key in found]
    first = infos[0]
    info = first.model_copy(update=dict(
        bench_dir=str(bench.root.resolve()), n_items=len(selection), item_ids=selection, shard=None,
        started_at=min(i.started_at for i in infos),
        finished_at=None if any(i.finished_at is None for i in infos) else max(i.finished_at for i in infos),
        n_ok=sum(s.ok for s in samples), n_failed=len(order) - sum(s.ok for s in samples),
        offline=all(i.offline for i in infos),
        merged_from=[{"folder": str(f.resolve()), "shard": _shard(i).spec, "n_items": i.n_items,
                      "started_at": i.started_at, "finished_at": i.finished_at, "git_commit": i.git_commit,
                      "packages": i.packages} for f, i in zip(folders, infos)],
    ))
    with folder_lock(out):
        rewrite_samples(out / SAMPLES, samples)
        write_run_info(out, info)
    return MergeResult(info=info, missing=[key for key in order if key not in found])
