"""The ``wafersage`` command line. Sub-commands load lazily (``module:attr``) so ``--help`` stays fast."""
from __future__ import annotations

import difflib
import importlib

import click


class LazyGroup(click.Group):
    """A click group whose commands are ``{"name": "module:attr"}`` entries imported on first use."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.lazy) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        target = self.lazy.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        known = self.list_commands(ctx)
        if name and not name.startswith("-") and name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            ctx.fail(f"no such command {name!r}.{hint} See '{ctx.command_path} --help'.")
        return super().resolve_command(ctx, args)


#: top-level command name -> "module:attr" of a click command or group
COMMANDS: dict[str, str] = {
    "demo": "wafersage.demo:demo",
    "maps": "wafersage.cli:maps",
    "export": "wafersage.cli:export",
    "synth": "wafersage.harness.synth_cli:synth",
    "validate-real": "wafersage.tasks.classify.cli:validate_real",
    "eval": "wafersage.harness.run.cli:eval_cmd",
    "merge": "wafersage.harness.scoring.cli:merge_cmd",
    "import-answers": "wafersage.harness.run.cli:import_answers_cmd",
    "score": "wafersage.harness.scoring.cli:score",
    "calibrate": "wafersage.harness.agreement.cli:calibrate_cmd",
    "agreement": "wafersage.harness.agreement.cli:agreement_cmd",
    "report": "wafersage.reports.cli:report",
    "compare": "wafersage.reports.cli:compare",
    "train": "wafersage.training.cli:train",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wafersage")
def main() -> None:
    """WaferSAGE: build wafer-defect VQA benchmarks, evaluate VLMs on them, score, report and train."""


@click.group(cls=LazyGroup, lazy={
    "generate": "wafersage.tasks.cli:generate",
    "show": "wafersage.tasks.cli:show",
    "import": "wafersage.tasks.maps.readers.cli:import_maps",
})
def maps() -> None:
    """Generate, import and look at wafer maps."""


@click.group(cls=LazyGroup, lazy={
    "hf": "wafersage.tasks.bench.hf_export:export_hf",
    "lm-eval": "wafersage.harness.lmeval.task_folder:export_lm_eval",
    "questions": "wafersage.harness.run.cli:export_questions_cmd",
})
def export() -> None:
    """Export a benchmark to other formats (Hugging Face datasets / Parquet, lm-evaluation-harness tasks, questions
    for a model run elsewhere)."""
