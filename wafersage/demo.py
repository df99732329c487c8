"""``wafersage demo``: the whole main job on a small generated benchmark, as a sequence of named steps.

build the benchmark (the packaged :data:`DEMO_CONFIG`; ``configs/synth/demo.yaml`` links to it) → contact sheet
of its test wafers → pick the models (built-in baselines, every ``configs/models`` entry whose ``api_key_env`` is
set, and ``--model`` extras) → evaluate each on the test split → score (rules, and an LLM judge with ``--judge``)
→ HTML leaderboard, exports and a terminal table.

Each step is a function ``step(ctx) -> str`` that reads and adds to the shared :class:`DemoContext` and returns a
one-line result; :data:`STEPS` lists them in order. A rerun reuses the benchmark when its config is unchanged, and
the run folders and response caches, so nothing already computed is done again.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import click
from rich.console import Console
from rich.markup import escape

from .models.config import ModelConfig, ModelConfigError
from .models.registry import backend_class, known_names, models_dir, resolve

if TYPE_CHECKING:
    from .reports.leaderboard import Leaderboard

#: the demo's synthesis config, shipped in the package so the demo runs from any folder
DEMO_CONFIG = Path(__file__).parent / "tasks" / "synth" / "configs" / "demo.yaml"
#: the built-in baselines, best to worst (the blind ones: the floor a model must clear to show it reads the map);
#: the specialist only where its backend imports
BASELINES = ("oracle", "specialist", "blind-question", "blind-prior", "random", "constant")
SPLIT = "test"


@dataclass
class DemoContext:
    """What the demo's steps share: settings, the benchmark, the models, the run folders and the files written."""

    work: Path
    out: Path
    config_path: Path
    console: Console
    extra_models: tuple[str, ...] = ()
    judge: str | None = None
    limit: int | None = None
    env_models: bool = True
    bench: Path | None = None
    models: list[ModelConfig] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # model -> why it is not on the leaderboard
    runs: dict[str, Path] = field(default_factory=dict)
    board: Leaderboard | None = None
    files: dict[str, Path] = field(default_factory=dict)


def step_benchmark(ctx: DemoContext) -> str:
    from .tasks.bench.folder import Benchmark, BenchmarkError
    from .tasks.synth.build import SynthConfig, build_benchmark

    config = SynthConfig.from_yaml(ctx.config_path)
    target = ctx.work / "bench"
    reused = False
    try:
        reused = Benchmark.load(target).manifest.get("config") == config.model_dump(mode="json")
    except BenchmarkError:
        pass  # absent or damaged: build it
    if not reused:
        build_benchmark(config, target, progress=False, overwrite=True)
    ctx.bench = ctx.files["benchmark"] = target
    bench = Benchmark.load(target, verify=False)
    wafers = {split: sum(1 for _ in bench.wafers(split)) for split in ("train", SPLIT)}
    return (f"{bench.name} v{bench.version}: {wafers['train']} train / {wafers[SPLIT]} test wafers, "
            f"{len(bench.items(SPLIT))} test questions -> {target}{' (unchanged, reused)' if reused else ''}")


def step_contact_sheet(ctx: DemoContext) -> str:
    from .tasks.bench.folder import Benchmark
    from .tasks.maps.render import contact_sheet

    wafers = list(Benchmark.load(ctx.bench, verify=False).wafers(SPLIT))[:64]
    path = ctx.files["contact_sheet"] = ctx.work / "maps.png"
    contact_sheet(wafers, columns=8, cell=128).save(path, format="PNG")
    return f"{len(wafers)} test wafers -> {path}"


def _credentials(config: ModelConfig) -> str | None:
    """The environment variable a config needs and lacks (None when it needs none or it is set)."""
    env = config.options.get("api_key_env")
    return env if env and not os.environ.get(env) else None


