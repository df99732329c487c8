"""The eval runner: every item of a benchmark split through one model, into a resumable run folder.

A fixed pool of ``concurrency`` worker tasks pulls work from a bounded queue (never one coroutine per item); a
backend with ``batch_size > 1`` gets batches. Each answer is staged in the response cache and appended as one
flushed line to ``samples.jsonl`` at once; a group commit in a background thread then writes the staged answers
to the cache and fsyncs the lines. No worker waits on the disk for the answer it just got, only for its previous
one before it writes another, so a killed process loses nothing it wrote and a crash of the machine at most one
batch per worker (the answers in flight). The same command resumes a run: items with an ok sample are skipped,
failed ones are retried (``retry_errors`` reruns only those), and answers already in the cache cost no model call.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sized

from tqdm import tqdm

from ...models.base import GenerationParams, Model, ModelRequest, ModelResponse, SentImage
from ...models.baselines import READS_THE_MAP
from ...models.config import ModelConfig
from ...models.registry import backend_options, load_model, resolve
from ...tasks.bench.folder import Benchmark
from ...tasks.bench.schema import SPLITS, VQAItem
from .cache import ResponseCache
from .estimate import CostEstimate, estimate_cost
from .messages import build_request
from .provenance import git_commit, package_versions
from .records import RunInfo, Sample, SentRequest, ShardInfo
from .fingerprint import Fingerprint, changed_parts, request_fingerprint
from .shards import parse_shard, shard_items
from .folder import (
    SAMPLES, SampleWriter, UnitKey, final_samples, folder_lock, read_run_info, read_samples, rewrite_samples,
    write_run_info,
)
from .workers import check_workers, merge_shards, run_shards, shard_jobs

CACHE_FILE = ".wafersage-cache.sqlite"
#: packages whose versions run.json records (those installed)
PACKAGES = ("wafersage", "pydantic", "numpy", "openai", "transformers", "torch", "vllm")


class EvalUsageError(ValueError):
    """The eval was asked for something impossible (bad option, incompatible run folder); exit code 2."""


@dataclass
class Unit:
    """One model call to make: an item and its repeat index."""

    item: VQAItem
    repeat: int
    request: ModelRequest
    sent: SentRequest


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


#: what a blind run's name ends with ("gpt-5-mini (no image)"): the leaderboard pairs it with the run of NAME
NO_IMAGE_SUFFIX = "(no image)"

def default_out_dir(bench: Benchmark, config: ModelConfig) -> Path:
    return Path("runs") / bench.name / config.name.replace(f" {NO_IMAGE_SUFFIX}", "-no-image")


def default_cache_path(out_dir: Path) -> Path:
    """``<run folder's parent>/.wafersage-cache.sqlite``, or ``~/.cache/wafersage`` when that is not writable."""
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".{CACHE_FILE}.probe"
        probe.touch()
        probe.unlink()
        return parent / CACHE_FILE
    except OSError:
        return Path.home() / ".cache" / "wafersage" / "responses.sqlite"


def resolve_config(
    model_spec: str | ModelConfig, offline: bool, image_max_side: int | None, image_format: str | None,
    no_image: bool = False,
) -> ModelConfig:
    overrides: dict[str, Any] = {}
    if no_image:
        config = model_spec if isinstance(model_spec, ModelConfig) else resolve(model_spec)
        if config.backend in READS_THE_MAP:
            raise EvalUsageError(f"model {config.name!r} answers from the map or the reference itself, so it has no "
                                 "run without the image; drop --no-image (the blind baselines are blind-prior and "
                                 "blind-question)")
        overrides |= {"no_image": True, "name": f"{config.name} {NO_IMAGE_SUFFIX}"}
    if offline:
        overrides["offline"] = True
    if image_max_side is not None:
        overrides["image_max_side"] = image_max_side
    if image_format is not None:
        overrides["image_format"] = image_format
    if isinstance(model_spec, ModelConfig):
        return model_spec.model_copy(update=overrides) if overrides else model_spec
    return resolve(model_spec, **overrides)


#: the size and format a backend sends for an image file (a model's ``sent_image``, or its options' in a dry run)
ImageRecorder = Callable[[str], SentImage]


def repeat_params(params: GenerationParams, repeat: int) -> GenerationParams:
    """Repeat ``r`` of an item samples with seed ``seed + r``, so seeded backends give N different samples."""
    if repeat == 0 or params.seed is None:
        return params
    return params.model_copy(update={"seed": params.seed + repeat})


