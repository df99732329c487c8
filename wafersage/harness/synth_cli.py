"""``wafersage synth``: build a benchmark folder, with the geometry path or with any model in the describer's and the
question writer's seats.

It lives in the harness because it may load models (``wafersage.tasks`` never does): ``--describe-model NAME``
describes each map and builds its rubric (Stages 0b–1; the config's ``describer`` becomes ``model``),
``--writer-model NAME`` writes each wafer's question–answer pairs from its rubric (Stage 2). NAME is anything
``wafersage eval --model`` takes. Replies are cached (``--cache``), so rerunning a crashed or ``--force``d build
asks the model only what it has not answered; wafers a model fails on are listed in ``failures.jsonl``.

The build stops at the first systemic error — credentials refused, an endpoint that cannot be reached, an unknown
model, or an exception in a stage that is a bug rather than a bad reply — with the cause and the fix, and exits 1
when more than ``--max-failed-share`` of the wafers failed (the benchmark is still written, with its failures).
"""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click
from rich.console import Console

from ..models.config import ModelConfig, ModelConfigError
from ..models.registry import resolve
from ..tasks.bench.folder import Benchmark
from ..tasks.synth.prompt_templates import ModelUnavailable
from ..tasks.synth.stages import StageError
from .run.cache import ResponseCache
from .run.model_caller import DEFAULT_MAX_TOKENS, ModelCaller
from .run.runner import default_cache_path


def _callers(stack: ExitStack, specs: dict[str, str | None], cache: ResponseCache,
             max_tokens: int) -> tuple[dict[str, ModelCaller], dict[str, dict]]:
    """Role -> caller (one per distinct model) and role -> the model's public config, for the manifest."""
    by_spec: dict[str, ModelCaller] = {}
    callers, provenance = {}, {}
    for role, spec in specs.items():
        if spec is None:
            continue
        if spec not in by_spec:
            config: ModelConfig = resolve(spec)
            by_spec[spec] = stack.enter_context(ModelCaller(config, cache, max_tokens=max_tokens))
        callers[role] = by_spec[spec]
        provenance[role] = by_spec[spec].config.public()
    return callers, provenance


@click.command("synth")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Synthesis config YAML, e.g. configs/synth/demo.yaml.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Benchmark folder to create.")
@click.option("--seed", type=int, default=None, help="Override the config's seed.")
@click.option("--describe-model", default=None,
              help="A VLM (registered name, YAML file, hf:PATH) describes every map and builds its rubric; sets "
                   "the config's describer to 'model'.")
@click.option("--writer-model", default=None,
              help="A model writes every wafer's question-answer pairs from its rubric (checked like the built-in "
                   "writer's: 8-10 pairs, category counts, no defect-type hint in a question).")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Response cache of the model calls [default: .wafersage-cache.sqlite next to --out].")
@click.option("--max-tokens", type=click.IntRange(min=16), default=DEFAULT_MAX_TOKENS, show_default=True,
              help="Cap on each model reply.")
@click.option("--max-failed-share", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Exit 1 when more than this share of the wafers failed in the model path (a failed call, or a "
                   "reply still invalid after the retries); the benchmark is written either way, with the failed "
                   "wafers in failures.jsonl.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes for the per-map work (making, measuring, describing, questions, PNGs) of the "
                   "geometry path; cleaning and splits stay global. Any number builds the same bytes.")
@click.option("--force", is_flag=True, help="Replace --out if it already holds a benchmark.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def synth(config_path: Path, out_dir: Path, seed: int | None, describe_model: str | None, writer_model: str | None,
          cache_path: Path | None, max_tokens: int, max_failed_share: float, workers: int, force: bool,
          quiet: bool) -> None:
    """Build a benchmark: maps -> clean -> split -> describe -> rubrics -> VQA items -> images -> manifest."""
    from ..tasks.synth.build import SynthConfig, SynthConfigError, build_benchmark
    from ..tasks.maps.wafer import WaferMapError

    console = Console(stderr=True)
    try:
        config = SynthConfig.from_yaml(config_path, seed=seed, describer="model" if describe_model else None)
        if config.describer == "model" and describe_model is None:
            raise SynthConfigError(f"{config_path}: describer: model needs a model; pass --describe-model NAME "
                                   "(a registered name, a YAML file or hf:PATH), or set describer: geometry")
        with ExitStack() as stack:
            callers, models = {}, None
            if describe_model or writer_model:
                cache = stack.enter_context(ResponseCache(cache_path or default_cache_path(out_dir)))
                callers, models = _callers(stack, {"describer": describe_model, "writer": writer_model}, cache,
                                           max_tokens)
            root = build_benchmark(config, out_dir, describe_with=callers.get("describer"),
                                   write_with=callers.get("writer"), models=models, progress=not quiet,
                                   overwrite=force, workers=workers)
            for caller in dict.fromkeys(callers.values()):
                console.print(f"model {caller.config.name}: {caller.n_calls} calls, {caller.n_cached} replies "
                              f"from the cache ({cache.path})")
    except (SynthConfigError, WaferMapError, FileExistsError, ModelConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    except ModelUnavailable as exc:
        raise click.ClickException(f"stopped (--out left as it was): {exc}") from exc
    except StageError as exc:
        raise click.ClickException(
            f"stopped (--out left as it was): a synthesis stage failed in a way no model reply explains (a bug; "
            f"please report it): {exc}") from exc
    counts = Benchmark.load(root).manifest["counts"]
    out = Console()
    out.print(f"[bold]{config.name}[/] v{config.version} (seed {config.seed}) -> {root}")
    out.print(f"maps read {counts['maps_read']}, flagged by cleaning {counts['maps_flagged']}, "
              f"wafers {counts['wafers']}, items {counts['items']}, failed {counts['failed_wafers']}")
    out.print("wafers per split: " + ", ".join(f"{k} {v}" for k, v in counts["wafers_per_split"].items()))
    failed, attempted = counts["failed_wafers"], counts["failed_wafers"] + counts["wafers"]
    if failed:
        out.print(f"[yellow]{failed} wafers failed in the model path; reasons in {root / 'failures.jsonl'}[/]")
    if attempted and failed / attempted > max_failed_share:
        Console(stderr=True).print(
            f"[bold red]error:[/] {failed} of {attempted} wafers ({failed / attempted:.0%}) failed, more than "
            f"--max-failed-share {max_failed_share:g}; see {root / 'failures.jsonl'}, fix the cause and rebuild with "
            "--force (cached replies cost nothing), or allow more with --max-failed-share", highlight=False)
        raise SystemExit(1)
