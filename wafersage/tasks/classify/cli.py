"""``wafersage validate-real``: the geometry path (and optionally the specialist) vs real labels.

``wafersage synth`` lives in :mod:`wafersage.harness.synth_cli`, since it may load models.
"""
from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table


@click.command("validate-real")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", required=True, help="Reader format: lswmd, mixedwm38 or images.")
@click.option("--limit", type=int, default=None, help="Read at most this many maps.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the table as JSON here.")
@click.option("--specialist", "specialist_bench", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Add a column for the specialist baseline's classifier, trained on this "
                                 "benchmark's train split (cached beside it).")
def validate_real(source: Path, fmt: str, limit: int | None, out_file: Path | None,
                  specialist_bench: Path | None) -> None:
    """Infer defect types of real labelled maps from geometry alone (labels hidden) and compare with the labels."""
    from itertools import islice

    from ..bench.folder import BenchmarkError
    from ..maps.readers import read_maps
    from .classifier import ClassifierError, classifier_for_benchmark
    from .validate_real import geometry_rules, validate
    from ..maps.wafer import WaferMapError

    try:
        predictors = None
        if specialist_bench is not None:
            predictors = {"geometry": geometry_rules, "specialist": classifier_for_benchmark(specialist_bench).predict}
        maps = read_maps(source, fmt)
        table = validate(islice(maps, limit) if limit else maps, source=str(source), format=fmt,
                         predictors=predictors)
    except (WaferMapError, BenchmarkError, ClassifierError) as exc:
        raise click.ClickException(str(exc)) from exc
    if table.overall.n == 0:
        raise click.ClickException(f"{source}: no labelled maps to validate against ({table.skipped_unlabeled} "
                                   "unlabeled); validate-real needs labels")
    view = Table(title=f"Defect types from geometry vs real labels — {source} ({fmt})")
    view.add_column("class", overflow="fold")
    view.add_column("n", justify="right")
    for name in table.predictors:
        view.add_column(f"{name}: exact", justify="right")
        view.add_column(f"{name}: label contained", justify="right")
    for row in table.rows:
        cells = [f"{s.exact_rate:.0%} ({s.exact})" for s in row.scores.values()]
        contained = [f"{s.contained_rate:.0%} ({s.contained})" for s in row.scores.values()]
        view.add_row(row.label, str(row.n), *[c for pair in zip(cells, contained) for c in pair],
                     style="bold" if row is table.overall else None)
    Console().print(view)
    if table.skipped_unlabeled:
        click.echo(f"skipped {table.skipped_unlabeled} unlabeled maps")
    if out_file:
        out_file.write_text(json.dumps(table.model_dump(mode="json"), indent=1) + "\n", encoding="utf-8")
        click.echo(f"wrote {out_file}")
