"""The lm-eval export embeds a benchmark's name, version and folder escaped: a crafted one cannot add Python code
or YAML (lm-eval's ``!function`` tag imports and runs code) to the generated task folder."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml
from bench_factory import make_bench
from click.testing import CliRunner

from wafersage.cli import main

HOOKS = {"utils.load_docs", "utils.doc_to_image", "utils.doc_to_text", "utils.doc_to_target",
         "utils.process_results"}


class _TaggedLoader(yaml.SafeLoader):
    """Reads lm-eval's YAML without running anything: ``!function x`` becomes ``("!function", "x")``."""


_TaggedLoader.add_constructor("!function", lambda loader, node: ("!function", loader.construct_scalar(node)))


def functions(value) -> list[str]:
    if isinstance(value, tuple):
        return [value[1]]
    if isinstance(value, dict):
        return [f for v in value.values() for f in functions(v)]
    if isinstance(value, list):
        return [f for v in value for f in functions(v)]
    return []


@pytest.fixture
def crafted(tmp_path) -> tuple[Path, str, str, Path]:
    """A benchmark whose name, version and folder name try to break out of a string, comment or docstring."""
    marker = tmp_path / "PWNED"
    code = f"import pathlib; pathlib.Path({str(marker)!r}).touch()"
    name = f'x"\n{code}#\'\'\'"""\r\n!function utils.evil'
    version = f'1"\ncustom_dataset: !function os.system\n\u2028{code}'
    root = make_bench(tmp_path / f'bench"""\n{code}#\ncustom_dataset: !function os.system')
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps(manifest | {"name": name, "version": version}))
    return root, name, version, marker


def test_a_crafted_name_version_and_folder_stay_data(crafted, tmp_path):
    root, name, version, marker = crafted
    out = tmp_path / "tasks"
    result = CliRunner().invoke(main, ["export", "lm-eval", "--bench", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output

    source = (out / "utils.py").read_text()
    tree = ast.parse(source)  # still Python, and only the hooks' own imports and assignments
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    assert imported == {"Path", "runtime_for"}
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Call) and "touch" in ast.dump(n)]
    assert repr(name) in source and str(marker) in source  # shown, as a literal in a comment

    for path in out.glob("*yaml"):
        data = yaml.load(path.read_text(), Loader=_TaggedLoader)  # noqa: S506 - our loader constructs tags as data
        assert set(functions(data)) <= HOOKS, path.name
        assert "custom_dataset" not in data or data["custom_dataset"] == ("!function", "utils.load_docs")
    group = yaml.load((out / "wafersage.yaml").read_text(), Loader=_TaggedLoader)  # noqa: S506
    assert group["group_alias"] == f"{name} (test)"
    config = json.loads((out / "wafersage_task.json").read_text())
    assert (config["bench_name"], config["bench_version"], Path(config["bench_dir"])) == (name, version,
                                                                                          root.resolve())


def test_lm_eval_loads_the_crafted_folder_without_running_injected_code(crafted, tmp_path):
    pytest.importorskip("lm_eval", reason="needs lm-eval (pip install -e '.[lmeval]')")
    from lm_eval.tasks import TaskManager

    root, name, _, marker = crafted
    out = tmp_path / "tasks"
    assert CliRunner().invoke(main, ["export", "lm-eval", "--bench", str(root), "--out", str(out)]).exit_code == 0
    loaded = TaskManager(include_path=str(out), include_defaults=False).load(["wafersage_all"])
    docs = list(loaded["tasks"]["wafersage_all"].test_docs())
    assert docs and not marker.exists()
