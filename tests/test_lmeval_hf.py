"""lm-eval's hf-multimodal on the tiny Qwen3-VL (CPU, greedy) against `wafersage eval` + `wafersage score` with the
hf backend on the same checkpoint: same answers, and lm-eval's metrics equal the harness's scores of those answers."""
from __future__ import annotations

import pytest
import yaml
from lmeval_factory import assert_item_metrics_equal, assert_means_equal, metrics_for, read_scores, write_run

from wafersage.harness.lmeval.task_folder import export_task_folder
from wafersage.harness.lmeval.task.runtime import metric_names
from wafersage.harness.run.runner import run_eval
from wafersage.harness.scoring.score_run import score_run
from wafersage.tasks.bench.folder import Benchmark

pytest.importorskip("lm_eval", reason="the lm-eval integration needs lm-eval (pip install -e '.[lmeval]')")
pytestmark = [pytest.mark.slow, pytest.mark.torch]

LIMIT = 10  # the first items of the split (the first wafer's questions)
MAX_TOKENS = 16


@pytest.fixture(scope="module")
def lm_eval_run(scorer_bench, tiny_qwen_dir, tmp_path_factory):
    from lm_eval import simple_evaluate
    from lm_eval.models.hf_vlms import HFMultimodalLM
    from lm_eval.tasks import TaskManager

    tasks = tmp_path_factory.mktemp("lmeval") / "tasks"
    export_task_folder(scorer_bench, tasks, max_gen_toks=MAX_TOKENS)
    # batch_size 1 on both paths: batches of different make-up may round differently on the CPU
    lm = HFMultimodalLM(pretrained=str(tiny_qwen_dir), device="cpu", dtype="float32", batch_size=1)
    return simple_evaluate(model=lm, task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
                           tasks=["wafersage_all"], limit=LIMIT, apply_chat_template=True, log_samples=True,
                           bootstrap_iters=0)


def test_metrics_equal_the_harness_scores_of_the_same_answers(lm_eval_run, scorer_bench, tmp_path):
    task_results = lm_eval_run["results"]["wafersage_all"]
    samples = lm_eval_run["samples"]["wafersage_all"]
    assert len(samples) == LIMIT
    names = metric_names("all", calibrated=False)
    assert {f"{n},none" for n in metrics_for({s["doc"]["category"] for s in samples})} <= set(task_results)
    answers = {s["doc"]["id"]: s["filtered_resps"][0] for s in samples}
    assert all(isinstance(a, str) and a.strip() for a in answers.values())

    run = write_run(tmp_path / "run", Benchmark.load(scorer_bench), answers)
    summary = score_run(run, progress=False)
    scores, _ = read_scores(run)
    assert {item_id: s.answer for item_id, s in scores.items()} == answers
    assert_item_metrics_equal({s["doc"]["id"]: {k: s[k] for k in names if k in s} for s in samples}, scores)
    assert assert_means_equal(task_results, summary) == metrics_for({s.category for s in scores.values()})


def test_wafersage_eval_gives_the_same_answers_and_scores(lm_eval_run, scorer_bench, tiny_qwen_dir, tmp_path):
    config = {"name": "tiny-qwen3-vl", "backend": "hf", "path": str(tiny_qwen_dir), "device": "cpu",
              "dtype": "float32", "batch_size": 1, "max_new_tokens": MAX_TOKENS}
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    assert run_eval(scorer_bench, str(spec), limit=LIMIT, out_dir=run, progress=False).n_ok == LIMIT
    summary = score_run(run, progress=False)
    scores, _ = read_scores(run)
    samples = lm_eval_run["samples"]["wafersage_all"]
    # the hf backend strips the decoded text; lm-eval keeps the leading space of the first token
    assert {s["doc"]["id"]: s["filtered_resps"][0].strip() for s in samples} == {
        item_id: s.answer for item_id, s in scores.items()}
    names = metric_names("all", calibrated=False)
    assert_item_metrics_equal({s["doc"]["id"]: {k: s[k] for k in names if k in s} for s in samples}, scores)
    seen = assert_means_equal(lm_eval_run["results"]["wafersage_all"], summary)
    assert seen == metrics_for({s.category for s in scores.values()})
