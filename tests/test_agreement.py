"""Graded panels: the format check and the agreement figures, against hand computations."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.harness.agreement.measure import Scored, agreement, correlation
from wafersage.harness.agreement.panel import PanelError, load_panel

PANEL_A = Path(__file__).resolve().parents[2] / "shared" / "panels" / "panel_a"


def _row(item, wafer, source, score, reference, category="spatial"):
    return Scored(item_id=item, wafer_id=wafer, source=source, category=category, reference=reference, score=score)


def test_correlations_and_mae_match_a_hand_computation():
    # ranks of score 1,2,3,4 against reference 1,3,2,4: sum d^2 = 2 -> rho = 1 - 6*2/(4*15) = 0.8;
    # of the 6 pairs 5 agree and 1 disagrees -> tau = (5-1)/6; MAE = (0 + 1 + 1 + 0)/4
    rows = [_row(f"i{k}", f"w{k}", "s", s, r) for k, (s, r) in enumerate([(1, 1), (2, 3), (3, 2), (4, 4)])]
    corr = correlation(rows, n_resamples=200)
    assert corr.spearman == pytest.approx(0.8)
    assert corr.kendall == pytest.approx(4 / 6)
    assert corr.mae == pytest.approx(0.5)
    assert corr.n == 4
    low, high = corr.spearman_ci
    assert low is not None and low <= high <= 1


def test_source_pairs_count_only_significant_reference_differences():
    rows = []
    for w in range(10):  # 'good' is graded far above 'bad' on every wafer; 'twin' is graded like 'good'
        for q in range(3):
            item = f"w{w}-q{q}"
            rows += [_row(item, f"w{w}", "good", 8 + q % 2, 9.0), _row(item, f"w{w}", "bad", 1.0 + q % 2, 2.0),
                     _row(item, f"w{w}", "twin", 2.0 + q % 2, 9.0 - (w % 2))]
    report = agreement(rows, n_resamples=300)
    significant = {(p.a, p.b) for p in report.pair_details if p.significant}
    assert significant == {("good", "bad"), ("bad", "twin")} or ("good", "twin") in significant
    alike = {(p.a, p.b): p.ordered_alike for p in report.pair_details}
    assert alike[("good", "bad")] and alike[("bad", "twin")]
    assert report.pairs == len(significant)
    assert report.pairs_ordered_alike == sum(alike[p] for p in significant)
    assert report.by_source["good"].rule_mean == pytest.approx(np.mean([8 + q % 2 for q in range(3)]))
    assert report.by_source["bad"].judge_mean == pytest.approx(2.0)


def _write_panel(folder: Path, answers: list[dict], *, items: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    grid = np.ones((9, 9), dtype=np.uint8)
    grid[4, 4] = 2
    wafers = [f"w{k}" for k in range(4)]
    items = items if items is not None else [
        {"id": f"{w}-q0", "wafer_id": w, "question": "Which defect classes does this map show?",
         "category": "defect_type", "labels": ["Center"], "image": f"images/{w}.png"} for w in wafers]
    (folder / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    (folder / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    np.savez(folder / "maps.npz", **{w: grid for w in wafers})
    (folder / "labels.json").write_text(json.dumps({w: ["Center"] for w in wafers}))
    return folder


def _answers():
    out = []
    for k in range(4):
        out.append({"item_id": f"w{k}-q0", "source": "right", "answer": "A Center pattern.", "judge": {"score": 9}})
        out.append({"item_id": f"w{k}-q0", "source": "wrong", "answer": "A Donut pattern.", "judge": {"score": 1}})
    return out


def test_agreement_command_scores_a_small_panel(tmp_path):
    folder = _write_panel(tmp_path / "panel", _answers())
    out = tmp_path / "agreement.json"
    result = CliRunner().invoke(main, ["agreement", "--panel", str(folder), "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["by_source"]["right"]["rule_mean"] == pytest.approx(10.0)  # type F1 of {Center} vs {Center}
    assert data["by_source"]["wrong"]["rule_mean"] == pytest.approx(0.0)
    assert data["by_source"]["right"]["judge_mean"] == pytest.approx(9.0)
    assert data["pooled"]["mae"] == pytest.approx(1.0)  # |10-9| and |0-1|
    assert data["pooled"]["spearman"] == pytest.approx(1.0)
    assert data["pairs"] == 1 and data["pairs_ordered_alike"] == 1
    assert set(data) >= {"pooled", "by_source", "pairs_ordered_alike", "pairs"}


@pytest.mark.parametrize("breakage, message", [
    (lambda f: (f / "maps.npz").unlink(), "maps.npz: missing"),
    (lambda f: (f / "answers.jsonl").write_text(json.dumps(
        {"item_id": "w0-q0", "source": "right", "answer": "x"}) + "\n"), "line 1: field 'judge'"),
    (lambda f: (f / "answers.jsonl").write_text(json.dumps(
        {"item_id": "nope", "source": "right", "answer": "x", "judge": {"score": 3}}) + "\n"), "unknown item 'nope'"),
    (lambda f: (f / "answers.jsonl").write_text(json.dumps(
        {"item_id": "w0-q0", "source": "right", "answer": "x", "judge": {"score": 12}}) + "\n"), "judge.score"),
])
def test_a_bad_panel_is_refused_naming_file_line_and_field(tmp_path, breakage, message):
    folder = _write_panel(tmp_path / "panel", _answers())
    breakage(folder)
    with pytest.raises(PanelError, match=message.replace("(", r"\(")):
        load_panel(folder)
    result = CliRunner().invoke(main, ["agreement", "--panel", str(folder)])
    assert result.exit_code != 0 and str(folder) in result.output


def test_an_item_the_scorer_cannot_score_is_counted_and_named(tmp_path):
    items = [{"id": "w0-q0", "wafer_id": "w0", "question": "Is it above 5%?", "category": "consistency",
              "labels": ["Center"], "targets": ["center"]}]  # no expected_yes: the verdict cannot be checked
    answers = [{"item_id": "w0-q0", "source": "s", "answer": "Yes.", "judge": {"score": 8}}]
    folder = _write_panel(tmp_path / "panel", answers, items=items)
    out = tmp_path / "a.json"
    result = CliRunner().invoke(main, ["agreement", "--panel", str(folder), "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["n_unscored"] == 1 and data["unscored"][0]["item_id"] == "w0-q0"
    assert "could not score" in result.output


@pytest.mark.skipif(not PANEL_A.is_dir(), reason="../shared/panels/panel_a is not beside the project root")
def test_panel_a_loads_with_every_answer_graded():
    panel = load_panel(PANEL_A)
    assert len(panel.answers) == 565 and len(panel.wafers) == 12
    assert set(panel.sources) == {"sighted", "blind", "specialist", "random", "constant"}
    assert len(panel.select_wafers(1, 6).wafers) == 6


def test_the_leaderboard_shows_the_panel_agreement(scorer_bench, tmp_path):
    from wafersage.harness.run.runner import run_eval
    from wafersage.harness.scoring.score_run import score_run

    run = tmp_path / "oracle"
    run_eval(scorer_bench, "oracle", out_dir=run, limit=20, progress=False)
    score_run(run, progress=False)
    panel = _write_panel(tmp_path / "panel", _answers())
    page = tmp_path / "board.html"
    result = CliRunner().invoke(main, ["report", str(run), "--out", str(page), "--panel", str(panel)])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "Agreement with a graded panel" in html and "<code>panel</code>" in html
    assert "1 of the 1 pairs of sources" in html  # 'right' vs 'wrong', graded 9 vs 1 on every wafer
    (panel / "labels.json").unlink()
    bad = CliRunner().invoke(main, ["report", str(run), "--out", str(page), "--panel", str(panel)])
    assert bad.exit_code != 0 and "labels.json: missing" in bad.output


@pytest.mark.parametrize("older_rubrics", [False, True])
def test_a_panel_scores_reference_answers_against_the_facts_its_judge_was_shown(scorer_bench, older_rubrics):
    """The panel's rubric is what the judge saw: its fact sheet when it has one; an older rubric's zones, clock
    positions, density and texture otherwise (the generator's parameters that placed a Loc are not in a panel)."""
    from wafersage.harness.agreement.panel import Panel, PanelItem
    from wafersage.harness.agreement.scoring import as_vqa_item, panel_scorer
    from wafersage.tasks.bench.folder import Benchmark

    bench = Benchmark.load(scorer_bench)
    maps = {w.id: w for w in bench.wafers("test")}
    items = {}
    for it in bench.items("test"):
        rubric = bench.rubrics[it.wafer_id]
        items[it.id] = PanelItem(id=it.id, wafer_id=it.wafer_id, question=it.question, category=it.category,
                                 labels=it.labels, expected_yes=it.expected_yes, reference=it.answer,
                                 rubric=rubric.model_copy(update={"facts": None}) if older_rubrics else rubric)
    panel = Panel(Path("."), items, [], {w: m.grid for w, m in maps.items()},
                  {w: list(m.labels) for w, m in maps.items()})
    scorer = panel_scorer(panel)
    located = [it for it in items.values() if it.category == "spatial"]
    scores = [scorer.score(as_vqa_item(it), it.reference).score for it in located]
    assert len(located) > 50 and np.mean(scores) > 9.9