def iter_units(
    items: list[VQAItem], bench: Benchmark, repeats: int, params: GenerationParams, record_image: ImageRecorder,
    system_prompt: str | None = None, todo: set[UnitKey] | None = None, with_image: bool = True,
) -> Iterator[Unit]:
    """The work, one unit at a time as it is asked for: one per item and repeat (those in ``todo`` when given), with
    the request and its record (``system_prompt``: the model config's, None for the harness default;
    ``with_image`` False for a blind run)."""
    for item in items:
        first = build_request(item, bench, params, system_prompt, with_image=with_image)  # repeats: other params
        messages = [m.model_dump() for m in first.messages]
        size, image_format = record_image(first.images[0]) if first.images else (None, None)
        for repeat in range(repeats):
            if todo is not None and (item.id, repeat) not in todo:
                continue
            request = first.model_copy(update={"params": repeat_params(params, repeat)}) if repeat else first
            sent = SentRequest(messages=messages, image=item.image if with_image else None, image_size=size,
                               image_format=image_format, params=request.params.model_dump())
            yield Unit(item, repeat, request, sent)


def make_units(
    items: list[VQAItem], bench: Benchmark, repeats: int, params: GenerationParams, record_image: ImageRecorder,
    system_prompt: str | None = None, with_image: bool = True,
) -> list[Unit]:
    """The whole work list (:func:`iter_units`)."""
    return list(iter_units(items, bench, repeats, params, record_image, system_prompt, with_image=with_image))


def check_resume(folder: Path, fingerprint: Fingerprint, bench: Benchmark, split: str,
                 shard: ShardInfo | None = None) -> RunInfo | None:
    """The folder's earlier record, after refusing a folder whose requests were shaped otherwise (another model
    config, system prompt, sampling setting, benchmark or split) or that holds another shard, naming what changed."""
    info = read_run_info(folder)
    if info is None:
        return None
    restart = "pass another --out folder, or delete this one to start over"
    if info.imported is not None:
        raise EvalUsageError(f"{folder}: this run folder holds answers imported with 'wafersage import-answers'; "
                             f"'wafersage eval' does not add to it; {restart}")
    if (info.shard and info.shard.spec) != (shard and shard.spec):
        held = f"shard {info.shard.spec}" if info.shard else "the whole selection"
        asked = f"shard {shard.spec}" if shard else "the whole selection (no --shard)"
        raise EvalUsageError(f"{folder}: this run folder holds {held}, not {asked}; rerun with "
                             f"{f'--shard {info.shard.spec}' if info.shard else 'no --shard'}, or {restart}")
    if info.bench_hash != bench.hash:
        raise EvalUsageError(
            f"{folder}: this run folder was made with benchmark {info.bench_name} hash {info.bench_hash[:12]}, "
            f"not {bench.root} ({bench.hash[:12]}); {restart}")
    if info.split != split:
        raise EvalUsageError(f"{folder}: this run folder holds split {info.split!r}, not {split!r}; {restart}")
    if info.fingerprint is None:
        raise EvalUsageError(f"{folder}: run.json records no request fingerprint (made by an older wafersage), so "
                             f"a resume cannot be checked; {restart}")
    changed = changed_parts(info.fingerprint, fingerprint)
    if changed:
        raise EvalUsageError(
            f"{folder}: this run folder was made with a different model config or request settings (changed: "
            f"{', '.join(changed)}), and its answers must not mix with these; rerun with the settings it was made "
            f"with, or {restart}")
    return info


def error_responses(count: int, reason: str) -> list[ModelResponse]:
    return [ModelResponse(error=reason) for _ in range(count)]


async def call_model(model: Model, requests: list[ModelRequest]) -> list[ModelResponse]:
    """``model.generate`` that never raises for the batch: a crash or a wrong count becomes error responses."""
    try:
        responses = await model.generate(requests)
    except Exception as exc:  # noqa: BLE001 - a backend bug must not lose the run; the reason is recorded
        return error_responses(len(requests), f"backend raised {type(exc).__name__}: {exc}")
    if len(responses) != len(requests):
        return error_responses(len(requests), f"backend returned {len(responses)} responses for {len(requests)}")
    return list(responses)


