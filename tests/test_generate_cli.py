"""``wafersage maps generate`` and ``wafersage maps show`` through the real command line group."""
from __future__ import annotations

from click.testing import CliRunner
from PIL import Image

from wafersage.cli import main
from wafersage.tasks.maps.store import read_store


def run(*args: str):
    return CliRunner().invoke(main, ["maps", *args], catch_exceptions=False)


def test_generate_writes_a_deterministic_store(tmp_path):
    out = tmp_path / "store"
    result = run("generate", "--n", "12", "--seed", "4", "--patterns", "center,Edge_Loc", "--size", "40x36",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    maps = list(read_store(out))
    assert len(maps) == 12 and {m.shape for m in maps} == {(40, 36)}
    assert {m.labels for m in maps} <= {("Center",), ("Edge-Loc",), ("Center", "Edge-Loc")}
    assert maps[0].id == "gen-4-000000" and all(m.truth for m in maps)
    again = run("generate", "--n", "12", "--seed", "4", "--patterns", "center,Edge_Loc", "--size", "40x36",
                "--out", str(tmp_path / "again"))
    assert again.exit_code == 0
    assert (out / "index.jsonl").read_bytes() == (tmp_path / "again" / "index.jsonl").read_bytes()


def test_generate_refuses_to_overwrite_and_bad_options(tmp_path):
    out = tmp_path / "s"
    assert run("generate", "--n", "3", "--out", str(out)).exit_code == 0
    before = (out / "index.jsonl").read_bytes()
    refused = run("generate", "--n", "2", "--out", str(out))
    assert refused.exit_code != 0 and "--force" in refused.output
    assert (out / "index.jsonl").read_bytes() == before, "nothing already made is lost"
    assert run("generate", "--n", "2", "--out", str(out), "--force").exit_code == 0
    assert len(list(read_store(out))) == 2
    bad_size = run("generate", "--n", "2", "--size", "52by52", "--out", str(tmp_path / "x"))
    assert bad_size.exit_code == 2 and "ROWSxCOLUMNS" in bad_size.output
    bad_label = run("generate", "--n", "2", "--patterns", "Centre", "--out", str(tmp_path / "y"))
    assert bad_label.exit_code == 2 and "unknown defect label 'Centre'" in bad_label.output
    assert not (tmp_path / "y").exists()


def test_show_draws_a_contact_sheet_from_a_store_or_benchmark(tmp_path):
    store = tmp_path / "bench" / "maps"
    assert run("generate", "--n", "10", "--seed", "1", "--out", str(store)).exit_code == 0
    sheet = tmp_path / "sheet.png"
    result = run("show", str(tmp_path / "bench"), "--out", str(sheet), "--n", "6", "--columns", "3", "--cell", "64")
    assert result.exit_code == 0, result.output
    with Image.open(sheet) as image:
        assert image.width == 3 * (64 + 4) + 4
    missing = run("show", str(tmp_path), "--out", str(tmp_path / "no.png"))
    assert missing.exit_code != 0 and "no map store here" in missing.output


def test_help_of_each_command():
    for command in ("generate", "show"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "--out" in result.output
