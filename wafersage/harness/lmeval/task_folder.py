"""``wafersage export lm-eval``: a benchmark split as an lm-evaluation-harness task folder.

Layout of ``--out`` (``NAME`` defaults to ``wafersage``)::

    NAME.yaml                  group NAME: the category tasks; its scores are means over all items
    NAME_all.yaml              every item of the split in one task (not in the group, so nothing runs twice)
    NAME_<category>.yaml       one task per question category present in the split
    _default_template_yaml     settings the tasks share (generate_until, hooks, greedy generation)
    utils.py                   lm-eval hooks bound to :mod:`wafersage.harness.lmeval.task.runtime`
    wafersage_task.json        the benchmark folder (absolute path), its hash, the split, the prompt style
    calibration.json           a copy of ``--calibration``, when given

Run it with ``lm_eval --model hf-multimodal --model_args pretrained=DIR --include_path OUT --tasks NAME
--apply_chat_template``. Metrics and how they aggregate: see :mod:`wafersage.harness.lmeval.task.runtime`.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import click
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ...models.base import GenerationParams
from ...models.config import TRAINING_MANIFEST, ModelConfigError, training_system_prompt
from ...tasks.bench.folder import Benchmark, BenchmarkError
from ...tasks.bench.schema import CATEGORIES, SPLITS
from ..scoring import SCORER_VERSION
from ..scoring.calibrate import CalibrationError, load_calibration
from ..run.messages import SYSTEM_PROMPT
from ..run.provenance import package_versions
from .task.runtime import (
    ALL, CALIBRATION_FILE, CONFIG_FILE, TaskFolderConfig, TaskFolderError, metric_names,
)

TEMPLATE_FILE = "_default_template_yaml"
TASK_VERSION = 1
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# Values from the benchmark (its name, version, folder) are untrusted: the templates embed each one escaped, as a
# JSON string in YAML (``tojson``: one line, no tag such as ``!function`` can start) or a Python literal (``pyrepr``).
_ENV = Environment(loader=PackageLoader("wafersage.harness.lmeval", "task"), autoescape=select_autoescape(["html"]),
                   undefined=StrictUndefined, keep_trailing_newline=True)
_ENV.filters["pyrepr"] = repr


class ExportError(ValueError):
    """The export cannot go ahead; the message names the input and the fix."""


def _check_out_dir(out: Path) -> list[str]:
    """Files of an earlier export to replace; refuses a folder that holds anything else."""
    if not out.exists():
        return []
    if not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder; pick another --out")
    if (out / CONFIG_FILE).is_file():
        try:
            return TaskFolderConfig.model_validate_json((out / CONFIG_FILE).read_bytes()).files
        except ValueError:
            raise ExportError(f"{out / CONFIG_FILE}: unreadable; delete the folder {out} or pick another --out") from None
    if any(out.iterdir()):
        raise ExportError(f"{out}: not empty and not an lm-eval task folder from wafersage; pick an empty --out")
    return []


def export_task_folder(bench_dir: str | Path, out_dir: str | Path, *, split: str = "test",
                       calibration: str | Path | None = None, name: str = "wafersage", image_placeholder: bool = True,
                       max_gen_toks: int | None = None, system_prompt: str | None = None) -> TaskFolderConfig:
    """Write the task folder for ``split`` of the benchmark at ``bench_dir``; returns its ``wafersage_task.json``.

    ``system_prompt`` (default: the harness's :data:`~wafersage.harness.run.messages.SYSTEM_PROMPT`) is sent with
    every question. Raises :class:`ExportError`, :class:`BenchmarkError` or :class:`CalibrationError` for bad
    input; a folder that holds files of anything but an earlier export is never written into.
    """
    if not NAME_RE.match(name):
        raise ExportError(f"--name {name!r}: use letters, digits and underscores, starting with a letter")
    if split not in (*SPLITS, ALL):
        raise ExportError(f"unknown split {split!r}; use one of {', '.join(SPLITS)} or {ALL}")
    max_gen_toks = max_gen_toks or GenerationParams().max_tokens
    if max_gen_toks < 1:
        raise ExportError(f"--max-gen-toks must be at least 1, got {max_gen_toks}")
    bench = Benchmark.load(bench_dir)
    items = bench.items(split)
    if not items:
        raise ExportError(f"{bench.root}: split {split!r} has no items; pick another with --split")
    calib = load_calibration(calibration) if calibration else None
    if calib is not None and calib.bench_hash not in (None, bench.hash):
        raise CalibrationError(f"{calibration}: calibrated on benchmark {calib.bench_hash[:12]}, but {bench.root} "
                               f"is {bench.hash[:12]}; calibrate on runs of this benchmark")
    out = Path(out_dir)
    earlier = _check_out_dir(out)

    counts = {c: sum(it.category == c for it in items) for c in CATEGORIES}
    categories = [c for c in CATEGORIES if counts[c]]
    tasks = {f"{name}_{ALL}": len(items), **{f"{name}_{c}": counts[c] for c in categories}}
    config = TaskFolderConfig(
        name=name, bench_dir=str(bench.root.resolve()), bench_name=bench.name, bench_version=bench.version,
        bench_hash=bench.hash, split=split, calibration_id=calib.id if calib else None,
        image_placeholder=image_placeholder, max_gen_toks=max_gen_toks, tasks=tasks,
        system_prompt=system_prompt or SYSTEM_PROMPT,
        wafersage_version=package_versions(["wafersage"]).get("wafersage", ""), scorer_version=SCORER_VERSION,
    )
    files: dict[str, str] = {
        TEMPLATE_FILE: _ENV.get_template("template.yaml.j2").render(config=config),
        "utils.py": _ENV.get_template("utils.py.j2").render(config=config),
        f"{name}.yaml": _ENV.get_template("group.yaml.j2").render(
            config=config, tasks=[f"{name}_{c}" for c in categories], version=TASK_VERSION,
            metrics=["rule_score", *(["rule_score_default"] if calib else [])]),
    }
    for category in (ALL, *categories):
        files[f"{name}_{category}.yaml"] = _ENV.get_template("task.yaml.j2").render(
            task=f"{name}_{category}", alias=category if category != ALL else f"{name} (all items)",
            metrics=metric_names(category, calib is not None), version=TASK_VERSION, category=category)
    config.files = sorted([*files, CONFIG_FILE, *([CALIBRATION_FILE] if calib else [])])

    out.mkdir(parents=True, exist_ok=True)
    for stale in set(earlier) - set(config.files):
        (out / stale).unlink(missing_ok=True)
    for filename, text in files.items():
        (out / filename).write_text(text, encoding="utf-8")
    if calib is not None and Path(calibration).resolve() != (out / CALIBRATION_FILE).resolve():
        shutil.copyfile(calibration, out / CALIBRATION_FILE)
    (out / CONFIG_FILE).write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return config


def _system_prompt(trained_model: Path | None, system_prompt: str | None) -> str | None:
    """The prompt given on the command line: ``--system-prompt``, or the one ``--trained-model`` was trained with."""
    if trained_model is None:
        if system_prompt is not None and not system_prompt.strip():
            raise ExportError("--system-prompt is empty; give the text, or leave it out for the harness's prompt")
        return system_prompt
    if system_prompt is not None:
        raise ExportError("give --trained-model or --system-prompt, not both")
    prompt = training_system_prompt(trained_model)
    if prompt is None:
        raise ExportError(f"{trained_model}: no {TRAINING_MANIFEST} with a system prompt (not a checkpoint made by "
                          "'wafersage train'); pass --system-prompt TEXT, or neither for the harness's prompt")
    return prompt


@click.command("lm-eval")
@click.option("--bench", "bench_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="benchmark folder (made by 'wafersage synth')")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="task folder to write (empty, new, or an earlier export, which is replaced)")
@click.option("--split", default="test", show_default=True, help="train, val, test or all")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="calibration.json from 'wafersage calibrate': score with its constants, as 'wafersage score' does")
@click.option("--name", default="wafersage", show_default=True,
              help="group name; tasks are NAME_all and NAME_<category> (pick another per benchmark)")
@click.option("--image-placeholder/--no-image-placeholder", default=True, show_default=True,
              help="start the question with <image> (hf-multimodal needs it; API models send it as text)")
@click.option("--max-gen-toks", type=int, default=None,
              help=f"generation cap in the task YAMLs [default: {GenerationParams().max_tokens}, as 'wafersage eval']")
@click.option("--trained-model", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="a checkpoint made by 'wafersage train': prompt with the system prompt it was trained with")
@click.option("--system-prompt", default=None, help="system prompt for every question [default: the harness's]")
def export_lm_eval(bench_dir: Path, out_dir: Path, split: str, calibration: Path | None, name: str,
                   image_placeholder: bool, max_gen_toks: int | None, trained_model: Path | None,
                   system_prompt: str | None) -> None:
    """Write an lm-evaluation-harness task folder: a group (one task per question category), an all-items
    task, and hooks that prompt and score as 'wafersage eval' + 'wafersage score' do."""
    try:
        prompt = _system_prompt(trained_model, system_prompt)
        config = export_task_folder(bench_dir, out_dir, split=split, calibration=calibration, name=name,
                                    image_placeholder=image_placeholder, max_gen_toks=max_gen_toks,
                                    system_prompt=prompt)
    except (ExportError, BenchmarkError, CalibrationError, TaskFolderError, ModelConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {len(config.tasks)} tasks for {config.bench_name} ({config.split}) to {out_dir}:")
    for task, n in config.tasks.items():
        click.echo(f"  {task:<28} {n} items")
    click.echo(f"run: lm_eval --model hf-multimodal --model_args pretrained=MODEL_DIR --include_path {out_dir} "
               f"--tasks {config.name} --apply_chat_template")
