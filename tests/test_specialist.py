"""The specialist baseline: answers every question, classifies well above chance, reads the map and nothing else."""
from __future__ import annotations

import asyncio
import builtins
import io
import json
import shutil
from pathlib import Path

import pytest

from wafersage.harness.run.messages import build_request
from wafersage.models.config import ModelConfigError
from wafersage.models.registry import load_model
from wafersage.models.specialist import SpecialistModel, consistency_answer
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.bench.schema import CATEGORIES
from wafersage.tasks.synth.build import SynthConfig, build_benchmark

#: files holding what the specialist must never see: reference answers, rubrics, descriptions
FORBIDDEN = {"items.jsonl", "rubrics.jsonl", "descriptions.jsonl"}
#: 6 wafers of each of the 38 MixedWM38-style classes, 60% train
CONFIG = {
    "name": "specialist-test", "seed": 3,
    "source": {"kind": "generated", "n": 228, "size": [32, 32], "mixtures": True, "balanced": True},
    "cleaning": {"enabled": False}, "splits": {"train": 0.6, "val": 0.0, "test": 0.4}, "image_size": 32,
}
FAST = {"min_train": 0, "n_estimators": 60}


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Benchmark:
    root = build_benchmark(SynthConfig.model_validate(CONFIG), tmp_path_factory.mktemp("spec") / "bench",
                           progress=False)
    return Benchmark.load(root)


def _specialist(**options) -> SpecialistModel:
    model = load_model("specialist", **(FAST | options))
    assert isinstance(model, SpecialistModel)
    return model


def _answers(model: SpecialistModel, requests) -> list[str]:
    responses = asyncio.run(model.generate(requests))
    errors = [r.error for r in responses if not r.ok]
    assert not errors, errors[:3]
    return [r.text for r in responses]


def test_answers_every_test_question_and_classifies_well_above_chance(bench):
    items = bench.items("test")
    assert {it.category for it in items} == set(CATEGORIES)
    model = _specialist()
    answers = _answers(model, [build_request(it, bench) for it in items])
    assert all(a.strip() for a in answers)
    truth = {w.id: set(w.labels) for w in bench.wafers("test")}
    readings = dict(zip(truth, model.read(str(bench.root), list(truth))))
    exact = sum(set(readings[w].types) == truth[w] for w in truth) / len(truth)
    single = [w for w in truth if len(truth[w]) == 1]
    single_exact = sum(set(readings[w].types) == truth[w] for w in single) / len(single)
    # 38 label sets: guessing scores about 0.03 on all wafers and 0.11 on the 9 single classes
    assert exact >= 0.25 and single_exact >= 0.4, (exact, single_exact)
    # every premise kind the writer draws (shares, isolated dies, groups, a zone against the average, clock,
    # quadrant, all around or one side) is read and checked against its own reading of the map
    verdicts = [(a.startswith("Yes"), it.expected_yes) for it, a in zip(items, answers) if it.category == "consistency"]
    assert len(verdicts) >= 10 and sum(said == expected for said, expected in verdicts) / len(verdicts) >= 0.8
    defect_answers = [a for it, a in zip(items, answers) if it.category == "defect_type"]
    assert all(a.startswith(("The map shows", "No defect pattern")) for a in defect_answers)


def _spy_on_open(monkeypatch) -> list[str]:
    opened: list[str] = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    return opened


def _strip_copy(bench: Benchmark, dest: Path) -> Path:
    """The benchmark without answers, rubrics and descriptions, and with the test wafers' labels and truth erased."""
    shutil.copytree(bench.root, dest)
    for name in FORBIDDEN:
        (dest / name).unlink()
    index = dest / "maps" / "index.jsonl"
    rows = [json.loads(line) for line in index.read_text().splitlines()]
    for row in rows:
        if row["split"] != "train":
            row["labels"], row["truth"] = [], []
    index.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return dest


def test_reads_neither_answers_nor_rubrics_nor_the_test_labels(bench, tmp_path, monkeypatch):
    items = bench.items("test")
    requests = [build_request(it, bench) for it in items]
    opened = _spy_on_open(monkeypatch)
    answers = _answers(_specialist(), requests)
    assert any(Path(p).name == "index.jsonl" for p in opened)  # the spy sees the files the specialist reads
    assert not [p for p in opened if Path(p).name in FORBIDDEN]
    monkeypatch.undo()

    stripped = _strip_copy(bench, tmp_path / "copy" / "bench")
    moved = [r.model_copy(update={"metadata": r.metadata | {"bench_dir": str(stripped)}}) for r in requests]
    assert _answers(_specialist(), moved) == answers


def test_consistency_premises_are_checked_against_its_own_reading(bench):
    model = _specialist()
    wafers = [w.id for w in bench.wafers("test")]
    readings = model.read(str(bench.root), wafers)
    for reading in readings:
        share = reading.geom.fail_ratio * 100
        low, high = max(share / 2, 0.5), min(share * 2 + 1, 99)
        assert consistency_answer(f"Do more than {low:g}% of the dies on this wafer fail?", reading).startswith("Yes")
        assert consistency_answer(f"Do more than {high:g}% of the dies on this wafer fail?", reading).startswith("No")
        assert consistency_answer("Is this wafer from lot 7?", reading).startswith("No")
        isolated = (1 - reading.geom.clustered_fraction) * 100
        if isolated > 2:
            assert consistency_answer(f"Are more than {isolated / 2:g}% of the failing dies isolated, outside groups "
                                      "of five or more touching dies?", reading).startswith("Yes")
            assert consistency_answer(f"Are fewer than {isolated / 2:g}% of the failing dies isolated?",
                                      reading).startswith("No")
        edge_above = reading.geom.zone_fail_ratio["edge"] > reading.geom.fail_ratio
        assert consistency_answer("Is the failure rate in the outer radial zone above the wafer's average?",
                                  reading).startswith("Yes" if edge_above else "No")
        scratch = "Scratch" in reading.types
        assert consistency_answer("Does the map show a scratch?", reading).startswith("Yes" if scratch else "No")
        middle = "middle" in reading.rubric.spatial.zone.split(" and ")
        assert consistency_answer("Do the failures lie in the middle zone?", reading).startswith(
            "Yes" if middle else "No")
    with_clock = [r for r in readings if r.rubric.spatial.clock_positions]
    assert with_clock
    for reading in with_clock:
        k = reading.rubric.spatial.clock_positions[0]
        opposite = (k + 5) % 12 + 1
        question = "Are most failing dies located around the {} o'clock position?"
        assert consistency_answer(question.format(k), reading).startswith("Yes")
        if all(min((opposite - c) % 12, (c - opposite) % 12) > 1 for c in reading.rubric.spatial.clock_positions):
            assert consistency_answer(question.format(opposite), reading).startswith("No")


def test_unknown_wafer_and_bad_options_are_clear_errors(bench):
    model = _specialist()
    request = build_request(bench.items("test")[0], bench)
    request = request.model_copy(update={"metadata": request.metadata | {"wafer_id": "no-such-wafer"}})
    response = asyncio.run(model.generate([request]))[0]
    assert not response.ok and "no-such-wafer" in response.error and str(bench.root) in response.error
    with pytest.raises(ModelConfigError, match="n_estimators"):
        load_model("specialist", n_estimators=0)
    with pytest.raises(ModelConfigError, match="min_trian"):
        load_model("specialist", min_trian=5)
