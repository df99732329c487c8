"""validate-real: labels hidden from the predictor, per-class table, overall row; real MixedWM38 and the holdout."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.tasks.maps.readers import read_maps
from wafersage.tasks.classify.validate_real import validate
from wafersage.tasks.maps.wafer import WaferMap

# the held-out real maps (fixture shared_holdout): only validate-real and this test read them (never tune on them)


def _wafer(i: int, labels: tuple[str, ...]) -> WaferMap:
    grid = np.ones((10, 10), dtype=np.uint8)
    grid[i % 10, :] = 2
    return WaferMap(grid=grid, id=f"w{i}", labels=labels)


def test_scores_exact_and_contained_per_class_and_overall():
    wafers = [_wafer(0, ("Center",)), _wafer(1, ("Center",)), _wafer(2, ("Center", "Scratch")), _wafer(3, ())]
    answers = {"w0": ["Center"], "w1": ["Loc"], "w2": ["Center", "Scratch", "Loc"]}
    table = validate(wafers, source="mem", format="test",
                     predictors={"lookup": lambda wafer, geom: answers[wafer.id]})
    rows = {r.label: r for r in table.rows}
    assert rows["Center"].n == 2
    assert rows["Center"].scores["lookup"].exact == 1
    assert rows["Center"].scores["lookup"].contained_rate == 0.5
    assert rows["Center+Scratch"].scores["lookup"].exact == 0
    assert rows["Center+Scratch"].scores["lookup"].contained == 1
    assert table.overall.n == 3 and table.overall.scores["lookup"].contained == 2
    assert table.skipped_unlabeled == 1
    assert table.confusions["Center"] == {"Center": 1, "Loc": 1}


def test_predictors_never_see_labels_or_truth():
    seen = []

    def spy(wafer: WaferMap, geom) -> list[str]:
        seen.append((wafer.labels, wafer.truth))
        return ["none"]

    validate([_wafer(i, ("Scratch",)) for i in range(3)], source="mem", format="test", predictors={"spy": spy})
    assert seen == [((), ())] * 3


def test_cli_on_real_mixedwm38_writes_table(shared_data, tmp_path):
    out = tmp_path / "table.json"
    result = CliRunner().invoke(main, ["validate-real", str(shared_data / "mixedwm38_30maps.npz"),
                                       "--format", "mixedwm38", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "overall" in result.output
    table = json.loads(out.read_text())
    overall = table["rows"][-1]
    assert overall["label"] == "overall" and overall["n"] == 30
    assert sum(r["n"] for r in table["rows"][:-1]) == 30
    labels = {m.label_text for m in read_maps(shared_data / "mixedwm38_30maps.npz", "mixedwm38")}
    assert {r["label"] for r in table["rows"][:-1]} == labels
    score = overall["scores"]["geometry"]
    assert score["exact"] <= score["contained"] <= 30


def test_holdout_folder_reads(shared_holdout):
    """Reading only: the held-out real maps parse; nothing is tuned or measured on them here."""
    maps = list(read_maps(shared_holdout / "wm811k_28", "images"))
    assert len(maps) == 28
    assert all(len(m.labels) == 1 for m in maps)
    assert all(set(np.unique(m.grid)) <= {0, 1, 2} for m in maps)
    assert all(m.extra["lswmd_row"] == m.id.removeprefix("lswmd_") for m in maps)


def test_cli_on_the_holdout(shared_holdout, tmp_path):
    holdout = shared_holdout / "wm811k_28"
    out = tmp_path / "holdout.json"
    result = CliRunner().invoke(main, ["validate-real", str(holdout), "--format", "images", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert {r["label"]: r["n"] for r in rows[:-1]} == {
        lbl: 4 for lbl in ("Center", "Donut", "Edge-Loc", "Edge-Ring", "Loc", "Random", "Scratch")}
    assert rows[-1]["n"] == 28


def test_cli_unknown_format_is_a_clear_error(shared_data):
    result = CliRunner().invoke(main, ["validate-real", str(shared_data / "mixedwm38_30maps.npz"),
                                       "--format", "mixedwm"])
    assert result.exit_code != 0
    assert "unknown map format 'mixedwm'" in result.output and "mixedwm38" in result.output
