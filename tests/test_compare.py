"""`wafersage compare`, the regression gate: exit 1 for a candidate made worse on purpose, 0 for an equal one,
2 (refused) for another benchmark, judge or calibration; Markdown and JUnit outputs."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from bench_factory import make_bench
from judge_server import judge_reply, judge_yaml
from report_factory import make_runs, scored_run, tamper
from wafersage.cli import main
from wafersage.models.testing.server import ChatCompletionsServer
from wafersage.reports.compare import compare_runs
from wafersage.reports.results import NotComparable, load_result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return make_runs(tmp_path_factory.mktemp("compare"))


def gate(*args):
    return CliRunner().invoke(main, ["compare", *map(str, args)])


def test_worse_candidate_fails_the_gate(runs, tmp_path):
    junit, markdown = tmp_path / "gate.xml", tmp_path / "gate.md"
    result = gate(runs["oracle"], runs["worse"], "--junit", junit, "--markdown", markdown)
    assert result.exit_code == 1, result.output
    assert "REGRESSION" in result.output and "overall" in result.output
    suite = ET.parse(junit).getroot()
    assert suite.get("name") == "wafersage-compare" and int(suite.get("failures")) >= 1
    failed = {case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None}
    assert "overall" in failed
    assert "| overall |" in markdown.read_text() and "REGRESSION" in markdown.read_text()


def test_equal_candidate_passes(runs, tmp_path):
    junit = tmp_path / "gate.xml"
    result = gate(runs["oracle"], runs["oracle2"], "--junit", junit)
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "0" and len(list(suite.iter("testcase"))) >= 2  # overall + spatial


def test_deltas_are_paired_and_the_drop_allowance_works(runs):
    base, worse = load_result(runs["oracle"]), load_result(runs["worse"])
    comparison = compare_runs(base, worse)
    overall = comparison.deltas[0]
    assert overall.metric == "overall" and overall.base == pytest.approx(10.0)
    assert overall.difference == pytest.approx(overall.candidate - overall.base) and overall.difference < -3
    assert overall.high < 0 and overall.regressed and overall.p_holm >= overall.p_value
    assert overall.n_items == 24 and overall.n_wafers == 8
    assert not compare_runs(base, worse, max_drop=10.0).regressed  # no drop can exceed the whole scale
    improved = compare_runs(worse, base)  # the other way round: better, never a regression
    assert not improved.regressed and improved.deltas[0].low > 0


def test_refuses_another_benchmark(runs, tmp_path):
    other = make_bench(tmp_path / "other", n_wafers=10, train_wafers=2, name="tiny-bench-2", image_scale=9)
    foreign = scored_run(other, "oracle", tmp_path / "foreign")
    result = gate(runs["oracle"], foreign)
    assert result.exit_code == 2
    assert "refused" in result.output and "hash" in result.output


def test_refuses_judged_against_unjudged_and_different_judges(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("WAFERSAGE_TEST_JUDGE_KEY", "sk-test")
    judged = tamper(runs["oracle"], tmp_path / "judged", lambda s, i: None)
    other = tamper(runs["oracle"], tmp_path / "judged_other", lambda s, i: None)
    with ChatCompletionsServer(reply=judge_reply) as server:
        spec = judge_yaml(tmp_path, server.url)
        assert CliRunner().invoke(main, ["score", str(judged), "--judge", spec]).exit_code == 0
        assert CliRunner().invoke(main, ["score", str(other), "--judge", spec, "--judge-samples", "2"]).exit_code == 0
    result = gate(runs["oracle"], judged)
    assert result.exit_code == 2 and "--judge" in result.output
    with pytest.raises(NotComparable, match="different judges"):
        compare_runs(load_result(judged), load_result(other))
    same = compare_runs(load_result(judged), load_result(judged))
    assert same.score_kind == "judge" and not same.regressed


def test_unscored_run_is_refused(runs, tmp_path):
    from wafersage.harness.run.runner import run_eval

    run_eval(runs["bench"], "constant", out_dir=tmp_path / "raw", progress=False)
    result = gate(runs["oracle"], tmp_path / "raw")
    assert result.exit_code == 2 and "wafersage score" in result.output