def step_models(ctx: DemoContext) -> str:
    chosen: dict[str, ModelConfig] = {}
    for name in BASELINES:
        config = resolve(name)
        try:
            backend_class(config.backend)
        except ModelConfigError as exc:
            ctx.skipped[name] = str(exc)
            continue
        chosen[name] = config
    if ctx.env_models:
        for name in known_names():
            if name in chosen or name in BASELINES:
                continue
            try:
                config = resolve(name)
            except ModelConfigError as exc:
                ctx.skipped[name] = str(exc)
                continue
            missing = _credentials(config)
            if config.options.get("api_key_env") is None:
                ctx.skipped[name] = "no api_key_env (a local server?); add it with --model " + name
            elif missing:
                ctx.skipped[name] = f"set {missing} to include it"
            else:
                chosen[name] = config
    for spec in ctx.extra_models:
        config = resolve(spec)  # a bad name is a usage error: stop with the closest names
        if missing := _credentials(config):
            raise ModelConfigError(f"--model {spec}: its config reads the key from ${missing}, which is not set")
        chosen[config.name] = config
        ctx.skipped.pop(config.name, None)
    ctx.models = list(chosen.values())
    return ", ".join(c.name for c in ctx.models) + (f" ({len(ctx.skipped)} skipped)" if ctx.skipped else "")


def step_evaluate(ctx: DemoContext) -> str:
    from .harness.run.runner import EvalUsageError, run_eval
    from .tasks.bench.folder import Benchmark

    runs_root = ctx.work / "runs" / Benchmark.load(ctx.bench, verify=False).hash[:12]
    for config in ctx.models:
        start = time.perf_counter()
        try:
            info = run_eval(ctx.bench, config, split=SPLIT, limit=ctx.limit, out_dir=runs_root / config.name,
                            progress=False)
        except (ModelConfigError, EvalUsageError) as exc:
            ctx.skipped[config.name] = str(exc)
            ctx.console.print(f"  [yellow]skipped[/] {escape(config.name)}: {escape(str(exc))}")
            continue
        ctx.runs[config.name] = runs_root / config.name
        failed = f", [red]{info.n_failed} failed[/]" if info.n_failed else ""
        ctx.console.print(f"  {escape(config.name)}: {info.n_ok} answers{failed} "
                          f"[dim]({time.perf_counter() - start:.1f} s)[/]")
    if not ctx.runs:
        raise click.ClickException("no model could be evaluated; see the messages above")
    return f"{len(ctx.runs)} models on the {SPLIT} split -> {runs_root}"


def _judge(spec: str, folder: Path):
    from .harness.run.runner import default_cache_path
    from .harness.scoring.judging.judges import load_judges

    return load_judges([spec], cache_path=default_cache_path(folder))


def step_score(ctx: DemoContext) -> str:
    from .harness.scoring.score_run import score_run

    for name, folder in ctx.runs.items():
        summary = score_run(folder, judge=_judge(ctx.judge, folder) if ctx.judge else None, progress=False)
        judged = (f", judge {summary.judge.value:.2f} ({100 * summary.judge_coverage:.0f}% of answers judged)"
                  if summary.judge else "")
        ctx.console.print(f"  {escape(name)}: rule {summary.rule.value:.2f}{judged}")
    return f"{len(ctx.runs)} runs scored{' with judge ' + ctx.judge if ctx.judge else ' (rules only; add --judge)'}"


def step_leaderboard(ctx: DemoContext) -> str:
    from .reports.cli import leaderboard_table, write_report

    exports = {kind: ctx.work / f"leaderboard.{kind}" for kind in ("csv", "json", "md")}
    ctx.board = write_report(list(ctx.runs.values()), ctx.out, csv_path=exports["csv"], json_path=exports["json"],
                             markdown_path=exports["md"])
    ctx.files |= {"leaderboard": ctx.out} | {f"leaderboard_{k}": v for k, v in exports.items()}
    ctx.console.print(leaderboard_table(ctx.board))
    return f"{len(ctx.runs)} models ranked -> {ctx.out} (+ csv, json, md in {ctx.work})"


