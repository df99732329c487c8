"""`wafersage score` and `wafersage calibrate` end to end: real runs of the built-in baselines, a judge served by
the real test server, failures counted, calibration applied."""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from judge_server import judge_reply, judge_yaml
from wafersage.cli import main
from wafersage.harness.run.records import Sample
from wafersage.harness.run.runner import run_eval
from wafersage.models.testing.server import ChatCompletionsServer

LIMIT = 100


@pytest.fixture(scope="module")
def runs(scorer_bench, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for model in ("oracle", "random", "constant"):
        run_eval(scorer_bench, model, out_dir=root / model, limit=LIMIT)
    broken = root / "broken"  # the oracle with two failed calls
    shutil.copytree(root / "oracle", broken)
    lines = (broken / "samples.jsonl").read_text().splitlines()
    for i in (0, 5):
        sample = Sample.model_validate_json(lines[i])
        sample.response.text, sample.response.error = "", "HTTP 500 after 3 retries"
        lines[i] = sample.model_dump_json()
    (broken / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture()
def judge_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("WAFERSAGE_TEST_JUDGE_KEY", "sk-test")
    with ChatCompletionsServer(reply=judge_reply) as server:
        yield judge_yaml(tmp_path, server.url)


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def test_score_counts_failures_and_writes_both_files(runs):
    result = invoke("score", runs / "broken")
    assert result.exit_code == 0, result.output
    summary = json.loads((runs / "broken" / "summary.json").read_text())
    assert summary["n_failed"] == 2 and summary["n_items"] == LIMIT
    assert summary["rule"]["value"] < summary["rule_answered"]["value"] == pytest.approx(10.0)
    assert summary["rule"]["value"] == pytest.approx(10.0 * (LIMIT - 2) / LIMIT)
    rows = [json.loads(line) for line in (runs / "broken" / "scores.jsonl").read_text().splitlines()]
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 2 and failed[0]["error"].startswith("HTTP 500") and failed[0]["rule_score"] == 0
    ok = next(r for r in rows if r["status"] == "scored" and r["category"] == "spatial")
    assert ok["rule"]["explanation"]["matched"] and ok["rule"]["explanation"]["missed"] == []
    assert set(summary["per_category"]) <= {"defect_type", "spatial", "morphology", "root_cause", "consistency"}
    types = [r for r in rows if r["category"] == "defect_type"]  # a failed answer counts as wrong
    expected = sum(r["status"] == "scored" for r in types) / len(types)
    assert summary["type_accuracy"]["value"] == pytest.approx(expected) and expected < 1


def test_score_with_judge_then_calibrate_then_score_calibrated(runs, judge_spec, tmp_path):
    result = invoke("score", runs / "random", "--judge", judge_spec, "--judge-samples", "1")
    assert result.exit_code == 0, result.output
    summary = json.loads((runs / "random" / "summary.json").read_text())
    assert summary["judge"]["value"] > 0 and summary["n_judge_unscored"] == 0
    assert summary["judge_identity"]["name"] == "test-judge" and len(summary["judge_template_sha256"]) == 64
    row = json.loads((runs / "random" / "scores.jsonl").read_text().splitlines()[0])
    assert row["judge"]["status"] == "scored" and row["judge"]["rationale"]

    out = tmp_path / "calibration.json"
    result = invoke("calibrate", "--run", runs / "oracle", "--run", runs / "random", "--run", runs / "constant",
                    "--judge", judge_spec, "--folds", "2", "--iters", "2", "--screen", "20", "--out", out)
    assert result.exit_code == 0, result.output
    calibration = json.loads(out.read_text())
    assert calibration["n_items"] == 3 * LIMIT and calibration["bench_hash"]
    assert -1 <= calibration["out_of_fold"]["spearman"]["value"] <= 1
    assert calibration["judge"]["template_sha256"] == summary["judge_template_sha256"]

    result = invoke("score", runs / "constant", "--calibration", out)
    assert result.exit_code == 0, result.output
    calibrated = json.loads((runs / "constant" / "summary.json").read_text())
    assert calibrated["calibration_id"] == calibration["id"] and calibrated["rule_default"] is not None
    assert calibrated["constants"]["partial_floor"] == pytest.approx(calibration["constants"]["partial_floor"])


def test_clear_errors(runs, tmp_path):
    result = invoke("score", runs / "oracle", "--calibration", tmp_path / "nope.json")
    assert result.exit_code != 0 and "calibration file not found" in result.output
    result = invoke("score", runs / "oracle", "--judge", "oracel")
    assert result.exit_code != 0 and "Did you mean: oracle" in result.output


def test_only_the_solution_block_is_scored():
    from wafersage.harness.scoring.answers import scored_answer

    assert scored_answer("<REASONING>center? edge?</REASONING><SOLUTION>Failures ring the edge.</SOLUTION>") == \
        "Failures ring the edge."
    assert scored_answer("<REASONING>thinking about the center") == ""
    assert scored_answer("Plain answer at 3 o'clock.") == "Plain answer at 3 o'clock."
