"""``wafersage maps generate`` and ``wafersage maps show``: make a store of procedural maps, look at any store."""
from __future__ import annotations

from itertools import islice
from pathlib import Path

import click
from tqdm import tqdm

from .maps.store import INDEX, read_store, write_store
from .maps.wafer import WaferMapError


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"52x52"`` -> ``(52, 52)``; ``None`` stays ``None`` (sizes drawn like WM-811K's)."""
    if text is None:
        return None
    try:
        rows, cols = (int(part) for part in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not ROWSxCOLUMNS, e.g. 52x52", param_hint="--size") from None
    if rows < 8 or cols < 8:
        raise click.BadParameter(f"{text!r} is too small; use at least 8x8", param_hint="--size")
    return rows, cols


def parse_patterns(text: str | None) -> list[str] | None:
    """``"Center,Edge-Loc"`` -> ``["Center", "Edge-Loc"]`` (any WM-811K spelling); ``None`` means all."""
    if text is None:
        return None
    from .maps.wafer import canonical_label

    try:
        return [canonical_label(part, record="--patterns") for part in text.split(",") if part.strip()]
    except WaferMapError as exc:
        raise click.BadParameter(str(exc), param_hint="--patterns") from None


def store_path(path: Path) -> Path:
    """The store inside ``path``: the folder itself or a benchmark folder's ``maps/``."""
    for candidate in (path, path / "maps"):
        if (candidate / INDEX).is_file():
            return candidate
    raise click.ClickException(
        f"{path}: no map store here (no {INDEX} in it or in {path / 'maps'}); "
        "make one with 'wafersage maps generate --out DIR' or 'wafersage maps import'")


@click.command()
@click.option("--n", "n", type=click.IntRange(min=1), default=100, show_default=True, help="Number of maps.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed; the same arguments give the same maps, byte for byte.")
@click.option("--patterns", default=None, metavar="LIST",
              help="Comma-separated labels to draw from (e.g. Center,Scratch,none); default all eight and none.")
@click.option("--size", default=None, metavar="HxW", help="Grid rows x columns for every map (default: drawn "
              "like WM-811K's sizes, 25x26 .. 60x60, and MixedWM38's 52x52).")
@click.option("--mixtures/--no-mixtures", default=True, show_default=True,
              help="Also draw MixedWM38's two-, three- and four-type mixtures of the chosen patterns.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Store folder.")
@click.option("--force", is_flag=True, help="Replace a store already in --out.")
def generate(n: int, seed: int, patterns: str | None, size: str | None, mixtures: bool, out: Path,
             force: bool) -> None:
    """Generate procedural wafer maps with ground truth into a map store (index.jsonl + .npz shards)."""
    from .generate.generator import generate_maps

    if (out / INDEX).exists() and not force:
        raise click.ClickException(f"{out}: a map store is already there; pass --force to replace it")
    for stale in out.glob("shard-*.npz") if out.is_dir() else ():
        stale.unlink()
    try:
        maps = generate_maps(n, seed, patterns=parse_patterns(patterns), size=parse_size(size), mixtures=mixtures)
        count = write_store(tqdm(maps, total=n, desc="generate", unit="map", leave=False), out)
    except WaferMapError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {count} maps to {out} (seed {seed}); look at them with 'wafersage maps show {out} "
               f"--out sheet.png'")


@click.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR_OR_STORE")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Contact sheet PNG.")
@click.option("--n", "n", type=click.IntRange(min=1), default=64, show_default=True, help="Show the first N maps.")
@click.option("--columns", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--cell", type=click.IntRange(min=16), default=128, show_default=True, help="Thumbnail size, pixels.")
@click.option("--palette", type=click.Choice(["colour", "grey"]), default="colour", show_default=True)
@click.option("--labels/--no-labels", default=True, show_default=True, help="Caption each map with id and label.")
def show(source: Path, out: Path, n: int, columns: int, cell: int, palette: str, labels: bool) -> None:
    """Draw the first maps of a store (or of a benchmark folder's maps/) as a contact sheet PNG."""
    from .maps.render import contact_sheet

    try:
        maps = list(islice(read_store(store_path(source)), n))
    except WaferMapError as exc:
        raise click.ClickException(str(exc)) from None
    if not maps:
        raise click.ClickException(f"{source}: the store holds no maps")
    out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(maps, columns=columns, cell=cell, labels=labels, palette=palette).save(out, format="PNG")
    click.echo(f"wrote {out} ({len(maps)} maps)")