async def run_units(
    units: Iterable[Unit], model: Model, config: ModelConfig, cache: ResponseCache, writer: SampleWriter,
    concurrency: int, progress: bool | None = None, total: int | None = None,
) -> None:
    """Run the units through ``concurrency`` worker tasks fed by a bounded queue; batches for batch backends.
    ``units`` may be an iterator (then give their number as ``total``, for the progress bar): each is taken when
    the queue has room, so the first requests go out at once."""
    queue: asyncio.Queue[Unit | None] = asyncio.Queue(maxsize=max(2 * concurrency, 16))
    batch_size = max(1, model.batch_size)
    count = len(units) if total is None and isinstance(units, Sized) else total
    bar = tqdm(total=count, unit="item", desc=config.name, smoothing=0.1, dynamic_ncols=True,
               disable=None if progress is None else not progress)

    # baselines are free and answer from request metadata, which cache keys leave out: never cache them
    use_cache = model.deployment != "baseline"

    async def handle(batch: list[Unit], previous_line: int) -> int:
        """Answer a batch (from the cache where possible) and append its samples; returns its last line number."""
        keys = [cache.key(config, unit.request, unit.repeat) if use_cache else "" for unit in batch]
        hits = [cache.get(key) if use_cache else None for key in keys]
        misses = [index for index, hit in enumerate(hits) if hit is None]
        answers = await call_model(model, [batch[index].request for index in misses]) if misses else []
        responses = dict(zip(misses, answers))
        await writer.synced(previous_line)  # this worker's previous answers are on disk before it writes more
        line = previous_line
        for index, (unit, key, hit) in enumerate(zip(batch, keys, hits)):
            response = hit if hit is not None else responses[index]
            if use_cache and hit is None:  # in the cache no later than its line is fsynced
                cache.stage(key, response)
            line = writer.append(Sample(item_id=unit.item.id, wafer_id=unit.item.wafer_id, repeat=unit.repeat,
                                        request=unit.sent, response=response, cached=hit is not None))
        bar.update(len(batch))
        return line

    async def worker() -> None:
        # each worker consumes exactly one end marker, so all of them stop once the queue is drained
        line = 0
        while (unit := await queue.get()) is not None:
            batch, last = [unit], False
            while len(batch) < batch_size and not queue.empty():
                nxt = queue.get_nowait()
                if nxt is None:
                    last = True
                    break
                batch.append(nxt)
            line = await handle(batch, line)
            if last:
                return

    async def produce() -> None:
        for unit in units:
            await queue.put(unit)
        for _ in range(concurrency):
            await queue.put(None)

    try:
        await asyncio.gather(produce(), *(worker() for _ in range(concurrency)))
    finally:
        bar.close()
        await writer.drain()


async def execute(
    model: Model, items: list[VQAItem], repeats: int, todo: set[UnitKey], bench: Benchmark, config: ModelConfig,
    params: GenerationParams, cache: ResponseCache, writer: SampleWriter, concurrency: int, progress: bool | None,
) -> None:
    """Run the units still to do, then close the model (inside the event loop its client belongs to)."""
    try:
        todo_items = [item for item in items if any((item.id, r) in todo for r in range(repeats))]
        for item in todo_items:  # a refused image stops the run before its first request (checked once each)
            if not config.no_image:
                bench.image_path(item)
        units = iter_units(todo_items, bench, repeats, params, model.sent_image, config.system_prompt, todo,
                           with_image=not config.no_image)
        await run_units(units, model, config, cache, writer, concurrency, progress, total=len(todo))
    finally:
        await model.aclose()


def _validate_options(split: str, limit: int | None, concurrency: int, repeats: int, shard: str | None) -> None:
    if split not in (*SPLITS, "all"):
        raise EvalUsageError(f"unknown split {split!r}; use one of {', '.join(SPLITS)} or all")
    if limit is not None and limit < 1:
        raise EvalUsageError(f"--limit must be at least 1, got {limit}")
    if concurrency < 1:
        raise EvalUsageError(f"--concurrency must be at least 1, got {concurrency}")
    if repeats < 1:
        raise EvalUsageError(f"--repeats must be at least 1, got {repeats}")
    if shard is not None:
        try:
            parse_shard(shard)
        except ValueError as exc:
            raise EvalUsageError(str(exc)) from None


