"""``wafersage score``, ``wafersage merge`` (shards, and their scores when scored alike) and the run-folder half of
``wafersage calibrate`` (the command lives in :mod:`wafersage.harness.agreement.cli`, which adds graded panels).

Exit codes of ``score``: 0 scored; 1 scored, but the judge scored less than ``--min-judge-coverage`` of the answers
(the files are written; ``--retry-unscored`` re-asks the rest), or an input is unusable; 2 usage errors."""
from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tqdm import tqdm

from ...models.config import ModelConfigError
from ...tasks.bench.folder import BenchmarkError
from .answers import scored_answer
from .calibrate import (Calibration, CalibrationConfig, CalibrationError, FeatureTable, calibrate as fit,
                        load_calibration)
from .judging.judge import JudgeSettings
from .judging.judges import CoverageSettings, JudgePanel, JudgePanelSettings, load_judges
from .rules import RuleScorer
from ..run.folder import RunFolderError, load_run
from ..run.runner import default_cache_path
from ..run.shards import MergeError, merge_runs
from .carry import carry_scores
from .score_run import IncompleteRunWarning, ScoringError, Summary, load_bench_for, score_run
from .stats import format_estimate

_ERRORS = (BenchmarkError, CalibrationError, ModelConfigError, RunFolderError, ScoringError)


def _help(settings: type, field: str) -> str:
    """An option's help: the settings field's description (one text for the code, the CLI and the docs)."""
    return settings.model_fields[field].description


def _fmt(estimate) -> str:
    """The terminal summary's style: ``0.52 [0.41, 0.63]``, ``-`` for none."""
    return format_estimate(estimate, missing="-")


def _print_summary(summary: Summary, folder: Path) -> None:
    table = Table(title=f"{summary.model} on {summary.bench_name} v{summary.bench_version} ({summary.split})")
    table.add_column("measure")
    table.add_column("value (95% CI)")
    rows = [("rule score 0-10 (failures as 0)", _fmt(summary.rule)),
            ("rule score, answered only", _fmt(summary.rule_answered)),
            ("rule score, default constants", _fmt(summary.rule_default)),
            ("judge score 0-10", _fmt(summary.judge)),
            ("defect-type accuracy", _fmt(summary.type_accuracy)),
            ("consistency accuracy", _fmt(summary.consistency_accuracy)),
            *((f"  {d}", _fmt(e)) for d, e in summary.per_dimension.items()),
            ("items / failed (of which missing) / judge unscored",
             f"{summary.n_items} / {summary.n_failed} ({summary.n_missing}) / "
             f"{'-' if summary.n_judge_unscored is None else summary.n_judge_unscored}")]
    if summary.judge_coverage is not None:
        rows.append(("judge coverage (answers with a judge score)", f"{100 * summary.judge_coverage:.1f}%"))
    if summary.judge_spread_mean is not None:
        rows.append(("judge spread (SD over samples) / flip rate",
                     f"{summary.judge_spread_mean:.2f} / {summary.judge_flip_rate:.2f}"))
    if (agreement := summary.judge_agreement) is not None:
        rows += [(f"  judge {name}", _fmt(mean)) for name, mean in agreement.means.items()]
        rows += [("judges' Krippendorff's alpha (interval)", _fmt(agreement.alpha)),
                 (f"answers the judges disagree on (> {agreement.disagreement:g} points)", str(agreement.n_flagged))]
    for name, value in rows:
        table.add_row(name, value)
    console = Console()
    console.print(table)
    console.print(f"wrote {folder / 'scores.jsonl'} and {folder / 'summary.json'}")


@click.command("score")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--judge", "judge_specs", multiple=True,
              help="LLM judge: a registered model name, YAML file or hf:PATH; repeat for several judges (an answer "
                   "is judge-scored when every judge scored it)")
@click.option("--calibration", type=click.Path(path_type=Path), default=None,
              help="calibration.json from 'wafersage calibrate'; item scores then use its constants")
@click.option("--judge-samples", type=click.IntRange(1, 20), default=1, show_default=True,
              help="judgements per item and judge (>1 reports spread and flip rate)")
@click.option("--judge-sample-temperature", type=click.FloatRange(0, 2, min_open=True),
              default=JudgeSettings().sample_temperature, show_default=True,
              help=_help(JudgeSettings, "sample_temperature"))
