"""``wafersage agreement``: how the rule score (and optionally a judge) agrees with a graded panel."""
from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from .measure import AgreementReport, agreement, summary_json
from .panel import Panel, PanelError, load_panel
from .scoring import calibrate_panel, judge_rows, rule_rows


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _ci(ci: tuple[float | None, float | None]) -> str:
    return "" if ci[0] is None or ci[1] is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"


def report_table(report: AgreementReport, title: str, score_name: str = "rule") -> Table:
    """The agreement report as a terminal table: pooled, then one row per source."""
    table = Table(title=title)
    for column in ("answers", "n", "Spearman [95% CI]", "Kendall", "MAE",
                   f"{score_name} mean", "reference mean"):
        table.add_column(column, justify="left" if column == "answers" else "right")
    p = report.pooled
    table.add_row("pooled", str(p.n), _num(p.spearman) + _ci(p.spearman_ci), _num(p.kendall), _num(p.mae), "", "")
    for source, s in report.by_source.items():
        table.add_row(source, str(s.n), _num(s.spearman) + _ci(s.spearman_ci), _num(s.kendall), _num(s.mae),
                      _num(s.rule_mean), _num(s.judge_mean))
    table.caption = (f"source pairs whose reference difference is significant: {report.pairs}; ordered alike by "
                     f"the {score_name} score: {report.pairs_ordered_alike}; unscored answers: {report.n_unscored}")
    return table


def _wafer_range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    first, sep, last = text.partition("-")
    try:
        bounds = (int(first), int(last or first))
    except ValueError:
        raise click.BadParameter(f"{text!r}: give a wafer range like 1-6 (1-based, in items.jsonl order)") from None
    if bounds[0] < 1 or bounds[1] < bounds[0]:
        raise click.BadParameter(f"{text!r}: the range must start at 1 or later and not run backwards")
    return bounds


def _load(panel_dir: Path, wafers: str | None) -> Panel:
    panel = load_panel(panel_dir)
    bounds = _wafer_range(wafers)
    return panel.select_wafers(*bounds) if bounds else panel


@click.command("agreement")
@click.option("--panel", "panel_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="a graded panel folder (items.jsonl, answers.jsonl, maps.npz, labels.json, images/)")
@click.option("--judge", "judge_spec", default=None,
              help="also grade every answer with this LLM judge (a registered model or YAML) and compare it too")
@click.option("--wafers", default=None, help="only the panel's wafers in this range, e.g. 1-6 (items.jsonl order)")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the figures as JSON here")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="judge response cache (default: .wafersage-cache.sqlite next to the panel)")
def agreement_cmd(panel_dir: Path, judge_spec: str | None, wafers: str | None, json_out: Path | None,
                  cache_path: Path | None) -> None:
    """Score a graded panel's answers and measure agreement with its reference grades."""
    try:
        panel = _load(panel_dir, wafers)
    except PanelError as exc:
        raise click.ClickException(str(exc)) from None
    console = Console()
    where = f"{panel_dir}" + (f" wafers {wafers}" if wafers else "")
    result = {"rule": summary_json(rule := agreement(rule_rows(panel)))}
    console.print(report_table(rule, f"rule score vs reference grades: {where}"))
    if judge_spec:
        from ..scoring.judging.judges import load_judges
        cache = cache_path or panel_dir.parent / ".wafersage-cache.sqlite"
        [judge] = load_judges([judge_spec], cache_path=cache).judges
        with tqdm(total=len(panel.answers), desc="judging", unit="answer") as bar:
            judged = agreement(judge_rows(panel, judge, bar.update))
        result["judge"] = summary_json(judged) | {"judge": judge.identity}
        console.print(report_table(judged, f"judge {judge_spec} vs reference grades: {where}", "judge"))
    for name, rep in (("rule", rule),):
        if rep.n_unscored:
            names = ", ".join(f"{u['item_id']} ({u['source']}: {u['reason']})" for u in rep.unscored[:5])
            console.print(f"[yellow]{rep.n_unscored} answers the {name} scorer could not score:[/] {names}")
    if json_out:
        payload = {"panel": str(panel_dir), "wafers": wafers} | result["rule"] | (
            {"judge": result["judge"]} if judge_spec else {})
        json_out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")


@click.command("calibrate")
@click.option("--run", "runs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="run folder(s) to calibrate on (same benchmark), graded by --judge; repeat the option")
@click.option("--judge", "judge_spec", default=None, help="LLM judge for --run: a registered model name or YAML file")
@click.option("--panel", "panel_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="instead of runs and a judge: a graded panel, fitted to its reference grades")
@click.option("--wafers", default=None, help="with --panel: only its wafers in this range, e.g. 1-6")
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True, help="wafer-grouped CV folds")
@click.option("--iters", type=click.IntRange(0, 500), default=30, show_default=True,
              help="GP-guided Bayesian-optimisation steps")
@click.option("--screen", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="random points evaluated before the GP steps")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--judge-samples", type=click.IntRange(1, 20), default=1, show_default=True)
@click.option("--cache", "cache_path", type=click.Path(path_type=Path), default=None,
              help="judge response cache (default: next to the first run folder)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="calibration.json to write")
def calibrate_cmd(runs: tuple[Path, ...], judge_spec: str | None, panel_dir: Path | None, wafers: str | None,
                  folds: int, iters: int, screen: int, seed: int, judge_samples: int, cache_path: Path | None,
                  out: Path) -> None:
    """Fit the rule-score constants to a judge's grades of runs, or to a graded panel (Bayesian optimisation,
    wafer-grouped k-fold CV) -> calibration.json."""
    from ..scoring.calibrate import CalibrationConfig, CalibrationError, save_calibration
    from ..scoring.cli import _ERRORS, calibrate_runs, print_calibration

    if bool(panel_dir) == bool(runs or judge_spec):
        raise click.UsageError("give either --panel DIR, or --run RUN ... with --judge NAME")
    if runs and not judge_spec:
        raise click.UsageError("--run needs --judge NAME to grade the answers")
    config = CalibrationConfig(folds=folds, iters=iters, screen=screen, seed=seed)
    try:
        if panel_dir:
            result, unscored = calibrate_panel(_load(panel_dir, wafers), config), 0
            note = f" of panel {panel_dir}" + (f" (wafers {wafers})" if wafers else "")
        else:
            result, unscored = calibrate_runs(runs, judge_spec, config, judge_samples, cache_path)
            note = f" ({unscored} unscored by the judge)"
    except (PanelError, CalibrationError, *_ERRORS) as exc:
        raise click.ClickException(str(exc)) from None
    save_calibration(result, out)
    print_calibration(result, out, note)
