"""The ``wafersage`` command line. Sub-commands load lazily (``module:attr``) so ``--help`` stays fast."""
from __future__ import annotations

import difflib
import importlib

import click

#: command name -> "module:attr" of a click command or group
COMMANDS: dict[str, str] = {
    "demo": "wafersage.demo:demo",
    "maps": "wafersage.tasks.cli:maps",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            close = difflib.get_close_matches(name, COMMANDS, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            ctx.fail(f"no such command {name!r}.{hint} See 'wafersage --help'.")
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wafersage")
def main() -> None:
    """WaferSAGE: build wafer-defect VQA benchmarks, evaluate VLMs on them, score, report and train."""
