"""``wafersage maps import``: read a real dataset and write it as the project's map store."""
from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import click
from tqdm import tqdm

from ..store import INDEX, write_store
from ..wafer import WaferMap, WaferMapError
from . import FORMATS, read_maps


class _UntilError:
    """Passes maps through until the source fails, then ends cleanly so the store keeps every map read so far;
    the failure is kept in :attr:`error`. Counts labels on the way."""

    def __init__(self, maps: Iterable[WaferMap]) -> None:
        self.maps = maps
        self.error: WaferMapError | None = None
        self.labels: Counter[str] = Counter()

    def __iter__(self) -> Iterator[WaferMap]:
        try:
            for wafer in self.maps:
                self.labels[wafer.label_text] += 1
                yield wafer
        except WaferMapError as exc:
            self.error = exc


def _prepare(out: Path, force: bool) -> None:
    if not (out / INDEX).exists():
        return
    if not force:
        raise click.ClickException(
            f"{out} already holds a map store ({INDEX}); choose another --out or pass --force to replace it"
        )
    for old in [out / INDEX, *out.glob("shard-*.npz")]:
        old.unlink()


@click.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="lswmd: WM-811K LSWMD.pkl; mixedwm38: Wafer_Map_Datasets.npz; images: folder with labels.csv.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the map store (index.jsonl + .npz shards).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Import only the first N maps.")
@click.option("--shard-size", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Maps per .npz shard.")
@click.option("--force", is_flag=True, help="Replace a map store already in --out.")
def import_maps(source: Path, fmt: str, out: Path, limit: int | None, shard_size: int, force: bool) -> None:
    """Import real wafer maps from SOURCE into a map store.

    If the source fails part-way (a bad row), the maps read before it are kept in --out and the error names the
    file and the row.
    """
    _prepare(out, force)
    try:
        maps = read_maps(source, fmt)
    except WaferMapError as exc:
        raise click.ClickException(str(exc)) from None
    guarded = _UntilError(itertools.islice(maps, limit))
    progress = tqdm(guarded, desc=f"import {source.name}", unit=" maps", total=limit, disable=None)
    count = write_store(progress, out, shard_size=shard_size)
    if guarded.error is not None:
        if count == 0:
            (out / INDEX).unlink(missing_ok=True)
            raise click.ClickException(str(guarded.error))
        raise click.ClickException(
            f"{guarded.error}\nThe {count} maps read before this error are saved in {out}; fix the source and re-run "
            f"with --force to import all of it."
        )
    summary = ", ".join(f"{label} {n}" for label, n in sorted(guarded.labels.items()))
    click.echo(f"imported {count} maps from {source} into {out} ({summary or 'no maps'})")