@click.option("--judge-json-schema/--no-judge-json-schema", default=False, show_default=True,
              help="ask the judge endpoint for response_format json_schema (where supported)")
@click.option("--judge-combine", type=click.Choice(["mean", "median"]), default=JudgePanelSettings().combine,
              show_default=True, help=_help(JudgePanelSettings, "combine"))
@click.option("--judge-disagreement", type=click.FloatRange(0, 10), default=JudgePanelSettings().disagreement,
              show_default=True, help=_help(JudgePanelSettings, "disagreement"))
@click.option("--min-judge-coverage", type=click.FloatRange(0, 1), default=CoverageSettings().min_coverage,
              show_default=True, help=_help(CoverageSettings, "min_coverage"))
@click.option("--retry-unscored", is_flag=True, default=False,
              help="keep the judge verdicts of this folder's last scoring and ask the same judges again only for "
                   "the answers they left unscored")
@click.option("--cache", "cache_path", type=click.Path(path_type=Path), default=None,
              help="judge response cache (default: next to the run folder)")
def score(run: Path, judge_specs: tuple[str, ...], calibration: Path | None, judge_samples: int,
          judge_sample_temperature: float, judge_json_schema: bool, judge_combine: str, judge_disagreement: float,
          min_judge_coverage: float, retry_unscored: bool, cache_path: Path | None) -> None:
    """Score a run folder: rule metrics (and LLM judges) -> RUN/scores.jsonl and RUN/summary.json."""
    if retry_unscored and not judge_specs:
        raise click.UsageError("--retry-unscored re-asks the judges: give the same --judge options as before")
    try:
        calib = load_calibration(calibration) if calibration else None
        judge = load_judges(
            judge_specs, JudgeSettings(samples=judge_samples, sample_temperature=judge_sample_temperature,
                                       json_schema=judge_json_schema),
            JudgePanelSettings(combine=judge_combine, disagreement=judge_disagreement),
            cache_path or default_cache_path(run)) if judge_specs else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IncompleteRunWarning)  # said below, in words, with the fix
            summary = score_run(run, judge=judge, calibration=calib, calibration_path=str(calibration),
                                retry_unscored=retry_unscored)
    except _ERRORS as exc:
        raise click.ClickException(str(exc)) from None
    _print_summary(summary, run)
    errors = Console(stderr=True)
    if summary.n_missing:
        errors.print(
            f"[bold yellow]warning:[/] incomplete run: {summary.n_missing} of {summary.n_expected} expected answers "
            f"are missing and count as failed (0). Rerun the same 'wafersage eval' command on {run} to finish it, "
            "then score again.", highlight=False)
    if summary.n_extra:
        errors.print(
            f"note: {summary.n_extra} answers in {run} lie outside the run's selection (an earlier 'wafersage eval' "
            "with a larger --limit or more --repeats); they are kept but not scored.", highlight=False)
    if judge is not None and CoverageSettings(min_coverage=min_judge_coverage).low(summary.judge_coverage):
        errors.print(low_coverage_message(summary, judge_specs, run, min_judge_coverage), highlight=False)
        raise SystemExit(1)


def low_coverage_message(summary: Summary, judge_specs: tuple[str, ...], run: Path, threshold: float) -> str:
    """Why ``score`` fails below the coverage threshold, the commonest reasons and the command that re-asks."""
    reasons = "; ".join(f"{n}x {escape(reason)}" for reason, n in summary.judge_unscored_reasons.items())
    again = " ".join(f"--judge {spec}" for spec in judge_specs)
    return (f"[bold red]judge coverage too low:[/] the judge scored {100 * summary.judge_coverage:.1f}% of the "
            f"answers ({summary.n_judge_unscored} unscored; {reasons}), below --min-judge-coverage "
            f"{100 * threshold:.0f}%. Its score would rank this run on other items than complete runs. Re-ask the "
            f"unscored answers: 'wafersage score {run} {again} --retry-unscored' (same judge options), or lower "
            "--min-judge-coverage knowingly.")


async def _judge_all(judge: JudgePanel, triples, progress):
    try:
        return [verdict for verdict, _ in await judge.grade(triples, progress=progress)]
    finally:
        await judge.aclose()


