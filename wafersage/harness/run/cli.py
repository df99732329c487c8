"""``wafersage eval``: run a model over a benchmark split into a resumable run folder.

Exit codes: 0 when every item ended ok, 1 when any item is recorded failed (the folder still holds everything;
rerun the command, or add ``--retry-errors``, to retry them), 2 for usage and config errors.
"""
from __future__ import annotations

from pathlib import Path

import click

from ...models.config import ModelConfigError
from ...tasks.bench.folder import Benchmark, BenchmarkError
from .estimate import CostEstimate
from .records import RunInfo
from .folder import RunFolderError, load_run
from .runner import EvalUsageError, default_out_dir, resolve_config, run_eval
from .vendor import VendorError, export_questions, import_answers

USAGE_ERRORS = (EvalUsageError, ModelConfigError, BenchmarkError, RunFolderError)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} s" if value >= 0.1 else f"{value * 1000:.2f} ms"


def _dollars(value: float | None) -> str:
    return "unknown (no price_per_million in the model config)" if value is None else f"${value:.4f}"


def print_estimate(estimate: CostEstimate) -> None:
    click.echo(f"dry run for {estimate.model_name}: {estimate.n_requests} requests, nothing was called")
    click.echo(f"  input tokens   ~{estimate.input_tokens:,} ({estimate.text_tokens:,} text + "
               f"{estimate.image_tokens:,} image; {estimate.image_token_rule})")
    click.echo(f"  output tokens  ~{estimate.output_tokens:,} expected, at most {estimate.output_tokens_max:,}")
    click.echo(f"  cost           ~{_dollars(estimate.cost_usd)} expected, at most {_dollars(estimate.cost_usd_max)}")


def print_summary(info: RunInfo, folder: Path) -> None:
    summary = load_run(folder).summary()
    shard = f", shard {info.shard.spec}" if info.shard else ""
    click.echo(f"{info.model_name} on {info.bench_name} ({info.split}{shard}): "
               f"{info.n_ok} ok, {info.n_failed} failed of {info.n_items * info.repeats}")
    click.echo(f"  tokens         {summary.input_tokens:,} in, {summary.output_tokens:,} out "
               f"({summary.n_cached} answers from the cache)")
    click.echo(f"  cost           {_dollars(summary.cost_usd)}")
    click.echo(f"  latency        p50 {_seconds(summary.latency_p50_s)}, p95 {_seconds(summary.latency_p95_s)}")
    click.echo(f"  run folder     {folder}")
    if info.n_failed:
        click.echo("  some items failed (reasons in samples.jsonl); rerun the same command to retry them", err=True)


@click.command("eval")
@click.option("--bench", "bench_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="benchmark folder (made by 'wafersage synth')")
@click.option("--model", "model_spec", required=True,
              help="registered name (oracle, constant, random, configs/models/*.yaml), a YAML path, or hf:PATH")
@click.option("--split", default="test", show_default=True, help="train, val, test or all")
@click.option("--limit", type=int, default=None, help="only the first N items of the split")
@click.option("--concurrency", type=int, default=8, show_default=True,
              help="requests in flight (worker tasks); with several endpoints, at least their max_concurrency summed")
@click.option("--workers", type=int, default=1, show_default=True,
              help="processes answering the run, for when one process's CPU is the limit; each takes a share of "
                   "--concurrency and of the model's limits, and the result is one ordinary run folder")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="run folder [default: runs/<bench name>/<model name>]; rerunning on it resumes")
@click.option("--repeats", type=int, default=1, show_default=True, help="answers per item (sampling spread)")
@click.option("--retry-errors", is_flag=True, help="rerun only the items whose last answer failed")
@click.option("--dry-run", is_flag=True, help="estimate tokens and cost; call nothing, write nothing")
@click.option("--offline", is_flag=True, help="refuse every endpoint that is not on this machine (or allow_hosts)")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="response cache file [default: .wafersage-cache.sqlite next to the run folder]")
@click.option("--image-max-side", type=int, default=None, help="cap the long side of sent images (pixels)")
@click.option("--image-format", type=click.Choice(["png", "jpeg"]), default=None, help="encoding of sent images")
@click.option("--no-image", is_flag=True,
              help="send each question without the wafer image: a blind run, shown beside the model's own run on the "
                   "leaderboard with its vision gain [default folder: runs/<bench>/<model>-no-image]")
@click.option("--shard", default=None, metavar="K/N",
              help="answer only the K-th of N parts of the selection, cut by wafer (a node's share of a run split "
                   "across machines); put the parts together with 'wafersage merge'")
@click.option("--progress/--no-progress", default=None, help="progress bar [default: on a terminal]")
@click.pass_context
def eval_cmd(ctx: click.Context, bench_dir: Path, model_spec: str, out_dir: Path | None, **options) -> None:
    """Answer every item of a benchmark split with a model; writes samples.jsonl and run.json."""
    try:
        if out_dir is None and not options["dry_run"]:
            config = resolve_config(model_spec, options["offline"], options["image_max_side"], options["image_format"],
                                    options["no_image"])
            out_dir = default_out_dir(Benchmark.load(bench_dir, verify=False), config)
        result = run_eval(bench_dir, model_spec, out_dir=out_dir, **options)
    except USAGE_ERRORS as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(2)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; rerun the same command to resume ({out_dir})", err=True)
        ctx.exit(130)
    if isinstance(result, CostEstimate):
        print_estimate(result)
        return
    print_summary(result, out_dir)
    ctx.exit(1 if result.n_failed else 0)


@click.command("questions")
@click.option("--bench", "bench_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="benchmark folder (made by 'wafersage synth')")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="folder to write for the vendor (new or empty)")
@click.option("--split", default="test", show_default=True, help="train, val, test or all")
@click.pass_context
def export_questions_cmd(ctx: click.Context, bench_dir: Path, out_dir: Path, split: str) -> None:
    """Write a split's questions for a model run elsewhere: images, questions, system prompt, item ids and the
    benchmark hash; no reference answers, rubrics or facts. Read the answers back with 'wafersage import-answers'."""
    try:
        n_items = export_questions(bench_dir, out_dir, split)
    except (*USAGE_ERRORS, VendorError) as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(2)
    click.echo(f"wrote {n_items} questions to {out_dir} (send the folder; its README.md says what to send back)")


@click.command("import-answers")
@click.option("--bench", "bench_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="the benchmark folder the questions were exported from")
@click.option("--answers", "answers_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help='JSONL: {"bench_hash": ...} first, then {"item_id", "answer"[, "usage", "latency_s"]} per line')
@click.option("--name", required=True, help="the model's name on the leaderboard")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="run folder to write (new or empty); score, report and compare it like any run")
@click.option("--split", default="test", show_default=True, help="the split the questions were exported from")
@click.pass_context
def import_answers_cmd(ctx: click.Context, bench_dir: Path, answers_path: Path, name: str, out_dir: Path,
                       split: str) -> None:
    """Read answers produced elsewhere (from 'wafersage export questions') into a run folder marked imported."""
    try:
        info, missing = import_answers(bench_dir, answers_path, name, out_dir, split)
    except (*USAGE_ERRORS, VendorError) as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(2)
    click.echo(f"imported {info.n_ok} answers of {name} on {info.bench_name} ({info.split}) -> {out_dir}")
    if missing:
        click.echo(f"  {len(missing)} of {info.n_items} items have no answer and are recorded as missing: "
                   f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}", err=True)
    click.echo(f"  next: wafersage score {out_dir}")
