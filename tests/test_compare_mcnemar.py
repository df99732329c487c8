"""`wafersage compare` tests defect-type and consistency accuracy with the exact McNemar test (Holm over both),
in its tables, Markdown and JUnit, without letting them fail the score gate."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner
from report_factory import scored_run, tamper
from scipy.stats import binomtest

from bench_factory import make_bench
from wafersage.cli import main
from wafersage.reports.compare import compare_runs, to_junit, to_markdown, verdict
from wafersage.reports.results import load_result
from wafersage.tasks.bench.folder import Benchmark


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mcnemar")
    bench = make_bench(root / "bench", n_wafers=10, train_wafers=2)
    category = {it.id: it.category for it in Benchmark.load(bench).items("test")}
    oracle = scored_run(bench, "oracle", root / "oracle")
    no_types = tamper(oracle, root / "no_types",
                      lambda s, i: "I cannot tell." if category[s.item_id] == "defect_type" else None)
    first_yes_no = next(i for i, c in category.items() if c == "consistency")
    one_wrong = tamper(oracle, root / "one_wrong", lambda s, i: "" if s.item_id == first_yes_no else None)
    return {"oracle": oracle, "no_types": no_types, "one_wrong": one_wrong}


def test_mcnemar_counts_discordant_items_and_holm_adjusts(runs):
    c = compare_runs(load_result(runs["oracle"]), load_result(runs["no_types"]), max_drop=10.0)
    tests = {t.metric: t for t in c.accuracy}
    types, consistency = tests["defect-type accuracy"], tests["consistency accuracy"]
    assert (types.base, types.candidate, types.base_only, types.candidate_only, types.n_items) == (1.0, 0.0, 8, 0, 8)
    assert types.p_value == pytest.approx(binomtest(8, 8, 0.5).pvalue)
    assert consistency.base_only == consistency.candidate_only == 0 and consistency.p_value == 1.0
    assert types.p_holm == pytest.approx(2 * types.p_value) and consistency.p_holm == 1.0
    assert types.worse(c.alpha) and not consistency.worse(c.alpha)
    assert not c.regressed  # the allowed drop covers the score; the accuracy test is reported, never gating
    assert "significantly lower defect-type accuracy" in verdict(c)
    markdown = to_markdown(c)
    assert "McNemar" in markdown and "| defect-type accuracy | 100.0% | 0.0% | 8 | 0 |" in markdown
    suite = ET.fromstring(to_junit(c).split("?>", 1)[1])
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["defect-type accuracy"].find("failure") is None and suite.get("tests") == str(len(cases))


def test_one_discordant_item_is_not_significant_and_the_cli_prints_the_table(runs):
    c = compare_runs(load_result(runs["oracle"]), load_result(runs["one_wrong"]))
    consistency = {t.metric: t for t in c.accuracy}["consistency accuracy"]
    assert (consistency.base_only, consistency.candidate_only, consistency.p_value) == (1, 0, 1.0)
    result = CliRunner().invoke(main, ["compare", str(runs["oracle"]), str(runs["no_types"])])
    output = " ".join(result.output.split())
    assert result.exit_code == 1 and "exact McNemar test" in output and "significantly lower defect-type" in output