#: the demo, in order: (title, step)
STEPS: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("build benchmark", step_benchmark),
    ("contact sheet", step_contact_sheet),
    ("pick models", step_models),
    ("evaluate", step_evaluate),
    ("score", step_score),
    ("leaderboard", step_leaderboard),
]


def next_steps(ctx: DemoContext) -> list[str]:
    """What to do after the demo: open the page, add API or local models, a judge, the CI gate."""
    lines = [f"open {ctx.out.resolve().as_uri()} in a browser (one self-contained file)"]
    for name, reason in ctx.skipped.items():
        lines.append(f"{name}: {reason}")
    lines += [
        f"any OpenAI-compatible API: add a YAML file to {models_dir()}/ with base_url, model and api_key_env, "
        "export that variable and rerun 'make demo'",
        "a local model: 'vllm serve Qwen/Qwen3-VL-8B-Instruct --port 8000', then 'wafersage demo --model "
        "qwen3-vl-vllm' (configs/models/qwen3-vl-vllm.yaml)",
        "grade with an LLM judge too: 'wafersage demo --judge gpt-5-mini' (or any model name / YAML file)",
        "gate a checkpoint in CI: 'wafersage compare BASE_RUN CANDIDATE_RUN --max-drop 0.2 --junit gate.xml'",
    ]
    return lines


def run_demo(ctx: DemoContext) -> DemoContext:
    """Run every step of :data:`STEPS` and return the context they filled."""
    ctx.work.mkdir(parents=True, exist_ok=True)
    for number, (title, step) in enumerate(STEPS, 1):
        start = time.perf_counter()
        ctx.console.print(f"[bold][{number}/{len(STEPS)}] {title}[/] ...")
        result = step(ctx)
        ctx.console.print(f"[bold green]✓[/] [{number}/{len(STEPS)}] {title}: {escape(result)} "
                          f"[dim]({time.perf_counter() - start:.1f} s)[/]")
    return ctx


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="synthesis config of the benchmark [default: the packaged demo config, "
                   "wafersage/tasks/synth/configs/demo.yaml]")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_out"),
              show_default=True, help="folder for the benchmark, runs, caches and exports")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("leaderboard.html"),
              show_default=True, help="the HTML leaderboard to write")
@click.option("--model", "extra_models", multiple=True,
              help="also evaluate this model (registered name, YAML file, hf:PATH); repeat the option")
@click.option("--judge", default=None, help="also grade every answer with this LLM judge (name or YAML file)")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="questions per model (default: all)")
@click.option("--env-models/--baselines-only", default=True, show_default=True,
              help="include configs/models entries whose API key variable is set")
def demo(config_path: Path | None, work: Path, out: Path, extra_models: tuple[str, ...], judge: str | None,
         limit: int | None, env_models: bool) -> None:
    """Build a small benchmark, evaluate the built-in baselines (and any model with a key set), score them and
    write the HTML leaderboard."""
    config_path = config_path or DEMO_CONFIG
    if not config_path.exists():
        raise click.BadParameter(f"{config_path} does not exist; pass an existing synthesis config YAML, or leave "
                                 "--config out to use the packaged demo config", param_hint="--config")
    start = time.perf_counter()
    console = Console()
    ctx = DemoContext(work=work, out=out, config_path=config_path, console=console, extra_models=extra_models,
                      judge=judge, limit=limit, env_models=env_models)
    try:
        run_demo(ctx)
    except ModelConfigError as exc:
        raise click.ClickException(str(exc)) from None
    took = time.perf_counter() - start
    console.print(f"\n[bold]Leaderboard:[/] {escape(str(out))}  [dim](demo took {took:.1f} s)[/]")
    console.print("[bold]Next:[/]")
    for line in next_steps(ctx):
        console.print(f"  • {escape(line)}", highlight=False)
