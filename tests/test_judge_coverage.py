"""The judge as a measuring instrument, coverage: a judge endpoint that answers only some items (HTTP 404 "no grade"
for the others, served by the real test server) makes `score` exit 1 and name the fix; the page, the terminal table
and the exports rank on the items every model has a judge score for and show each model's coverage; `compare`
gates on the common items and warns; `--retry-unscored` re-asks only the unscored answers."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from click.testing import CliRunner

from judge_server import judge_mode, judge_yaml
from wafersage.cli import main
from wafersage.harness.run.runner import run_eval
from wafersage.harness.scoring.stats import mean_ci
from wafersage.models.testing.server import ChatCompletionsServer

LIMIT = 80
MODELS = ("oracle", "specialist", "constant")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


class SwitchableJudge:
    """The test server's judge in a mode that a test can change between calls (same endpoint, same identity)."""

    def __init__(self, mode: str):
        self.mode = mode

    def __call__(self, payload: dict) -> str:
        return judge_mode(self.mode)(payload)


@pytest.fixture(scope="module")
def judged(scorer_bench, tmp_path_factory):
    """Runs of three baselines scored with a judge that grades only about half of the answers: (root, spec,
    server, judge, score results)."""
    root = tmp_path_factory.mktemp("coverage")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("WAFERSAGE_TEST_JUDGE_KEY", "sk-test")
    judge = SwitchableJudge("partial")
    with ChatCompletionsServer(reply=judge) as server:
        spec = judge_yaml(root, server.url, name="replayed-judge")
        results = {}
        for model in MODELS:
            run_eval(scorer_bench, model, out_dir=root / model, limit=LIMIT, progress=False)
            results[model] = invoke("score", root / model, "--judge", spec)
        yield root, spec, server, judge, results
    monkeypatch.undo()


def _judge_values(folder) -> dict[str, float]:
    rows = [json.loads(line) for line in (folder / "scores.jsonl").read_text().splitlines()]
    return {r["item_id"]: (r["judge"]["score"] if r["status"] == "scored" else 0.0) for r in rows
            if r["status"] == "failed" or r["judge"]["status"] == "scored"}


def test_score_exits_non_zero_below_the_coverage_threshold_and_names_the_fix(judged):
    root, spec, server, _, results = judged
    for model, result in results.items():
        summary = json.loads((root / model / "summary.json").read_text())
        assert 0.2 < summary["judge_coverage"] < 0.8, (model, summary["judge_coverage"])
        assert summary["n_judge_unscored"] == round(LIMIT * (1 - summary["judge_coverage"]))
        assert any("HTTP 404" in reason for reason in summary["judge_unscored_reasons"])
        assert result.exit_code == 1, result.output
        assert "judge coverage too low" in result.output and "--retry-unscored" in result.output
    assert server.counts["http_404"] > 0
    assert invoke("score", root / "oracle", "--judge", spec, "--min-judge-coverage", "0.2").exit_code == 0


def test_page_and_terminal_rank_on_common_items_and_show_coverage(judged, tmp_path):
    root = judged[0]
    values = {model: _judge_values(root / model) for model in MODELS}
    common = set.intersection(*(set(v) for v in values.values()))
    assert 0 < len(common) < min(len(v) for v in values.values())  # the runs' judged items really differ
    page, board_json = tmp_path / "board.html", tmp_path / "board.json"
    result = invoke("report", *(root / m for m in MODELS), "--out", page, "--json", board_json)
    assert result.exit_code == 0, result.output
    board = json.loads(board_json.read_text())
    assert board["score_kind"] == "judge" and board["n_common"] == len(common)
    wafers = {json.loads(line)["item_id"]: json.loads(line)["wafer_id"]
              for line in (root / "oracle" / "scores.jsonl").read_text().splitlines()}
    for row in board["rows"]:
        mine = values[row["model"]]
        expected = mean_ci([mine[i] for i in sorted(common)], [wafers[i] for i in sorted(common)])
        assert row["overall"]["n"] == len(common) and row["overall"]["value"] == pytest.approx(expected.value)
        summary = json.loads((root / row["model"] / "summary.json").read_text())
        assert row["judge_coverage"] == summary["judge_coverage"] and row["n_unscored"] == summary["n_judge_unscored"]
        assert any("LOW JUDGE COVERAGE" in flag for flag in row["flags"])
    assert [r["model"] for r in board["rows"]] == sorted(
        MODELS, key=lambda m: -sum(values[m][i] for i in common))
    html = page.read_text()
    assert f"on the {len(common)} answers every model has a judge score for" in html
    assert "Every run was graded by the same LLM judge" in html and "LOW JUDGE COVERAGE" in html
    for row in board["rows"]:
        cells = re.search(rf'<tr data-model="{row["model"]}">(.*?)</tr>', html, re.S).group(1)
        assert f"{100 * row['judge_coverage']:.0f}%" in cells and f">{row['n_unscored']}<" in cells
    terminal = result.output
    assert f"judge-ranked on the {len(common)} answers" in terminal and "judged" in terminal
    for row in board["rows"]:
        assert re.search(rf"{row['model']}.*\s{100 * row['judge_coverage']:.0f}% \({row['n_unscored']}\)", terminal)


def test_refuse_policy_and_compare_on_common_items(judged, tmp_path):
    root = judged[0]
    refused = invoke("report", root / "oracle", root / "constant", "--out", tmp_path / "x.html",
                     "--on-low-coverage", "refuse")
    assert refused.exit_code != 0 and "judge coverage below 95%" in refused.output
    assert "--retry-unscored" in refused.output and not (tmp_path / "x.html").exists()
    markdown = tmp_path / "gate.md"
    gate = invoke("compare", root / "oracle", root / "constant", "--markdown", markdown)
    assert gate.exit_code in (0, 1) and "LOW JUDGE COVERAGE" in gate.output
    shared = set(_judge_values(root / "oracle")) & set(_judge_values(root / "constant"))
    overall = next(line for line in markdown.read_text().splitlines() if line.startswith("| overall"))
    assert f"| {len(shared)} |" in overall and "gated on the items both have a judge score for" in markdown.read_text()
    assert invoke("compare", root / "oracle", root / "constant", "--on-low-coverage", "refuse").exit_code == 2


def test_retry_unscored_re_asks_only_the_unscored_answers(judged, tmp_path):
    root, spec, server, judge, _ = judged
    run = tmp_path / "oracle"
    shutil.copytree(root / "oracle", run)
    before = json.loads((run / "summary.json").read_text())
    kept = {k: v for k, v in _judge_values(run).items()}
    judge.mode = "overlap"  # the endpoint now grades every item
    try:
        asked = server.chat_requests
        result = invoke("score", run, "--judge", spec, "--retry-unscored")
        assert result.exit_code == 0, result.output
        assert server.chat_requests - asked == before["n_judge_unscored"]
    finally:
        judge.mode = "partial"
    after = json.loads((run / "summary.json").read_text())
    assert after["judge_coverage"] == 1.0 and after["n_judge_unscored"] == 0
    assert all(_judge_values(run)[k] == v for k, v in kept.items())  # scored verdicts were kept
    other = judge_yaml(tmp_path, server.url, name="another-judge")
    refused = invoke("score", run, "--judge", other, "--retry-unscored")
    assert refused.exit_code != 0 and "re-asks the same judges only" in refused.output
