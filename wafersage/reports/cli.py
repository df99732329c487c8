"""``wafersage report`` (HTML leaderboard and exports) and ``wafersage compare`` (the regression gate).

Exit codes of ``compare``: 0 no regression, 1 the candidate is worse beyond the allowed drop with confidence,
2 the runs cannot be compared (other benchmark, split, judges or calibration; judge coverage below the threshold
with ``--on-low-coverage refuse``) or an input is unusable.
"""
from __future__ import annotations

from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..harness.agreement.measure import agreement
from ..harness.agreement.panel import PanelError, load_panel
from ..harness.agreement.scoring import rule_rows
from ..harness.scoring.calibrate import CalibrationError, load_calibration
from ..harness.scoring.judging.judges import CoverageSettings
from ..harness.scoring.stats import format_estimate
from . import compare as gate
from .tables import to_csv, to_json, to_markdown, write_text
from .html import render_html
from .judges import load_judge_checks
from .leaderboard import Leaderboard, build_leaderboard
from .results import NotComparable, ReportInputError, load_result, load_results

_RUN = click.Path(exists=True, file_okay=False, path_type=Path)
_FILE = click.Path(dir_okay=False, path_type=Path)


def coverage_options(command):
    """``--min-judge-coverage`` and ``--on-low-coverage`` (help texts from :class:`CoverageSettings`)."""
    fields = CoverageSettings.model_fields
    command = click.option("--on-low-coverage", "on_low", type=click.Choice(["flag", "refuse"]),
                           default=CoverageSettings().on_low, show_default=True,
                           help=fields["on_low"].description)(command)
    return click.option("--min-judge-coverage", "min_coverage", type=click.FloatRange(0, 1),
                        default=CoverageSettings().min_coverage, show_default=True,
                        help=fields["min_coverage"].description)(command)


def leaderboard_table(board: Leaderboard) -> Table:
    """The leaderboard as a compact rich table for the terminal (the HTML page has every column)."""
    paid = any(row.cost_per_1000_questions for row in board.rows)
    judged = board.score_kind == "judge"
    paired = (f"judge-ranked on the {board.n_common} answers every model has a judge score for; judged: share of a "
              "model's answers the judge scored (unscored count)\n") if judged else ""
    table = Table(title=escape(f"{board.bench_name} v{board.bench_version} ({board.split}): {board.score_label}"),
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False,
                  caption=paired + "type: defect-type accuracy; fail: failed calls and missing answers; ≈ tied with "
                          "the row above" + "".join(f"\n⚠ {escape(w)}" for w in board.warnings))
    table.add_column("#", justify="right", no_wrap=True, min_width=2)
    table.add_column("model", no_wrap=True, max_width=24)
    table.add_column("kind", no_wrap=True)
    table.add_column("score (95% CI)", justify="right", no_wrap=True)
    if judged:
        table.add_column("judged", justify="right", no_wrap=True, min_width=8)
    for d in board.dimensions:
        table.add_column({"spatial": "spat.", "root_cause": "cause", "morphology": "morph."}.get(d, d),
                         justify="right", no_wrap=True)
    blind = any(row.blind for row in board.rows)
    for name in (*(("blind", "gain") if blind else ()), "type", *(("USD/1kQ",) if paid else ()), "fail"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in board.rows:
        accuracy = f"{100 * row.type_accuracy.value:.0f}%" if row.type_accuracy else "–"
        dims = [f"{row.dimensions[d].value:.1f}" if row.dimensions.get(d) else "–" for d in board.dimensions]
        cost = (f"{row.cost_per_1000_questions:.2f}",) if paid else ()
        model = escape(row.model) + (" ⚠" if row.flags else "")
        gains = ((f"{row.blind.value:.1f}" if row.blind else "n/a",
                  f"{row.vision_gain.mean_difference:+.1f}" if row.vision_gain else "n/a") if blind else ())
        coverage = (f"{100 * row.judge_coverage:.0f}% ({row.n_unscored})" if row.judge_coverage is not None
                    else "–",) if judged else ()
        table.add_row(f"{row.rank}{'≈' if row.tied_with_above else ''}", model, row.deployment,
                      format_estimate(row.overall, ci=" ({low}–{high})", ci_digits=1), *coverage, *dims, *gains,
                      accuracy,
                      *cost, str(row.n_failed))
    return table


def write_report(runs: list[Path], out: Path, *, csv_path: Path | None = None, json_path: Path | None = None,
                 markdown_path: Path | None = None, calibration_path: Path | None = None, alpha: float = 0.05,
                 max_samples: int = 500, panel_path: Path | None = None, coverage: CoverageSettings | None = None,
                 judge_agreement: tuple[Path, ...] = ()) -> Leaderboard:
    """Load, rank and write the HTML leaderboard and the exports asked for; returns the leaderboard."""
    results = load_results(runs)
    board = build_leaderboard(results, alpha=alpha, coverage=coverage)
    board.judge_checks = load_judge_checks(judge_agreement, results)
    calibration = load_calibration(calibration_path) if calibration_path else None
    if calibration is not None and calibration.id != board.calibration_id:
        raise ReportInputError(f"{calibration_path}: calibration {calibration.id} is not the one the runs were scored "
                               f"with ({board.calibration_id or 'none'}); pass the file given to 'wafersage score'")
    panel = None
    if panel_path is not None:
        panel = (panel_path.name, agreement(rule_rows(load_panel(panel_path))))
    write_text(out, render_html(board, results, calibration=calibration, max_samples=max_samples, panel=panel))
    for path, text in ((csv_path, to_csv), (json_path, to_json), (markdown_path, to_markdown)):
        if path is not None:
            write_text(path, text(board))
    return board


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=_RUN)
@click.option("--out", type=_FILE, default=Path("leaderboard.html"), show_default=True, help="HTML file to write")
@click.option("--csv", "csv_path", type=_FILE, default=None, help="also write the leaderboard as CSV")
@click.option("--json", "json_path", type=_FILE, default=None, help="also write the leaderboard as JSON")
@click.option("--markdown", "markdown_path", type=_FILE, default=None, help="also write a Markdown table")
@click.option("--calibration", "calibration_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="the calibration.json the runs were scored with, to show its statistics")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="significance level of the paired tests that mark ties between adjacent ranks")
@click.option("--max-samples", type=click.IntRange(min=0), default=500, show_default=True,
              help="items in the page's sample browser (first in benchmark order)")
@click.option("--panel", "panel_path", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="a graded panel: show how the rule score agrees with its reference grades")
@click.option("--judge-agreement", "judge_agreement", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a 'wafersage agreement --judge NAME --json F' file: show that judge's agreement with a graded "
                   "panel beside it (refused for a judge the runs did not use); repeat for several judges")
@coverage_options
def report(runs: tuple[Path, ...], out: Path, csv_path: Path | None, json_path: Path | None,
           markdown_path: Path | None, calibration_path: Path | None, alpha: float, max_samples: int,
           panel_path: Path | None, judge_agreement: tuple[Path, ...], min_coverage: float, on_low: str) -> None:
    """Write a self-contained HTML leaderboard of scored RUNS (folders scored by 'wafersage score')."""
    try:
        board = write_report(list(runs), out, csv_path=csv_path, json_path=json_path, markdown_path=markdown_path,
                             calibration_path=calibration_path, alpha=alpha, max_samples=max_samples,
                             panel_path=panel_path, coverage=CoverageSettings(min_coverage=min_coverage, on_low=on_low),
                             judge_agreement=judge_agreement)
    except (ReportInputError, NotComparable, CalibrationError, PanelError) as exc:
        raise click.ClickException(str(exc)) from None
    console = Console()
    console.print(leaderboard_table(board))
    written = [p for p in (out, csv_path, json_path, markdown_path) if p is not None]
    console.print("wrote " + ", ".join(str(p) for p in written))


@click.command("compare")
@click.argument("base", type=_RUN)
@click.argument("candidate", type=_RUN)
@click.option("--max-drop", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="allowed drop in points (0-10 scale) before the gate fails")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="family-wise error rate of the gate: the chance that a candidate as good as the base fails "
                   "(one-sided paired tests per metric, Holm-adjusted)")
