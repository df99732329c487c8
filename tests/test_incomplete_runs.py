"""An interrupted run is scored with its missing answers as failed (and a warning), and the report flags it and a
run over another item set on the page, in the exports and in the terminal table."""
from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
from click.testing import CliRunner
from report_factory import scored_run

from bench_factory import make_bench
from wafersage.cli import main
from wafersage.harness.run.runner import run_eval
from wafersage.harness.scoring.score_run import IncompleteRunWarning, Summary, score_run
from wafersage.reports.cli import write_report
from wafersage.reports.results import load_result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("incomplete")
    bench = make_bench(root / "bench", n_wafers=10, train_wafers=2)
    full = scored_run(bench, "oracle", root / "full")
    stopped = root / "stopped"
    shutil.copytree(full, stopped)
    for stale in ("scores.jsonl", "summary.json"):
        (stopped / stale).unlink()
    lines = (stopped / "samples.jsonl").read_text().splitlines()
    (stopped / "samples.jsonl").write_text("\n".join(lines[:6]) + "\n")  # killed after 6 of 24 answers
    run_eval(bench, "constant", limit=6, out_dir=root / "limited", progress=False)
    score_run(root / "limited", progress=False)
    return {"bench": bench, "full": full, "stopped": stopped, "limited": root / "limited", "n": len(lines)}


def test_missing_answers_count_as_failed_with_a_warning(runs):
    n = runs["n"]
    result = CliRunner().invoke(main, ["score", str(runs["stopped"])])
    assert result.exit_code == 0, result.output
    assert f"incomplete run: {n - 6} of {n} expected answers" in " ".join(result.output.split())
    summary = Summary.model_validate_json((runs["stopped"] / "summary.json").read_text())
    full = Summary.model_validate_json((runs["full"] / "summary.json").read_text())
    assert (summary.n_missing, summary.n_expected, summary.n_items, summary.n_failed) == (n - 6, n, n, n - 6)
    assert full.n_missing == 0 and full.n_expected == n and full.rule.value == pytest.approx(10.0)
    assert summary.rule.value == pytest.approx(10.0 * 6 / n)  # the 18 missing answers are zeros, not left out
    assert summary.rule_answered.value == pytest.approx(10.0)
    scores = [json.loads(line) for line in (runs["stopped"] / "scores.jsonl").read_text().splitlines()]
    assert sum(s["missing"] for s in scores) == n - 6 and all(s["status"] == "failed" for s in scores if s["missing"])
    with pytest.warns(IncompleteRunWarning, match="Rerun the same 'wafersage eval' command"):
        score_run(runs["stopped"], progress=False)


def test_report_flags_incomplete_and_other_item_sets(runs, tmp_path):
    with pytest.warns(IncompleteRunWarning):
        score_run(runs["stopped"], progress=False)
    assert load_result(runs["stopped"]).summary.n_missing == runs["n"] - 6  # a scored partial run is not "stale"
    board = write_report([runs["full"], runs["stopped"], runs["limited"]], tmp_path / "board.html",
                         csv_path=tmp_path / "b.csv", markdown_path=tmp_path / "b.md")
    flags = {row.folder.split("/")[-1]: row.flags for row in board.rows}
    assert flags["full"] == []
    assert flags["stopped"] == [f"incomplete: {runs['n'] - 6} of {runs['n']} answers missing (counted as failed)"]
    assert len(flags["limited"]) == 1 and flags["limited"][0].startswith(f"other items: 6 of the {runs['n']} items")
    assert len(board.warnings) == 2
    html = (tmp_path / "board.html").read_text()
    assert 'id="board-warnings"' in html and html.count('class="flag warn"') == 2
    assert f"({runs['n'] - 6} missing)" in html
    assert (tmp_path / "b.md").read_text().count("⚠") == 4  # two rows, two notes
    rows = list(csv.DictReader(io.StringIO((tmp_path / "b.csv").read_text())))
    assert sorted(bool(r["flags"]) for r in rows) == [False, True, True]
    result = CliRunner().invoke(main, ["report", str(runs["full"]), str(runs["limited"]), "--out",
                                       str(tmp_path / "two.html")])
    assert result.exit_code == 0 and "⚠" in result.output and "other items" in " ".join(result.output.split())
    board = write_report([runs["full"]], tmp_path / "one.html")
    assert board.warnings == [] and 'id="board-warnings"' not in (tmp_path / "one.html").read_text()