def run_eval(
    bench_dir: str | Path, model_spec: str | ModelConfig, *, split: str = "test", limit: int | None = None,
    concurrency: int = 8, out_dir: str | Path | None = None, repeats: int = 1, retry_errors: bool = False,
    dry_run: bool = False, offline: bool = False, cache_path: str | Path | None = None,
    image_max_side: int | None = None, image_format: str | None = None,
    params: GenerationParams | None = None, progress: bool | None = None, no_image: bool = False,
    workers: int = 1, shard: str | None = None,
) -> RunInfo | CostEstimate:
    """Evaluate a model on a benchmark split; returns the run's :class:`RunInfo` (a :class:`CostEstimate` when
    ``dry_run``, which calls nothing and writes nothing). ``RunInfo.n_failed`` counts every item and repeat of
    the selection without an ok sample (failed, or not run because of ``retry_errors``). ``workers`` > 1 answers
    it in that many processes (:mod:`.workers`; started by multiprocessing's spawn, so a script calling this needs
    the ``if __name__ == "__main__":`` guard); ``shard`` ("K/N") answers only the K-th of N wafer-grouped parts of
    the selection (:mod:`.shards`). Raises :class:`EvalUsageError`,
    :class:`~wafersage.models.config.ModelConfigError` or :class:`~wafersage.tasks.bench.folder.BenchmarkError`
    for bad input."""
    _validate_options(split, limit, concurrency, repeats, shard)
    bench = Benchmark.load(bench_dir)
    config = resolve_config(model_spec, offline, image_max_side, image_format, no_image)
    if (problem := check_workers(workers, config)) is not None:
        raise EvalUsageError(problem)
    params = params or GenerationParams()
    items = bench.items(split)[:limit] if limit else bench.items(split)
    if not items:
        raise EvalUsageError(f"{bench.root}: split {split!r} has no items; pick another with --split")
    shard_info = None
    if shard is not None:
        items, shard_info = shard_items(items, shard)
        if not items:
            raise EvalUsageError(f"--shard {shard}: the selection has fewer wafers than shards, so this one is "
                                 "empty; use fewer shards")
    if dry_run:  # the backend's options with their defaults tell what it would send; the model is not built
        units = make_units(items, bench, repeats, params, backend_options(config).sent_image, config.system_prompt,
                           with_image=not config.no_image)
        return estimate_cost(config, [u.sent for u in units], [u.item for u in units])

    folder = Path(out_dir) if out_dir else default_out_dir(bench, config)
    plan = RunPlan(bench=bench, config=config, params=params, split=split, items=items, repeats=repeats,
                   fingerprint=request_fingerprint(config, params, bench.hash, split), shard=shard_info)
    with folder_lock(folder):  # one process per run folder, for the run's life
        return _run_in_folder(folder, plan, retry_errors=retry_errors, concurrency=concurrency,
                              cache_path=cache_path, progress=progress, workers=workers)


@dataclass
class RunPlan:
    """What a run asks: the benchmark items and repeats, and everything that shapes their requests."""

    bench: Benchmark
    config: ModelConfig
    params: GenerationParams
    split: str
    items: list[VQAItem]
    repeats: int
    fingerprint: Fingerprint
    shard: ShardInfo | None = None


def _run_in_folder(folder: Path, plan: RunPlan, *, retry_errors: bool, concurrency: int,
                   cache_path: str | Path | None, progress: bool | None, workers: int) -> RunInfo:
    """The run itself, inside the folder's lock: check the folder, answer what is still to do, record it."""
    bench, config, items, repeats = plan.bench, plan.config, plan.items, plan.repeats
    earlier = check_resume(folder, plan.fingerprint, bench, plan.split, plan.shard)
    merge_shards(folder)  # what the workers of an interrupted run answered
    samples_path = folder / SAMPLES
    previous = final_samples(read_samples(samples_path)[0])
    keys = [(item.id, r) for item in items for r in range(repeats)]
    todo = {k for k in keys if _needs_run(previous.get(k), retry_errors)}
    # built before anything is written, so a config error (missing key, offline refusal) leaves no folder behind
    model = load_model(config) if todo else None
    rewrite_samples(samples_path, list(previous.values()))  # drops a torn last line and superseded samples

    deployment = model.deployment if model is not None else earlier.deployment if earlier else "unknown"
    info = RunInfo(
        model=config.public(), model_name=config.name, deployment=deployment,
        bench_dir=str(bench.root.resolve()), bench_name=bench.name, bench_version=bench.version,
        bench_hash=bench.hash, split=plan.split, n_items=len(items), item_ids=[item.id for item in items],
        repeats=repeats, packages=package_versions(PACKAGES),
        git_commit=git_commit(), started_at=earlier.started_at if earlier else now_iso(), offline=config.offline,
        fingerprint=plan.fingerprint, shard=plan.shard,
    )
    write_run_info(folder, info)
    if model is not None and workers > 1:
        jobs = shard_jobs(folder, bench, plan.split, repeats, [k for k in keys if k in todo], config, plan.params,
                          Path(cache_path or default_cache_path(folder)), concurrency, workers)
        try:
            run_shards(jobs, progress, config.name)
        finally:
            merge_shards(folder)
    elif model is not None:
        cache = ResponseCache(cache_path or default_cache_path(folder))
        writer = SampleWriter(samples_path, before_sync=cache.commit_staged)
        try:
            asyncio.run(execute(model, items, repeats, todo, bench, config, plan.params, cache, writer,
                                concurrency, progress))
        finally:
            writer.close()
            cache.close()
    written, torn = read_samples(samples_path)
    final = final_samples(written)
    if torn or len(final) < len(written):  # only superseded samples or a torn line make a rewrite worth it
        rewrite_samples(samples_path, list(final.values()))
    info.n_ok = sum(final[k].ok for k in keys if k in final)
    info.n_failed = len(keys) - info.n_ok
    info.finished_at = now_iso()
    write_run_info(folder, info)
    return info


def _needs_run(previous: Sample | None, retry_errors: bool) -> bool:
    if retry_errors:
        return previous is not None and not previous.ok
    return previous is None or not previous.ok