@click.option("--junit", "junit_path", type=_FILE, default=None, help="write JUnit XML (one test per metric)")
@click.option("--markdown", "markdown_path", type=_FILE, default=None, help="write the comparison as Markdown")
@coverage_options
def compare(base: Path, candidate: Path, max_drop: float, alpha: float, junit_path: Path | None,
            markdown_path: Path | None, min_coverage: float, on_low: str) -> None:
    """Gate CANDIDATE against BASE (scored run folders): exit 1 when it is worse beyond --max-drop with confidence."""
    console, errors = Console(), Console(stderr=True)
    try:
        result = gate.compare_runs(load_result(base), load_result(candidate), max_drop=max_drop, alpha=alpha,
                                   coverage=CoverageSettings(min_coverage=min_coverage, on_low=on_low))
    except (ReportInputError, NotComparable) as exc:
        errors.print(f"[bold red]refused:[/] {escape(str(exc))}", highlight=False)
        raise SystemExit(2) from None
    for warning in result.warnings:
        errors.print(f"[bold yellow]⚠ {escape(warning)}[/]", highlight=False)
    table = Table(title=escape(f"{result.candidate} vs {result.base}: {result.score_label}"))
    for i, name in enumerate(gate.HEADER):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in gate.table_rows(result):
        table.add_row(*map(escape, row), style="red" if row[-1] == "REGRESSED" else None)
    console.print(table)
    if note := gate.coverage_note(result):
        console.print(note.strip(), highlight=False)
    if result.accuracy:
        accuracy = Table(title="right/wrong items: exact McNemar test (Holm over these; reported, not gated)")
        for i, name in enumerate(gate.ACCURACY_HEADER):
            accuracy.add_column(name, justify="left" if i in (0, len(gate.ACCURACY_HEADER) - 1) else "right")
        for row in gate.accuracy_rows(result):
            accuracy.add_row(*map(escape, row), style="red" if row[-1] == "candidate worse" else None)
        console.print(accuracy)
    if markdown_path is not None:
        write_text(markdown_path, gate.to_markdown(result))
    if junit_path is not None:
        write_text(junit_path, gate.to_junit(result))
    console.print(escape(gate.verdict(result)), style="bold red" if result.regressed else "bold green", highlight=False)
    raise SystemExit(1 if result.regressed else 0)
