"""`wafersage report`: ranking with ties, the judge headline, the self-contained escaped HTML page, exports and
clear refusals. Real benchmark folders, real baseline runs, the real scorer and a judge on a real local server."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest
from click.testing import CliRunner

from judge_server import judge_reply, judge_yaml
from report_factory import INJECTED, make_runs, scored_run, tamper
from bench_factory import make_bench
from wafersage.cli import main
from wafersage.models.testing.server import ChatCompletionsServer
from wafersage.reports.charts import heatmap_values, pareto_front
from wafersage.reports.tables import to_csv, to_markdown
from wafersage.reports.html import render_html
from wafersage.reports.leaderboard import Leaderboard, build_leaderboard
from wafersage.reports.results import NotComparable, ReportInputError, load_result, load_results


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return make_runs(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def injected(runs, tmp_path_factory):
    """The oracle's run with a script-injecting answer everywhere and markup in the model name."""
    out = tmp_path_factory.mktemp("injected") / "evil"
    return tamper(runs["oracle"], out, lambda s, i: INJECTED, model_name="evil <b>bold</b> | pipe")


def _board(runs, *names):
    return build_leaderboard(load_results([runs[n] for n in names]))


def test_ranks_by_rule_score_and_marks_ties(runs):
    board = _board(runs, "constant", "oracle", "random", "oracle2")
    assert board.score_kind == "rule" and "rule score" in board.score_label and "judge" not in board.score_label
    assert [r.model for r in board.rows][:2] == ["oracle", "oracle (oracle2)"]  # same name: folder added
    values = [r.overall.value for r in board.rows]
    assert values == sorted(values, reverse=True) and values[0] == pytest.approx(10.0)
    assert board.rows[1].tied_with_above and board.rows[1].p_vs_above == pytest.approx(1.0)
    assert not board.rows[2].tied_with_above and board.rows[2].p_vs_above < 0.05
    assert board.rows[0].p_vs_above is None and [r.rank for r in board.rows] == [1, 2, 3, 4]
    assert board.rows[0].dimensions["spatial"].value == pytest.approx(10.0)
    assert board.rows[0].type_accuracy.value == 1.0 and board.rows[0].deployment == "baseline"


