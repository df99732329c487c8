"""`wafersage export lm-eval`: the task folder lm-eval loads, its prompts, and scores equal to `wafersage score`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from bench_factory import make_bench
from click.testing import CliRunner
from lmeval_factory import assert_item_metrics_equal, assert_means_equal, metrics_for, read_scores, write_run
from PIL import Image

from wafersage.cli import main
from wafersage.harness.scoring.calibrate import CalibrationConfig, FeatureTable, calibrate, save_calibration
from wafersage.harness.lmeval.task.runtime import CONFIG_FILE, TaskFolderError, TaskRuntime
from wafersage.harness.run.messages import SYSTEM_PROMPT, build_request
from wafersage.harness.scoring.rules import RuleConstants, RuleScorer
from wafersage.models.config import TRAINING_MANIFEST
from wafersage.tasks.bench.folder import Benchmark, write_manifest
from wafersage.tasks.bench.schema import CATEGORIES

pytest.importorskip("lm_eval", reason="the lm-eval integration needs lm-eval (pip install -e '.[lmeval]')")
from lm_eval.tasks import TaskManager  # noqa: E402

PER_CATEGORY = 8  # items per category in the scoring comparison


def export(*args) -> object:
    return CliRunner().invoke(main, ["export", "lm-eval", *map(str, args)], catch_exceptions=False)


def load_tasks(folder: Path, names: list[str]) -> dict:
    return TaskManager(include_path=str(folder), include_defaults=False).load(names)


def test_task_folder_loads_in_lm_eval_with_the_harness_prompt(scorer_bench, tmp_path):
    out = tmp_path / "tasks"
    result = export("--bench", scorer_bench, "--out", out)
    assert result.exit_code == 0, result.output
    bench = Benchmark.load(scorer_bench)
    items = bench.items("test")
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["bench_dir"] == str(Path(scorer_bench).resolve()) and Path(config["bench_dir"]).is_absolute()
    assert config["bench_hash"] == bench.hash and config["calibration_id"] is None
    assert config["tasks"]["wafersage_all"] == len(items)
    assert sorted(config["files"]) == sorted(p.name for p in out.iterdir())

    loaded = load_tasks(out, ["wafersage", "wafersage_all"])
    assert loaded["group_map"]["wafersage"] == [f"wafersage_{c}" for c in CATEGORIES]
    tasks = loaded["tasks"]
    all_docs = list(tasks["wafersage_all"].test_docs())
    assert [d["id"] for d in all_docs] == [it.id for it in items]
    for category in CATEGORIES:
        task = tasks[f"wafersage_{category}"]
        docs = list(task.test_docs())
        assert len(docs) == config["tasks"][f"wafersage_{category}"] == sum(it.category == category for it in items)
        assert {d["category"] for d in docs} == {category}
        item = next(it for it in items if it.id == docs[0]["id"])
        request = build_request(item, bench)
        # the chat lm-eval builds under --apply_chat_template: the harness's system prompt and question
        chat = task.fewshot_context(docs[0], 0, apply_chat_template=True,
                                    chat_template=lambda messages, add_generation_prompt=True: messages)
        assert chat == [{"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": "<image>" + request.messages[1].content}]
        assert request.messages[0].content == SYSTEM_PROMPT
        (image,) = task.doc_to_image(docs[0])
        with Image.open(request.images[0]) as expected:
            assert np.array_equal(np.asarray(image), np.asarray(expected.convert("RGB")))
        assert task.doc_to_target(docs[0]) == item.answer
        assert set(task.aggregation()) >= {"rule_score", f"rule_{category}"}


def scripted_answers(bench: Benchmark) -> dict[str, str | None]:
    """Varied answers to PER_CATEGORY items of each category: reference, constant, empty, echo, stuffed, failed."""
    chosen = [it for c in CATEGORIES for it in [i for i in bench.items("test") if i.category == c][:PER_CATEGORY]]
    kinds = [
        lambda it: it.answer,
        lambda it: "center",
        lambda it: "",
        lambda it: it.question,
        lambda it: it.answer + " Also an edge ring, a scratch, random particles, lithography, etching and CMP.",
        lambda it: it.answer.split(".")[0],
        lambda it: "Yes." if it.expected_yes is False else "No, it is a Donut at the edge.",
        lambda it: None,
    ]
    return {it.id: kinds[(i + it.qa_index) % len(kinds)](it) for i, it in enumerate(chosen)}


def make_calibration(bench: Benchmark, answers: dict[str, str | None], constants: RuleConstants, path: Path) -> Path:
    """A real calibration file of ``bench`` (fitted to a simulated judge) carrying ``constants``."""
    items = {it.id: it for it in bench.all_items}
    scorer = RuleScorer(bench.rubrics)
    answered = [(items[i], a) for i, a in answers.items() if a is not None]
    table = FeatureTable([scorer.features(it, a) for it, a in answered])
    fitted = calibrate(table, table.scores(RuleConstants(partial_floor=0.3)), [it.wafer_id for it, _ in answered],
                       judge_identity={"model": "simulated"}, bench_hash=bench.hash,
                       config=CalibrationConfig(folds=2, iters=1, screen=3, n_resamples=100))
    return save_calibration(fitted.model_copy(update={"constants": constants}), path)


def test_lm_eval_scores_equal_wafersage_score_with_a_calibration(scorer_bench, tmp_path):
    bench = Benchmark.load(scorer_bench)
    answers = scripted_answers(bench)
    constants = RuleConstants(partial_floor=0.2, contradiction_penalty=0.8, extra_penalty=0.3,
                              dim_weights={"spatial": 1, "morphology": 2, "root_cause": 3})
    calibration = make_calibration(bench, answers, constants, tmp_path / "calibration.json")

    run = write_run(tmp_path / "run", bench, answers)
    result = CliRunner().invoke(main, ["score", str(run), "--calibration", str(calibration)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    scores, summary = read_scores(run)

    out = tmp_path / "tasks"
    assert export("--bench", scorer_bench, "--out", out, "--calibration", calibration).exit_code == 0
    assert (out / "calibration.json").read_bytes() == calibration.read_bytes()
    tasks = load_tasks(out, ["wafersage_all"])["tasks"]
    task = tasks["wafersage_all"]
    docs = {d["id"]: d for d in task.test_docs()}
    metrics = {item_id: task.process_results(docs[item_id], [answer]) for item_id, answer in answers.items()}
    assert_item_metrics_equal(metrics, scores)
    values = [m["rule_score"] for m in metrics.values()]
    assert len(set(values)) >= 4, "the answers should spread the scores, or equality proves little"
    assert any(m["rule_score"] != m["rule_score_default"] for m in metrics.values()), "calibration had no effect"

    means = {name: agg([m[name] for m in metrics.values() if name in m]) for name, agg in task.aggregation().items()}
    means["rule_score_default"] = float(np.mean([m["rule_score_default"] for m in metrics.values()]))
    seen = assert_means_equal({f"{k},none": v for k, v in means.items()}, summary)
    assert seen == metrics_for(CATEGORIES, calibrated=True)


def test_export_refuses_bad_input_and_names_the_fix(tmp_path):
    bench_dir = make_bench(tmp_path / "bench", n_wafers=3)
    result = CliRunner().invoke(main, ["export", "lm-eval", "--bench", str(tmp_path / "nope"), "--out",
                                       str(tmp_path / "t")])
    assert result.exit_code == 1 and "nope" in result.output and "wafersage synth" in result.output
    result = export("--bench", bench_dir, "--out", tmp_path / "t", "--split", "val")
    assert result.exit_code == 1 and "split 'val' has no items" in result.output
    result = export("--bench", bench_dir, "--out", tmp_path / "t", "--name", "bad-name")
    assert result.exit_code == 1 and "--name" in result.output
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = export("--bench", bench_dir, "--out", foreign)
    assert result.exit_code == 1 and "not empty" in result.output
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert not (tmp_path / "t").exists()


def test_a_trained_checkpoint_is_prompted_with_its_training_system_prompt(tmp_path):
    """As 'wafersage eval' prompts a trained model (models.config.training_system_prompt), so does the export."""
    bench_dir = make_bench(tmp_path / "bench", n_wafers=3)
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    trained_prompt = "You inspect wafer maps. Think, then answer inside <SOLUTION></SOLUTION>."
    (checkpoint / TRAINING_MANIFEST).write_text(json.dumps({"stage": "gspo", "system_prompt": trained_prompt}))
    out = tmp_path / "tasks"
    result = export("--bench", bench_dir, "--out", out, "--trained-model", checkpoint)
    assert result.exit_code == 0, result.output
    assert json.loads((out / CONFIG_FILE).read_text())["system_prompt"] == trained_prompt
    task = load_tasks(out, ["wafersage_all"])["tasks"]["wafersage_all"]
    doc = next(iter(task.test_docs()))
    chat = task.fewshot_context(doc, 0, apply_chat_template=True,
                                chat_template=lambda messages, add_generation_prompt=True: messages)
    assert chat[0] == {"role": "system", "content": trained_prompt}
    written = export("--bench", bench_dir, "--out", out, "--system-prompt", "Answer briefly.")
    assert written.exit_code == 0 and json.loads((out / CONFIG_FILE).read_text())["system_prompt"] == "Answer briefly."
    default = export("--bench", bench_dir, "--out", out)
    assert default.exit_code == 0 and json.loads((out / CONFIG_FILE).read_text())["system_prompt"] == SYSTEM_PROMPT


def test_trained_model_and_system_prompt_errors_name_the_fix(tmp_path):
    bench_dir = make_bench(tmp_path / "bench", n_wafers=3)
    plain = tmp_path / "plain_checkpoint"
    plain.mkdir()
    result = export("--bench", bench_dir, "--out", tmp_path / "t", "--trained-model", plain)
    assert result.exit_code == 1 and TRAINING_MANIFEST in result.output and "--system-prompt" in result.output
    result = export("--bench", bench_dir, "--out", tmp_path / "t", "--trained-model", plain, "--system-prompt", "x")
    assert result.exit_code == 1 and "not both" in result.output
    result = export("--bench", bench_dir, "--out", tmp_path / "t", "--system-prompt", "  ")
    assert result.exit_code == 1 and "--system-prompt is empty" in result.output
    assert not (tmp_path / "t").exists()


def test_reexport_replaces_the_earlier_files_only(tmp_path):
    bench_dir = make_bench(tmp_path / "bench", n_wafers=3)
    out = tmp_path / "tasks"
    assert export("--bench", bench_dir, "--out", out, "--name", "first").exit_code == 0
    (out / "my_notes.md").write_text("mine")
    result = export("--bench", bench_dir, "--out", out, "--name", "second", "--split", "all")
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert not any(n.startswith("first") for n in names) and "second_all.yaml" in names and "my_notes.md" in names
    # the hand-made benchmark has no morphology or root-cause items: no empty tasks for them
    assert "second_morphology.yaml" not in names and "second_spatial.yaml" in names
    assert json.loads((out / CONFIG_FILE).read_text())["tasks"] == {
        "second_all": 9, "second_defect_type": 3, "second_spatial": 3, "second_consistency": 3}


def test_calibration_of_another_benchmark_is_refused(scorer_bench, tmp_path):
    bench_dir = make_bench(tmp_path / "bench", n_wafers=3)
    other = Benchmark.load(scorer_bench)
    path = make_calibration(other, scripted_answers(other), RuleConstants(), tmp_path / "calibration.json")
    result = export("--bench", bench_dir, "--out", tmp_path / "t", "--calibration", path)
    assert result.exit_code == 1 and "calibrated on benchmark" in result.output
    assert not (tmp_path / "t").exists()


def test_a_changed_or_moved_benchmark_stops_the_task_folder(tmp_path):
    bench_dir = make_bench(tmp_path / "bench", n_wafers=3)
    out = tmp_path / "tasks"
    assert export("--bench", bench_dir, "--out", out).exit_code == 0
    assert len(TaskRuntime(out).load_docs()["test"]) == 6
    manifest = json.loads((bench_dir / "manifest.json").read_text())
    with open(bench_dir / "items.jsonl", "a", encoding="utf-8") as fh:
        fh.write((bench_dir / "items.jsonl").read_text().splitlines()[0].replace("w000-q0", "w000-q9") + "\n")
    write_manifest(bench_dir, **{k: manifest[k] for k in ("name", "version", "seed")})
    with pytest.raises(TaskFolderError, match=f"differs from the exported.*export again.*{CONFIG_FILE}"):
        TaskRuntime(out).load_docs()
    shutil.move(bench_dir, tmp_path / "moved")
    with pytest.raises(TaskFolderError, match=f"no manifest.json.*{CONFIG_FILE}"):
        TaskRuntime(out).load_docs()
    (out / CONFIG_FILE).write_text("{}")
    with pytest.raises(TaskFolderError, match=f"{CONFIG_FILE}: invalid at name"):
        TaskRuntime(out)