def calibrate_runs(runs: tuple[Path, ...], judge_spec: str, config: CalibrationConfig, judge_samples: int = 1,
                   cache_path: Path | None = None) -> tuple[Calibration, int]:
    """Judge every answered sample of ``runs`` and fit the constants to the grades: (calibration, n unscored)."""
    judge = load_judges([judge_spec], JudgeSettings(samples=judge_samples),
                        cache_path=cache_path or default_cache_path(runs[0]))
    triples, answered, scorers, bench_hash = [], [], {}, None
    for folder in runs:
        run = load_run(folder)
        bench = load_bench_for(run)
        if bench_hash not in (None, bench.hash):
            raise CalibrationError(f"{folder}: made on another benchmark than {runs[0]}; calibrate per benchmark")
        bench_hash = bench.hash
        scorers.setdefault(bench.hash, RuleScorer.for_benchmark(bench))
        items = {it.id: it for it in bench.all_items}
        for sample in run.samples:
            if sample.ok and sample.item_id in items:
                item = items[sample.item_id]
                triples.append((item, bench.rubrics[sample.wafer_id], scored_answer(sample.response.text)))
                answered.append(sample.wafer_id)
    with tqdm(total=len(triples), desc="judging", unit="item") as bar:
        verdicts = asyncio.run(_judge_all(judge, triples, bar.update))  # one event loop: one HTTP client
    scorer = scorers[bench_hash]
    kept = [(item, answer, wafer, verdict.score) for (item, _, answer), wafer, verdict
            in zip(triples, answered, verdicts) if verdict.status == "scored"]
    features = [scorer.features(item, answer) for item, answer, _, _ in kept]
    result = fit(FeatureTable(features), np.array([score for *_, score in kept]), [w for _, _, w, _ in kept],
                 judge_identity=judge.identity, bench_hash=bench_hash, runs=[str(r) for r in runs], config=config)
    return result, len(triples) - len(kept)


def print_calibration(result: Calibration, out: Path, note: str = "") -> None:
    """The calibration's agreement table (defaults, in-fold, out-of-fold, upper reference) and its constants."""
    table = Table(title=f"calibration {result.id} on {result.n_items} items / {result.n_wafers} wafers{note}, "
                        f"{result.seconds:.1f} s")
    for column in ("vs reference", "Spearman", "Kendall", "Pearson", "MAE"):
        table.add_column(column)
    rows = (("default constants", result.defaults), ("calibrated, in-fold", result.in_fold),
            ("calibrated, out-of-fold", result.out_of_fold), ("upper reference (GBM)", result.upper_reference))
    for name, stats in rows:
        table.add_row(name, _fmt(stats.spearman), _fmt(stats.kendall), _fmt(stats.pearson), _fmt(stats.mae))
    console = Console()
    console.print(table)
    console.print(f"constants: {result.constants.model_dump()}")
    console.print(f"wrote {out}")


@click.command("merge")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="run folder to write (new or empty); score, report and compare it like any run")
@click.option("--bench", "bench_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="the benchmark folder on this machine [default: the one the first shard recorded]")
@click.pass_context
def merge_cmd(ctx: click.Context, runs: tuple[Path, ...], out_dir: Path, bench_dir: Path | None) -> None:
    """Merge the run folders of 'wafersage eval --shard K/N' into one run folder.

    They must share benchmark, split, model config, system prompt, sampling settings and repeats, and cover every
    item of the selection exactly once (items in no shard or in two are named). Shards scored alike (same scorer,
    calibration and judge) bring their scores along; otherwise score the merged folder."""
    try:
        result = merge_runs(runs, out_dir, bench_dir)
        scored = carry_scores(runs, out_dir)
    except (*_ERRORS, MergeError) as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(2)
    info = result.info
    click.echo(f"merged {len(runs)} shards of {info.model_name} on {info.bench_name} ({info.split}): "
               f"{info.n_items} items, {info.n_ok} ok, {info.n_failed} failed -> {out_dir}")
    if result.missing:
        keys = ", ".join(f"{item}#{repeat}" if repeat else item for item, repeat in result.missing[:5])
        click.echo(f"  {len(result.missing)} answers are missing (interrupted shards: {keys}"
                   f"{', ...' if len(result.missing) > 5 else ''}); 'wafersage score' counts them as failed, and "
                   f"'wafersage eval' with the same settings and --out {out_dir} answers them", err=True)
    if isinstance(scored, Summary):
        click.echo(f"  the shards' scores carried over (rule {_fmt(scored.rule)}): report or compare {out_dir}")
    else:
        click.echo(f"  not scored ({scored}); next: wafersage score {out_dir}")
