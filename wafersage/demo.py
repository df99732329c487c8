"""``wafersage demo``: the whole pipeline on a small generated set, as a sequence of named steps.

Each step is a function ``step(ctx) -> str`` that reads and adds to the shared :class:`DemoContext` and returns a
one-line result; :data:`STEPS` lists them in order. Today: generate maps → measure their geometry → draw a
contact sheet → summarise per pattern. Later stages (synthesise the benchmark, evaluate models, score, publish the
leaderboard) are added as further steps.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import click
from rich.console import Console
from rich.table import Table

from .tasks.geometry import Geometry, measure
from .tasks.wafer import PATTERNS, WaferMap


@dataclass
class DemoContext:
    """What the demo's steps share: settings, the maps and their geometry, and the files written."""

    out: Path
    n: int
    seed: int
    console: Console
    maps: list[WaferMap] = field(default_factory=list)
    geometries: list[Geometry] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


def step_generate(ctx: DemoContext) -> str:
    from .tasks.generate import generate_maps
    from .tasks.store import write_store

    ctx.maps = list(generate_maps(ctx.n, ctx.seed))
    ctx.files["maps"] = ctx.out / "maps"
    write_store(ctx.maps, ctx.files["maps"])
    return f"{len(ctx.maps)} maps (seed {ctx.seed}) -> {ctx.files['maps']}"


def step_measure(ctx: DemoContext) -> str:
    ctx.geometries = [measure(wafer) for wafer in ctx.maps]
    mean_fail = sum(g.fail_ratio for g in ctx.geometries) / max(len(ctx.geometries), 1)
    return f"{len(ctx.geometries)} maps measured, mean fail ratio {mean_fail:.3f}"


def step_contact_sheet(ctx: DemoContext) -> str:
    from .tasks.render import contact_sheet

    path = ctx.files["contact_sheet"] = ctx.out / "maps.png"
    contact_sheet(ctx.maps[:64], columns=8, cell=128).save(path, format="PNG")
    return f"contact sheet of {min(len(ctx.maps), 64)} maps -> {path}"


def pattern_summary(maps: list[WaferMap], geometries: list[Geometry]) -> list[dict]:
    """Per label (a mixture counts for each of its patterns): count, mean fail ratio, commonest zone and texture."""
    rows = []
    for label in PATTERNS + ("none",):
        picked = [g for w, g in zip(maps, geometries) if label in w.labels]
        if not picked:
            continue
        zones = Counter(g.dominant_zone or "-" for g in picked)
        textures = Counter(g.texture for g in picked)
        rows.append({
            "pattern": label, "count": len(picked),
            "mean_fail_ratio": round(sum(g.fail_ratio for g in picked) / len(picked), 4),
            "dominant_zone": zones.most_common(1)[0][0], "texture": textures.most_common(1)[0][0],
        })
    return rows


def step_summary(ctx: DemoContext) -> str:
    rows = pattern_summary(ctx.maps, ctx.geometries)
    table = Table(title="Generated maps per pattern (mixtures count for each pattern)")
    for name, justify in (("pattern", "left"), ("count", "right"), ("mean fail ratio", "right"),
                          ("dominant zone", "left"), ("texture", "left")):
        table.add_column(name, justify=justify)
    for row in rows:
        table.add_row(row["pattern"], str(row["count"]), f"{row['mean_fail_ratio']:.3f}", row["dominant_zone"],
                      row["texture"])
    ctx.console.print(table)
    path = ctx.files["summary"] = ctx.out / "summary.json"
    path.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return f"{len(rows)} patterns summarised -> {path}"


#: the demo, in order: (title, step)
STEPS: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("generate maps", step_generate),
    ("measure geometry", step_measure),
    ("contact sheet", step_contact_sheet),
    ("summary", step_summary),
]


def run_demo(out: Path, n: int = 48, seed: int = 0, console: Console | None = None) -> DemoContext:
    """Run every step of :data:`STEPS` into ``out`` and return the context they filled."""
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out=out, n=n, seed=seed, console=console or Console())
    for number, (title, step) in enumerate(STEPS, 1):
        start = time.perf_counter()
        with ctx.console.status(f"[{number}/{len(STEPS)}] {title} ..."):
            result = step(ctx)
        ctx.console.print(f"[bold green]✓[/] [{number}/{len(STEPS)}] {title}: {result} "
                          f"[dim]({time.perf_counter() - start:.1f} s)[/]")
    return ctx


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_out"),
              show_default=True, help="Folder for everything the demo writes.")
@click.option("--n", "n", type=click.IntRange(min=1), default=48, show_default=True, help="Maps to generate.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
def demo(out: Path, n: int, seed: int) -> None:
    """Run the pipeline end to end on a small generated set and write what it makes into --out."""
    ctx = run_demo(out, n=n, seed=seed)
    ctx.console.print(f"done: {', '.join(f'{k} {v}' for k, v in ctx.files.items())}")
