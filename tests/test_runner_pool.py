"""The worker pool: a fixed number of tasks, batches for batch backends, backend crashes recorded, and hf batches."""
from __future__ import annotations

import asyncio

import pytest
from bench_factory import make_bench

from wafersage.harness.run.cache import ResponseCache
from wafersage.harness.run.records import Sample
from wafersage.harness.run.folder import SampleWriter, load_run, read_samples
from wafersage.harness.run.runner import make_units, run_eval, run_units
from wafersage.models.base import GenerationParams, ModelRequest, ModelResponse
from wafersage.models.config import ModelConfig
from wafersage.tasks.bench.folder import Benchmark


class RecordingModel:
    """A real (if simple) backend: echoes the question and records how it was called."""

    deployment = "local"

    def __init__(self, batch_size: int = 1, crash_on: str | None = None):
        self.name = "recording"
        self.batch_size = batch_size
        self.crash_on = crash_on
        self.batches: list[int] = []
        self.in_flight = self.max_in_flight = self.max_tasks = 0

    async def generate(self, requests: list[ModelRequest]) -> list[ModelResponse]:
        if any(r.metadata["item_id"] == self.crash_on for r in requests):
            raise RuntimeError("simulated backend bug")
        self.batches.append(len(requests))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.max_tasks = max(self.max_tasks, len(asyncio.all_tasks()))
        await asyncio.sleep(0.001)
        self.in_flight -= 1
        return [ModelResponse(text=r.messages[-1].content) for r in requests]

    async def aclose(self) -> None:
        return None


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return Benchmark.load(make_bench(tmp_path_factory.mktemp("bench"), n_wafers=30, train_wafers=0))


def run(bench, model, tmp_path, concurrency, repeats=1):
    units = make_units(bench.items("test"), bench, repeats, GenerationParams(), lambda path: (None, None))
    writer = SampleWriter(tmp_path / "samples.jsonl")
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        asyncio.run(run_units(units, model, ModelConfig(name="rec", backend="x"), cache, writer, concurrency,
                              progress=False))
    writer.close()
    return read_samples(tmp_path / "samples.jsonl")[0]


def test_a_fixed_pool_of_workers_not_one_task_per_item(bench, tmp_path):
    model = RecordingModel()
    samples = run(bench, model, tmp_path, concurrency=4, repeats=2)
    assert len(samples) == 2 * len(bench.items("test")) == 180
    assert model.max_in_flight <= 4 and model.max_tasks <= 4 + 2  # workers + producer + the main task
    assert set(model.batches) == {1}


def test_batch_backends_get_batches(bench, tmp_path):
    model = RecordingModel(batch_size=8)
    samples = run(bench, model, tmp_path, concurrency=2)
    assert len({(s.item_id, s.repeat) for s in samples}) == len(samples) == 90
    assert max(model.batches) == 8 and sum(model.batches) == 90


def test_a_crashing_backend_becomes_failed_samples(bench, tmp_path):
    crash_item = bench.items("test")[5].id
    samples = run(bench, RecordingModel(crash_on=crash_item), tmp_path, concurrency=3)
    failed = [s for s in samples if not s.ok]
    assert [s.item_id for s in failed] == [crash_item]
    assert "backend raised RuntimeError: simulated backend bug" in failed[0].response.error
    assert len(samples) == 90


@pytest.mark.torch
@pytest.mark.slow
def test_hf_backend_through_the_runner_in_batches(tiny_qwen_dir, tmp_path):
    bench_dir = make_bench(tmp_path / "bench", n_wafers=3)
    spec = ModelConfig(name="tiny", backend="hf", path=str(tiny_qwen_dir), batch_size=3, max_new_tokens=4,
                       device="cpu", image_max_side=64)
    info = run_eval(bench_dir, spec, out_dir=tmp_path / "run", progress=False)
    assert info.n_ok == info.n_items == 6 and info.deployment == "local"
    sample = load_run(tmp_path / "run").samples[0]
    assert sample.response.output_tokens > 0 and sample.request.image_size == (64, 64)
    assert sample.request.image_format is None  # hf hands the model decoded pixels


def test_sample_writer_returns_only_after_its_line_is_synced(tmp_path):
    bench = Benchmark.load(make_bench(tmp_path / "bench", n_wafers=2, train_wafers=0))
    units = make_units(bench.items("test"), bench, 20, GenerationParams(), lambda path: (None, None))
    writer = SampleWriter(tmp_path / "samples.jsonl")

    async def write_all():
        await asyncio.gather(*(writer.write(Sample(item_id=u.item.id, wafer_id=u.item.wafer_id, repeat=u.repeat,
                                                   request=u.sent, response=ModelResponse(text="x")))
                               for u in units))
        return writer._synced  # every line covered by a finished fsync

    assert asyncio.run(write_all()) == len(units) == 120
    writer.close()
    samples, torn = read_samples(tmp_path / "samples.jsonl")
    assert len(samples) == 120 and not torn
