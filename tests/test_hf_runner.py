"""The ``hf`` backend through the eval runner: a real benchmark folder, the tiny Qwen3-VL, batches of requests."""
from __future__ import annotations

import json

import pytest

from bench_factory import make_bench
from wafersage.harness.run.records import RunInfo, Sample
from wafersage.harness.run.runner import run_eval
from wafersage.models.base import GenerationParams

pytestmark = pytest.mark.torch


def test_eval_run_with_a_local_checkpoint(tiny_qwen_dir, tmp_path):
    bench = make_bench(tmp_path / "bench", n_wafers=3)
    run_dir = tmp_path / "run"
    info = run_eval(bench, f"hf:{tiny_qwen_dir}", out_dir=run_dir, image_max_side=64, progress=False,
                    params=GenerationParams(max_tokens=8))
    assert isinstance(info, RunInfo)
    assert info.deployment == "local" and info.n_failed == 0 and info.n_ok == info.n_items == 6
    samples = [Sample.model_validate_json(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6
    for sample in samples:
        assert sample.ok and sample.response.text
        assert 0 < sample.response.output_tokens <= 8 and sample.response.input_tokens > 0
        assert sample.request.image_size == (64, 64)  # the images are larger; the hf backend caps them
    assert json.loads((run_dir / "run.json").read_text())["model"]["backend"] == "hf"
    again = run_eval(bench, f"hf:{tiny_qwen_dir}", out_dir=run_dir, image_max_side=64, progress=False,
                     params=GenerationParams(max_tokens=8))
    assert again.n_ok == 6  # resumed: every item already answered
    assert len((run_dir / "samples.jsonl").read_text().splitlines()) == 6