def test_judge_headline_when_every_run_was_judged(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("WAFERSAGE_TEST_JUDGE_KEY", "sk-test")
    judged = {}
    with ChatCompletionsServer(reply=judge_reply) as server:
        spec = judge_yaml(tmp_path, server.url)
        for name in ("oracle", "constant"):
            judged[name] = tamper(runs[name], tmp_path / name, lambda s, i: None)
            result = CliRunner().invoke(main, ["score", str(judged[name]), "--judge", spec])
            assert result.exit_code == 0, result.output
    board = build_leaderboard(load_results(judged.values()))
    assert board.score_kind == "judge" and "test-judge" in board.score_label
    assert board.rows[0].model == "oracle" and board.rows[0].overall == board.rows[0].judge
    assert board.rows[0].judge_name == "test-judge" and board.rows[0].n_unscored == 0
    html = render_html(board, load_results(judged.values()))
    assert "word overlap with the reference" in html  # the judge's rationale in the sample browser
    mixed = build_leaderboard(load_results([judged["oracle"], runs["constant"]]))
    assert mixed.score_kind == "rule"  # one run without a judge: rank everything by the rule score


def test_html_is_self_contained_and_escapes_model_output(runs, injected):
    results = load_results([runs["oracle"], runs["constant"], injected])
    html = render_html(build_leaderboard(results), results)
    assert "<script>window.__pwned" not in html and "<img src=x" not in html
    assert "evil &lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    data = re.search(r'<script type="application/json" id="wafersage-samples">(.*?)</script>', html, re.S).group(1)
    assert "<" not in data  # tojson escapes every < so nothing can close the block
    samples = json.loads(data)
    answers = {a["model"]: a["answer"] for item in samples["items"] for a in item["answers"]}
    assert answers["evil <b>bold</b> | pipe"] == INJECTED
    assert samples["images"] and all(v.startswith("data:image/png;base64,") for v in samples["images"].values())
    assert len(samples["items"]) == samples["n_total"] == 24  # 8 test wafers x 3 questions
    for pattern in (r'<link\b', r'\bsrc="(?!data:)', r'href="(?!#|data:)', r"@import", r"url\((?!#)"):
        assert not re.search(pattern, html), pattern
    assert html.count("<svg") == 1 + 3  # score-vs-cost plus one heatmap per model
    assert "Methodology" in html
    assert load_result(runs["oracle"]).summary.bench_hash in html


def test_exports(runs, injected):
    board = build_leaderboard(load_results([runs["oracle"], runs["random"], injected]))
    rows = list(csv.DictReader(io.StringIO(to_csv(board))))
    assert [r["model"] for r in rows] == [r.model for r in board.rows]
    assert float(rows[0]["overall"]) == pytest.approx(board.rows[0].overall.value)
    assert {"overall_low", "spatial", "latency_p50_s", "cost_per_1000_questions", "bench_hash"} <= set(rows[0])
    markdown = to_markdown(board)
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 3 and all(line.count(" | ") == table[0].count(" | ") for line in table)
    assert "evil <b>bold</b> \\| pipe" in markdown


def test_cli_writes_every_format(runs, tmp_path):
    out = tmp_path / "site" / "board.html"
    result = CliRunner().invoke(main, ["report", str(runs["oracle"]), str(runs["random"]), "--out", str(out),
                                       "--csv", str(tmp_path / "b.csv"), "--json", str(tmp_path / "b.json"),
                                       "--markdown", str(tmp_path / "b.md"), "--max-samples", "5"])
    assert result.exit_code == 0, result.output
    assert "oracle" in result.output and "rule score" in result.output
    board = Leaderboard.model_validate_json((tmp_path / "b.json").read_text())
    assert [r.model for r in board.rows] == ["oracle", "random"]
    assert "5 of 24 items" in out.read_text()
    assert (tmp_path / "b.csv").read_text().startswith("rank,")


def test_refuses_unscored_stale_and_mixed_runs(runs, tmp_path):
    unscored = tmp_path / "unscored"
    bench = runs["bench"]
    from wafersage.harness.run.runner import run_eval

    run_eval(bench, "constant", out_dir=unscored, progress=False)
    with pytest.raises(ReportInputError, match=r"not scored yet.*wafersage score"):
        load_result(unscored)
    stale = tamper(runs["constant"], tmp_path / "stale", lambda s, i: None)
    lines = (stale / "samples.jsonl").read_text().splitlines()
    (stale / "samples.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ReportInputError, match=r"scores.jsonl: out of date.*wafersage score"):
        load_result(stale)
    other = make_bench(tmp_path / "other", n_wafers=5, train_wafers=1, name="other-bench")
    foreign = scored_run(other, "oracle", tmp_path / "foreign")
    with pytest.raises(NotComparable, match="compare runs of one benchmark"):
        build_leaderboard(load_results([runs["oracle"], foreign]))
    result = CliRunner().invoke(main, ["report", str(runs["oracle"]), str(foreign), "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 1 and "other-bench" in result.output and not (tmp_path / "x.html").exists()


def test_pareto_front_and_heatmap(runs):
    assert pareto_front([(0, 2), (0, 5), (1, 4), (2, 9), (3, 8), (2, 9)]) == [1, 3]
    labels, categories, cells = heatmap_values(load_result(runs["constant"]), "rule")
    assert labels == ["Center"] and categories == ["defect_type", "spatial", "consistency"]
    oracle = heatmap_values(load_result(runs["oracle"]), "rule")[2]
    assert all(v == pytest.approx(10.0) for v in oracle.values())
    assert cells[("Center", "consistency")] < oracle[("Center", "consistency")]


def test_calibrated_runs_show_their_calibration_and_are_not_mixed(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("WAFERSAGE_TEST_JUDGE_KEY", "sk-test")
    calibration = tmp_path / "calibration.json"
    with ChatCompletionsServer(reply=judge_reply) as server:
        spec = judge_yaml(tmp_path, server.url)
        result = CliRunner().invoke(main, ["calibrate", "--run", str(runs["oracle"]), "--run", str(runs["random"]),
                                           "--run", str(runs["constant"]), "--judge", spec, "--folds", "2",
                                           "--iters", "0", "--screen", "5", "--out", str(calibration)])
        assert result.exit_code == 0, result.output
    calibrated = {}
    for name in ("oracle", "constant"):
        calibrated[name] = tamper(runs[name], tmp_path / name, lambda s, i: None)
        scored = CliRunner().invoke(main, ["score", str(calibrated[name]), "--calibration", str(calibration)])
        assert scored.exit_code == 0, scored.output
    cal_id = json.loads(calibration.read_text())["id"]
    out = tmp_path / "board.html"
    result = CliRunner().invoke(main, ["report", *map(str, calibrated.values()), "--out", str(out),
                                       "--calibration", str(calibration)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert f"rule score 0-10 (calibrated, {cal_id})" in html and "calibrated, out-of-fold" in html
    with pytest.raises(NotComparable, match="calibration"):
        build_leaderboard(load_results([calibrated["oracle"], runs["constant"]]))
    result = CliRunner().invoke(main, ["compare", str(runs["oracle"]), str(calibrated["oracle"])])
    assert result.exit_code == 2 and "calibration" in result.output
    result = CliRunner().invoke(main, ["report", str(runs["oracle"]), "--out", str(tmp_path / "x.html"),
                                       "--calibration", str(calibration)])
    assert result.exit_code == 1 and "is not the one the runs were scored with" in result.output


def test_first_heatmap_shown_is_not_the_uniformly_perfect_oracle(runs):
    results = load_results([runs["oracle"], runs["constant"]])
    page = render_html(build_leaderboard(results), results)
    shown = re.findall(r'<div class="heatmap" data-index="(\d+)">', page)
    assert shown == ["1"]  # the oracle ranks first (index 0) and stays hidden
    assert re.search(r'<option value="1" selected>constant</option>', page)
