"""The gate decides on family-wise error: per metric a one-sided paired non-inferiority test clustered by wafer,
Holm across the metrics, each verdict named in the JUnit; runs scored by another scorer are refused with the
command that rescores both."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as sps

from report_factory import make_runs, tamper
from wafersage.cli import main
from wafersage.harness import scoring
from wafersage.harness.scoring import score_run as score_run_module
from wafersage.harness.scoring.stats import noninferiority_test
from wafersage.reports.compare import MetricDelta, compare_runs, gate
from wafersage.reports.results import NotComparable, load_result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return make_runs(tmp_path_factory.mktemp("gate"))


def test_the_test_is_a_paired_t_on_wafer_totals():
    rng = np.random.default_rng(0)
    wafers = np.repeat(np.arange(40), 5)
    diff = rng.normal(-0.1, 1.0, 40)[wafers] + rng.normal(0, 0.5, wafers.size)  # a shared shift per wafer
    test = noninferiority_test(diff, wafers, margin=0.2)
    means = np.bincount(wafers, diff) / 5  # equal items per wafer: the paired t-test on wafer means
    expected = sps.ttest_1samp(means, -0.2, alternative="less").pvalue
    assert test.p_value == pytest.approx(expected, rel=1e-9) and test.n_wafers == 40 and test.n_items == 200
    assert test.low < test.difference < test.high
    naive = sps.ttest_1samp(diff, -0.2, alternative="less").pvalue  # items as if independent: overconfident
    assert abs(test.p_value - 0.5) < abs(naive - 0.5)


def test_degenerate_inputs_give_clear_p_values():
    assert noninferiority_test([0.0, 0.0, 0.0], ["a", "b", "c"], 0.0).p_value == 1.0  # no change at all
    assert noninferiority_test([-1.0, -1.0], ["a", "b"], 0.5).p_value == 0.0  # every wafer worse beyond the drop
    assert noninferiority_test([-1.0, -1.0], ["a", "b"], 2.0).p_value == 1.0  # within the drop
    assert noninferiority_test([-5.0, -5.0], ["a", "a"], 0.0).p_value == 1.0  # one wafer: no test


def test_holm_decides_and_a_same_model_rarely_fails():
    rng = np.random.default_rng(1)
    wafers = np.repeat(np.arange(60), 8)
    fails = 0
    for _ in range(400):  # four noisy metrics of a candidate exactly as good as the base
        deltas = [MetricDelta(metric=str(m), base=0, candidate=0, n_items=wafers.size, n_wafers=60, p_holm=1,
                              **_test(rng.normal(0, 1, 60)[wafers] + rng.normal(0, 2, wafers.size), wafers))
                  for m in range(4)]
        fails += any(d.regressed for d in gate(deltas, 0.05))
    assert fails / 400 <= 0.06
    worse = [MetricDelta(metric="a", base=0, candidate=0, n_items=4, n_wafers=4, p_holm=1, difference=-1,
                         low=None, high=None, p_value=0.03),
             MetricDelta(metric="b", base=0, candidate=0, n_items=4, n_wafers=4, p_holm=1, difference=-1,
                         low=None, high=None, p_value=0.04)]
    assert [d.regressed for d in gate(worse, 0.05)] == [False, False]  # 0.03 alone is not enough after Holm


def _test(diff, wafers) -> dict:
    test = noninferiority_test(diff, wafers, 0.0)
    return dict(difference=test.difference, low=test.low, high=test.high, p_value=test.p_value)


def test_junit_names_each_verdict(runs, tmp_path):
    junit = tmp_path / "gate.xml"
    result = CliRunner().invoke(main, ["compare", str(runs["oracle"]), str(runs["worse"]), "--junit", str(junit)])
    assert result.exit_code == 1 and "Holm-adjusted across" in " ".join(result.output.split())
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    verdicts = {name: case.find("properties/property[@name='verdict']").get("value")
                for name, case in cases.items() if case.find("properties") is not None}
    assert verdicts["overall"] == "regressed" and verdicts.keys() == {"overall", "spatial"}
    assert "REGRESSED: worse than base by more than 0.0" in cases["overall"].find("failure").get("message")
    same = compare_runs(load_result(runs["oracle"]), load_result(runs["oracle2"]))
    assert not same.regressed and all(d.p_holm == 1.0 for d in same.deltas)


def test_runs_scored_by_another_scorer_are_refused_with_the_rescore_command(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(score_run_module, "SCORER_VERSION", "2-test")
    newer = tamper(runs["oracle"], tmp_path / "newer", lambda s, i: None)
    assert json.loads((newer / "summary.json").read_text())["scorer_version"] == "2-test"
    result = CliRunner().invoke(main, ["compare", str(runs["oracle"]), str(newer)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and f"scorer version {scoring.SCORER_VERSION} " in text and "2-test" in text
    assert f"wafersage score {runs['oracle']} && wafersage score {newer}" in text


def test_summaries_record_the_scorer_and_old_ones_are_refused(runs, tmp_path):
    summary = json.loads((runs["oracle"] / "summary.json").read_text())
    assert summary["scorer_version"] == scoring.SCORER_VERSION and len(summary["constants_sha256"]) == 64
    old = tamper(runs["oracle"], tmp_path / "old", lambda s, i: None)
    (old / "summary.json").write_text(json.dumps({**summary, "scorer_version": None}))
    with pytest.raises(NotComparable, match="did not record its version.*rescore both: wafersage score"):
        compare_runs(load_result(runs["oracle"]), load_result(old))
    changed = tamper(runs["oracle"], tmp_path / "changed", lambda s, i: None)
    (changed / "summary.json").write_text(json.dumps({**summary, "constants_sha256": "0" * 64}))
    with pytest.raises(NotComparable, match="constants 000000000000"):
        compare_runs(load_result(changed), load_result(runs["oracle"]))
