"""The README's layout table is the import rule: every import inside the package must be one the table allows."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "wafersage"
BASE = ("__init__.py", "configio.py")


def layout_rows(readme: str) -> dict[str, tuple[tuple[str, ...], str]]:
    """room -> (the paths it covers, its 'may import' cell), from the table between the layout markers."""
    table = readme.split("<!-- layout-table -->")[1].split("<!-- /layout-table -->")[0]
    rows = {}
    for line in table.strip().splitlines()[2:]:
        folder, _, allowed = (cell.strip() for cell in line.strip().strip("|").split("|"))
        paths = tuple(re.findall(r"`([^`]+)`", folder))
        rows[paths[0]] = (paths, allowed)
    return rows


def room_of(rel: str, rows: dict[str, tuple[tuple[str, ...], str]]) -> str:
    """The row whose path is the longest prefix of ``rel`` (a path under wafersage/)."""
    best, length = ".", 0
    for room, (paths, _) in rows.items():
        for p in paths:
            if p == ".":
                continue
            if (rel == p or rel.startswith(p + "/")) and len(p) > length:
                best, length = room, len(p)
    return best


def allows(rows: dict[str, tuple[tuple[str, ...], str]], source: str, target: str) -> bool:
    if source == target:
        return True
    cell = rows[source][1]
    if cell == "everything":
        return True
    if target == BASE[0]:
        return "base" in cell.split(", ")
    for entry in re.findall(r"`([^`]+)`", cell):
        if entry == target or (entry.endswith("/*") and target.startswith(entry[:-1])):
            return True
    return False


def imported_modules(source: str, rel: str) -> list[str]:
    """Absolute wafersage module names ``source`` (the file at ``rel`` under wafersage/) imports."""
    package = ["wafersage", *Path(rel).parent.parts]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("wafersage"):
                found += [module] if node.module else [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("wafersage")]
    return found


def module_file(module: str) -> str | None:
    """The path under wafersage/ of a module (or of the module an imported name lives in)."""
    for name in (module, module.rsplit(".", 1)[0]):
        p = ROOT / Path(*name.split("."))
        for candidate in (p.with_suffix(".py"), p / "__init__.py"):
            if candidate.exists():
                return candidate.relative_to(PACKAGE).as_posix()
    return None


def violations(rows, files: dict[str, str]) -> list[str]:
    """'source imports target' for every import of ``files`` (rel path -> source) the table does not allow."""
    out = []
    for rel, source in files.items():
        for module in imported_modules(source, rel):
            target_file = module_file(module)
            assert target_file is not None, f"{rel}: cannot find {module}"
            src, dst = room_of(rel, rows), room_of(target_file, rows)
            if not allows(rows, src, dst):
                out.append(f"wafersage/{rel} ({src}) imports {module} ({dst})")
    return out


@pytest.fixture(scope="module")
def rows():
    return layout_rows((ROOT / "README.md").read_text(encoding="utf-8"))


def package_files() -> dict[str, str]:
    return {p.relative_to(PACKAGE).as_posix(): p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")}


def test_every_import_follows_the_readme_layout(rows):
    assert violations(rows, package_files()) == []


def test_an_upward_import_is_caught(rows):
    upward = {"tasks/maps/wafer.py": "from ..geometry.measure import measure\n",
              "models/base.py": "from ..harness.scoring.rules import RuleScorer\n",
              "tasks/geometry/measure.py": "from ..synth import vocab\n"}
    found = violations(rows, upward)
    assert len(found) == 3, found


def test_folders_and_modules_stay_small_and_the_table_names_real_paths(rows):
    for folder in sorted({p.parent for p in PACKAGE.rglob("*.py")}):
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= 15, f"{folder.relative_to(ROOT)} has {len(modules)} modules; split it"
    for path in PACKAGE.rglob("*.py"):
        n = len(path.read_text(encoding="utf-8").splitlines())
        assert n <= 420, f"{path.relative_to(ROOT)} has {n} lines; split it"
    for paths, _ in rows.values():
        for p in paths:
            assert (PACKAGE / p).exists(), f"the README's layout names wafersage/{p}, which does not exist"
