"""lm-eval's local-chat-completions and `wafersage eval` + `wafersage score` against the same real server on
127.0.0.1: the same prompts go out, the same answers come back, the same rule scores come out."""
from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import yaml
from lmeval_factory import assert_item_metrics_equal, assert_means_equal, metrics_for, read_scores, write_run
from PIL import Image

from wafersage.harness.lmeval.task_folder import export_task_folder
from wafersage.harness.lmeval.task.runtime import metric_names
from wafersage.harness.run.runner import run_eval
from wafersage.harness.scoring.score_run import score_run
from wafersage.models.testing.server import ChatCompletionsServer
from wafersage.tasks.bench.folder import Benchmark

pytest.importorskip("lm_eval", reason="the lm-eval integration needs lm-eval (pip install -e '.[lmeval]')")
pytest.importorskip("tenacity", reason="lm-eval's API models need lm-eval[api] (pip install -e '.[lmeval]')")
from lm_eval import simple_evaluate  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

LIMIT = 30  # the first items of the split: a few wafers, several question categories


def pixels_digest(image: Image.Image) -> str:
    return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest()


def request_key(payload: dict) -> tuple[str, str, str]:
    """(system text, user text, digest of the image's pixels) of a chat request."""
    system = next(m["content"] for m in payload["messages"] if m["role"] == "system")
    parts = payload["messages"][-1]["content"]
    text = "".join(p["text"] for p in parts if p["type"] == "text")
    url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as image:
        return system, text, pixels_digest(image)


class ScriptedVLM:
    """Answers that depend only on (image, question): reference, constant, echo, stuffed or a bare "No."."""

    def __init__(self, bench: Benchmark):
        self.reference = {}
        for item in bench.items("test"):
            with Image.open(bench.image_path(item)) as image:
                self.reference.setdefault((pixels_digest(image), item.question), item)
        self.requests: list[tuple[str, str, str]] = []

    def __call__(self, payload: dict) -> str:
        key = request_key(payload)
        self.requests.append(key)
        _, question, digest = key
        item = self.reference[(digest, question)]
        kind = int(hashlib.sha256(f"{digest}|{question}".encode()).hexdigest(), 16) % 5
        return [item.answer, "center", item.question, item.answer + " Also an edge ring and a scratch.", "No."][kind]


@pytest.mark.slow
def test_local_chat_completions_matches_wafersage_eval_and_score(scorer_bench, tmp_path):
    bench = Benchmark.load(scorer_bench)
    model = ScriptedVLM(bench)
    tasks = tmp_path / "tasks"
    export_task_folder(scorer_bench, tasks, image_placeholder=False)  # API models send <image> as text
    with ChatCompletionsServer(reply=model) as server:
        results = simple_evaluate(
            model="local-chat-completions", task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
            model_args={"model": "wafersage-test", "base_url": f"{server.url}/chat/completions", "num_concurrent": 1,
                        "max_retries": 1, "tokenizer_backend": None},
            tasks=["wafersage_all"], limit=LIMIT, apply_chat_template=True, log_samples=True, bootstrap_iters=0)
        lm_eval_requests, model.requests = model.requests, []
        config = {"name": "scripted-vlm", "backend": "openai", "base_url": server.url, "model": "wafersage-test",
                  "timeout": 10, "max_retries": 1}
        spec = Path(tmp_path / "scripted-vlm.yaml")
        spec.write_text(yaml.safe_dump(config))
        run = tmp_path / "run"
        info = run_eval(scorer_bench, str(spec), limit=LIMIT, out_dir=run, progress=False)
    assert info.n_ok == LIMIT
    assert sorted(model.requests) == sorted(lm_eval_requests) and len(set(lm_eval_requests)) > 1

    summary = score_run(run, progress=False)
    scores, _ = read_scores(run)
    samples = results["samples"]["wafersage_all"]
    names = metric_names("all", calibrated=False)
    answers = {s["doc"]["id"]: s["filtered_resps"][0] for s in samples}
    assert answers == {item_id: score.answer for item_id, score in scores.items()}
    assert len(set(answers.values())) > 5
    metrics = {s["doc"]["id"]: {k: s[k] for k in names if k in s} for s in samples}
    assert_item_metrics_equal(metrics, scores)
    assert len({m["rule_score"] for m in metrics.values()}) >= 3
    categories = {s.category for s in scores.values()}
    assert len(categories) >= 3
    assert assert_means_equal(results["results"]["wafersage_all"], summary) == metrics_for(categories)


@pytest.mark.slow
def test_the_group_scores_every_item_once_and_matches_the_harness(scorer_bench, tmp_path):
    bench = Benchmark.load(scorer_bench)
    tasks = tmp_path / "tasks"
    config = export_task_folder(scorer_bench, tasks, image_placeholder=False)
    with ChatCompletionsServer(reply=ScriptedVLM(bench)) as server:
        results = simple_evaluate(
            model="local-chat-completions", task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
            model_args={"model": "wafersage-test", "base_url": f"{server.url}/chat/completions", "num_concurrent": 1,
                        "max_retries": 1, "tokenizer_backend": None},
            tasks=[config.name], limit=4, apply_chat_template=True, log_samples=True, bootstrap_iters=0)
        assert server.counts["ok"] == 4 * 5  # four items per category task, none asked twice
    samples = [s for task_samples in results["samples"].values() for s in task_samples]
    answers = {s["doc"]["id"]: s["filtered_resps"][0] for s in samples}
    summary = score_run(write_run(tmp_path / "run", bench, answers), progress=False)
    group = results["results"][config.name]
    assert group["rule_score,none"] == pytest.approx(summary.rule.value, rel=1e-12)
    for category, estimate in summary.per_category.items():
        assert results["results"][f"{config.name}_{category}"][f"rule_{category},none"] == pytest.approx(
            estimate.value, rel=1e-12)
    assert len({round(e.value, 6) for e in summary.per_category.values()}) > 1
