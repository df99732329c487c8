"""Small CLI and README consistency rules: one replace flag (--force), did-you-mean for labels, README commands that
name real sub-commands and options and one benchmark folder convention."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from wafersage.cli import main
from wafersage.tasks.maps.wafer import WaferMapError, canonical_label

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands(group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _commands(command, ctx, (*prefix, name))
        else:
            yield (*prefix, name), command


def _options(command: click.Command) -> set[str]:
    return {opt for p in command.params if isinstance(p, click.Option) for opt in (*p.opts, *p.secondary_opts)}


@pytest.fixture(scope="module")
def commands() -> dict[tuple[str, ...], click.Command]:
    return dict(_commands(main, click.Context(main)))


def test_every_command_replaces_with_force(commands):
    assert not [path for path, command in commands.items() if "--overwrite" in _options(command)]
    for path in (("maps", "generate"), ("maps", "import"), ("synth",)):
        assert "--force" in _options(commands[path]), path


def test_unknown_label_suggests_the_closest():
    with pytest.raises(WaferMapError, match=r"record labels.csv:3: unknown defect label 'Dnut'\. Did you mean 'Donut'"):
        canonical_label("Dnut", record="labels.csv:3")
    with pytest.raises(WaferMapError) as info:
        canonical_label("qqqq")
    assert "Did you mean" not in str(info.value) and "Use one of Center" in str(info.value)


def _readme_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    text = "\n".join(blocks).replace("\\\n", " ")
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    optional = str.maketrans("[]", "  ")  # "[--limit N]": check the option inside the brackets too
    return [shlex.split(line.translate(optional)) for line in lines if line.strip().startswith("wafersage ")]


def test_readme_commands_exist_with_their_options(commands):
    checked = 0
    for words in _readme_commands():
        path = tuple(w for w in words[1:3] if not w.startswith("-"))
        command = commands.get(path) or commands.get(path[:1])
        assert command is not None, f"README names an unknown command: {' '.join(words)}"
        unknown = {w.split("=")[0] for w in words if w.startswith("--")} - _options(command)
        assert not unknown, f"README: {' '.join(words)} uses options {unknown} that the command lacks"
        checked += 1
    assert checked >= 15
    benches = {w for words in _readme_commands() for i, w in enumerate(words) if words[i - 1] == "--bench"}
    assert all(b.startswith("benches/") for b in benches), benches  # benchmarks/ holds the speed scripts
