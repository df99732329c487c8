"""Several judges, spread that means something, and a judge checked before it is trusted: two judges served by the
real test server in two modes (alpha against a hand computation, flagged disagreements on the page, a different judge
set refused by compare), noisy and deterministic judges under --judge-samples 5, an endpoint that takes no
temperature, and `agreement --json` feeding `report --judge-agreement`."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from judge_server import judge_mode, judge_yaml
from rule_factory import center_rubric
from wafersage.cli import main
from wafersage.harness.run.runner import run_eval
from wafersage.harness.scoring.judging.judge import JudgeScore
from wafersage.harness.scoring.judging.judges import JudgePanel, JudgePanelSettings
from wafersage.harness.scoring.stats import _alpha_from_sums, _alpha_sums, alpha_ci, format_estimate, interval_alpha
from wafersage.models.testing.server import ChatCompletionsServer

LIMIT = 40


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def hand_alpha(ratings: np.ndarray) -> float:
    """Interval Krippendorff's alpha by its definition, 1 - D_o / D_e, for judges x answers without gaps: D_o
    averages (v - v')^2 over the ordered pairs of ratings of one answer, D_e over all ordered pairs of ratings."""
    values = ratings.T
    n = values.size
    observed = sum(((a - b) ** 2) for unit in values for i, a in enumerate(unit) for j, b in enumerate(unit) if i != j)
    observed /= n * (values.shape[1] - 1)
    flat = values.ravel()
    expected = ((flat[:, None] - flat[None, :]) ** 2).sum() / (n * (n - 1))
    return 1 - observed / expected


def test_interval_alpha_matches_a_hand_computed_value():
    # judges A = 1 2 3 4 and B = 1 2 3 6 on four answers (a fifth rated by B only is not pairable): n = 8 values.
    # Observed: only answer 4 differs, its two ordered pairs give 2 * (4 - 6)^2 = 8, so D_o = 8 / 8 = 1.
    # Expected: the values 1 1 2 2 3 3 4 6 have mean 2.75 and squared deviations summing to 19.5; the ordered pairs
    # sum 2 * 8 * 19.5 = 312, so D_e = 312 / (8 * 7) = 39 / 7. Alpha = 1 - 7 / 39 = 32 / 39.
    ratings = np.array([[1, 2, 3, 4, np.nan], [1, 2, 3, 6, 5]])
    assert interval_alpha(ratings) == pytest.approx(32 / 39)
    estimate = alpha_ci(ratings, ["w1", "w1", "w2", "w3", "w3"])
    assert estimate.value == pytest.approx(32 / 39) and estimate.low <= estimate.value <= estimate.high
    assert alpha_ci(np.full((2, 4), 7.0), ["w1", "w2", "w3", "w4"]) is None  # every score the same: undefined
    rng = np.random.default_rng(0)  # the bootstrap's closed form is the package's alpha on any data
    for _ in range(20):
        r = rng.integers(0, 11, (3, 30)).astype(float) + rng.choice([0, 0.5], (3, 30))
        r[rng.random(r.shape) < 0.25] = np.nan
        assert _alpha_from_sums(_alpha_sums(r).sum(axis=0)) == pytest.approx(interval_alpha(r), abs=1e-12)


def _verdict(score: float | None, reason: str | None = None) -> JudgeScore:
    if score is None:
        return JudgeScore(status="unscored", reason=reason, judge_id="x")
    return JudgeScore(status="scored", score=score, dimensions={"spatial": score}, rationale="r", judge_id="x")


def test_a_panel_combines_by_mean_or_median_and_needs_every_judge():
    class Named:
        def __init__(self, name):
            self.config = type("C", (), {"name": name})()
            self.identity, self.judge_id = {"name": name, "template_sha256": "t"}, name

    judges = [Named("a"), Named("b"), Named("a")]
    mean = JudgePanel(judges)
    assert mean.labels == ["a #1", "b", "a #3"] and mean.identity["name"] == "a #1 + b + a #3"
    combined = mean.combine([_verdict(1), _verdict(2), _verdict(9)])
    assert combined.score == pytest.approx(4) and combined.range == 8 and combined.dimensions["spatial"] == 4
    median = JudgePanel(judges, JudgePanelSettings(combine="median"))
    assert median.combine([_verdict(1), _verdict(2), _verdict(9)]).score == 2 and median.judge_id != mean.judge_id
    missing = mean.combine([_verdict(1), _verdict(None, "judge call failed: HTTP 404"), _verdict(9)])
    assert missing.status == "unscored" and missing.score is None and missing.reason == "b: judge call failed: HTTP 404"


@pytest.fixture(scope="module")
def two_judges(scorer_bench, tmp_path_factory):
    """oracle, specialist and constant runs scored by two judges (overlap and precision modes of the test server),
    plus a constant run scored by the first judge only."""
    root = tmp_path_factory.mktemp("judges")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("WAFERSAGE_TEST_JUDGE_KEY", "sk-test")
    with ChatCompletionsServer(reply=judge_mode("overlap")) as a, \
            ChatCompletionsServer(reply=judge_mode("precision")) as b:
        specs = [judge_yaml(root, a.url, name="overlap-judge"), judge_yaml(root, b.url, name="precision-judge")]
        for model in ("oracle", "specialist", "constant"):
            run_eval(scorer_bench, model, out_dir=root / model, limit=LIMIT, progress=False)
            result = invoke("score", root / model, "--judge", specs[0], "--judge", specs[1],
                            "--judge-disagreement", "1")
            assert result.exit_code == 0, result.output
        shutil.copytree(root / "constant", root / "constant-one-judge")
        assert invoke("score", root / "constant-one-judge", "--judge", specs[0]).exit_code == 0
    monkeypatch.undo()
    return root


def _rows(folder):
    return [json.loads(line) for line in (folder / "scores.jsonl").read_text().splitlines()]


def test_two_judges_alpha_flags_and_identities_in_summary(two_judges):
    summary = json.loads((two_judges / "constant" / "summary.json").read_text())
    rows = [r for r in _rows(two_judges / "constant") if r["status"] == "scored"]
    ratings = np.array([[j["score"] for j in r["judges"]] for r in rows]).T
    agreement = summary["judge_agreement"]
    assert agreement["judges"] == ["overlap-judge", "precision-judge"] and agreement["n_covered"] == LIMIT
    assert agreement["alpha"]["value"] == pytest.approx(hand_alpha(ratings), abs=1e-9)
    assert agreement["alpha"]["low"] < agreement["alpha"]["value"] < agreement["alpha"]["high"]
    for k, name in enumerate(agreement["judges"]):
        assert agreement["means"][name]["value"] == pytest.approx(ratings[k].mean())
    assert [r["judge"]["score"] for r in rows] == pytest.approx(list(ratings.mean(axis=0)))
    wide = {r["item_id"] for r in rows if abs(r["judges"][0]["score"] - r["judges"][1]["score"]) > 1}
    assert wide and {f["item_id"] for f in agreement["flagged"]} == wide and agreement["n_flagged"] == len(wide)
    assert [j["name"] for j in summary["judges"]] == agreement["judges"]
    assert all(len(j["template_sha256"]) == 64 for j in summary["judges"])
    assert summary["judge_identity"]["combine"] == "mean" and summary["judge_coverage"] == 1.0


def test_the_page_shows_alpha_with_its_ci_and_the_flagged_items(two_judges, tmp_path):
    page = tmp_path / "board.html"
    result = invoke("report", *(two_judges / m for m in ("oracle", "specialist", "constant")), "--out", page)
    assert result.exit_code == 0, result.output
    html = page.read_text()
    summary = json.loads((two_judges / "constant" / "summary.json").read_text())
    alpha = summary["judge_agreement"]["alpha"]
    assert "Agreement between the judges" in html and "Krippendorff" in html
    assert format_estimate(type("E", (), alpha)(), 3) in html  # e.g. 0.588 [0.398, 0.744]
    assert 'id="alpha-pooled"' in html and "mean of 2 judges: overlap-judge, precision-judge" in html
    for flagged in summary["judge_agreement"]["flagged"]:
        assert flagged["item_id"] in html.split('id="judge-flagged"')[1].split("</table>")[0]


def test_compare_refuses_a_different_judge_set(two_judges):
    gate = invoke("compare", two_judges / "constant", two_judges / "constant-one-judge")
    assert gate.exit_code == 2 and "different judges" in gate.output
    assert "overlap-judge + precision-judge vs overlap-judge" in gate.output.replace("\n", " ")
    assert invoke("compare", two_judges / "constant", two_judges / "constant").exit_code == 0


def test_retry_unscored_with_two_judges_re_asks_only_the_judge_that_failed(scorer_bench, tmp_path, monkeypatch):
    monkeypatch.setenv("WAFERSAGE_TEST_JUDGE_KEY", "sk-test")
    modes = {"b": "partial"}
    run_eval(scorer_bench, "constant", out_dir=tmp_path / "run", limit=LIMIT, progress=False)
    with ChatCompletionsServer(reply=judge_mode("overlap")) as a, \
            ChatCompletionsServer(reply=lambda payload: judge_mode(modes["b"])(payload)) as b:
        specs = ["--judge", judge_yaml(tmp_path, a.url, name="judge-a"),
                 "--judge", judge_yaml(tmp_path, b.url, name="judge-b")]
        first = invoke("score", tmp_path / "run", *specs)
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert first.exit_code == 1 and 0 < summary["judge_coverage"] < 1
        reasons = summary["judge_unscored_reasons"]
        assert reasons and all(reason.startswith("judge-b: judge call failed: HTTP 404") for reason in reasons)
        modes["b"] = "overlap"
        asked_a, asked_b = a.chat_requests, b.chat_requests
        again = invoke("score", tmp_path / "run", *specs, "--retry-unscored")
        assert again.exit_code == 0, again.output
        assert a.chat_requests == asked_a and b.chat_requests - asked_b == summary["n_judge_unscored"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["judge_coverage"] == 1.0


@pytest.fixture(scope="module")
def sampled_run(scorer_bench, tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples") / "oracle"
    run_eval(scorer_bench, "specialist", out_dir=folder, limit=20, progress=False)
    return folder


@pytest.mark.parametrize("mode, omit", [("noisy", ""), ("overlap", ""), ("noisy", "omit_params: [temperature]\n")])
def test_judge_samples_spread_on_a_noisy_and_a_deterministic_judge(sampled_run, tmp_path, monkeypatch, mode, omit):
    monkeypatch.setenv("WAFERSAGE_TEST_JUDGE_KEY", "sk-test")
    run = tmp_path / "run"
    shutil.copytree(sampled_run, run)
    with ChatCompletionsServer(reply=judge_mode(mode)) as server:
        result = invoke("score", run, "--judge", judge_yaml(tmp_path, server.url, name=f"{mode}-judge", extra=omit),
                        "--judge-samples", "5")
        sent = {p.get("temperature", "not sent") for p in server.payloads}
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "summary.json").read_text())
    rows = [r for r in _rows(run) if r["status"] == "scored"]
    assert all(len(r["judge"]["samples"]) == 5 for r in rows)
    assert sent == ({"not sent"} if omit else {0.7})
    if mode == "noisy":
        assert summary["judge_spread_mean"] > 0.3
    else:
        assert summary["judge_spread_mean"] == 0.0 and summary["judge_flip_rate"] == 0.0
    page = tmp_path / "page.html"
    assert invoke("report", run, "--out", page).exit_code == 0
    sampling = page.read_text().split('class="sampling">')[1].split("</td>")[0]
    if omit:
        assert "repeated at the provider&#39;s default temperature" in sampling and "omits temperature" in sampling
    else:
        assert "5 judgements per answer at temperature 0.7" in sampling


def _judged_panel(folder):
    """A graded panel of four center wafers whose items carry the rubric the judge prompt needs."""
    folder.mkdir(parents=True)
    wafers = [f"w{k}" for k in range(4)]
    items = [{"id": f"{w}-q0", "wafer_id": w, "question": "Where do the failing dies sit?", "category": "spatial",
              "labels": ["Center"], "image": f"images/{w}.png", "reference": "The failures sit in the center.",
              "rubric": center_rubric(w).model_dump(mode="json")} for w in wafers]
    answers = [{"item_id": f"{w}-q0", "source": source, "answer": text, "judge": {"score": grade}}
               for w in wafers for source, text, grade in (("right", "The failures sit in the center.", 9),
                                                           ("wrong", "Scratches cross the edge.", 1))]
    grid = np.ones((9, 9), dtype=np.uint8)
    grid[4, 4] = 2
    (folder / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    (folder / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    np.savez(folder / "maps.npz", **{w: grid for w in wafers})
    (folder / "labels.json").write_text(json.dumps({w: ["Center"] for w in wafers}))
    return folder


def test_a_judge_checked_against_a_graded_panel_is_shown_beside_it(two_judges, tmp_path, monkeypatch):
    monkeypatch.setenv("WAFERSAGE_TEST_JUDGE_KEY", "sk-test")
    panel = _judged_panel(tmp_path / "panel")
    runs = [tmp_path / "oracle", tmp_path / "constant"]
    with ChatCompletionsServer(reply=judge_mode("overlap")) as server:
        spec, other = judge_yaml(tmp_path, server.url), judge_yaml(tmp_path, server.url, name="candidate-judge",
                                                                    model="judge-2")
        for run in runs:
            shutil.copytree(two_judges / run.name, run)
            assert invoke("score", run, "--judge", spec).exit_code == 0
        for judge, out in ((spec, "check.json"), (other, "other.json")):
            measured = invoke("agreement", "--panel", panel, "--judge", judge, "--json", tmp_path / out)
            assert measured.exit_code == 0, measured.output
    check = json.loads((tmp_path / "check.json").read_text())
    assert check["panel"] == str(panel) and check["judge"]["pooled"]["n"] == 8
    page, board = tmp_path / "board.html", tmp_path / "board.json"
    shown = invoke("report", *runs, "--out", page, "--json", board, "--judge-agreement", tmp_path / "check.json")
    assert shown.exit_code == 0, shown.output
    [row] = json.loads(board.read_text())["judge_checks"]
    assert row["judge"] == "test-judge" and row["panel"] == str(panel) and row["n"] == 8
    assert row["spearman"] == check["judge"]["pooled"]["spearman"]
    judges = page.read_text().split('id="judge-list"')[1].split("</table>")[0]
    assert f"panel <code>{panel}</code>" in judges and "Spearman" in judges and "not checked" not in judges
    refused = invoke("report", *runs, "--out", tmp_path / "x.html", "--judge-agreement", tmp_path / "other.json")
    assert refused.exit_code != 0 and "did not score these runs" in refused.output
