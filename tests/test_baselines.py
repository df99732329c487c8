"""The built-in baselines answer from request metadata, deterministically, with no network."""
from __future__ import annotations

import asyncio

import pytest
from bench_factory import make_bench

from wafersage.harness.run.messages import SYSTEM_PROMPT, build_request
from wafersage.models.config import ModelConfigError
from wafersage.models.registry import load_model
from wafersage.tasks.bench.folder import Benchmark


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return Benchmark.load(make_bench(tmp_path_factory.mktemp("bench")))


def answers(model, requests):
    return asyncio.run(model.generate(requests))


def test_oracle_returns_reference_answers(bench):
    model = load_model("oracle")
    items = bench.items("test")
    responses = answers(model, [build_request(item, bench) for item in items])
    assert [r.text for r in responses] == [item.answer for item in items]
    assert all(r.ok and r.cost_usd == 0 and r.output_tokens == len(r.text.split()) for r in responses)
    assert responses[0].input_tokens == len(SYSTEM_PROMPT.split()) + len(items[0].question.split())
    assert model.deployment == "baseline" and model.name == "oracle"


def test_oracle_reports_missing_context_as_an_error_response(bench):
    request = build_request(bench.items("test")[0], bench)
    request.metadata.pop("bench_dir")
    unknown = build_request(bench.items("test")[0], bench)
    unknown.metadata["item_id"] = "no-such-item"
    missing, not_found = answers(load_model("oracle"), [request, unknown])
    assert "bench_dir" in missing.error and "build_request" in missing.error
    assert "no-such-item" in not_found.error and not not_found.text


def test_constant_uses_its_text_option(bench):
    requests = [build_request(item, bench) for item in bench.items("test")]
    default = answers(load_model("constant"), requests)
    assert len({r.text for r in default}) == 1 and "center" in default[0].text
    custom = answers(load_model("constant", text="Edge ring."), requests[:2])
    assert [r.text for r in custom] == ["Edge ring.", "Edge ring."]


def test_baseline_options_are_checked():
    with pytest.raises(ModelConfigError, match="texts"):
        load_model("constant", texts="typo")


def test_random_is_plausible_varied_and_repeatable(bench):
    items = bench.items("all")
    requests = [build_request(item, bench) for item in items]
    first = answers(load_model("random"), requests)
    again = answers(load_model("random"), requests)
    assert [r.text for r in first] == [r.text for r in again]
    assert len({r.text for r in first}) > len(items) // 2  # not one fixed sentence
    for item, response in zip(items, first):
        if item.category == "consistency":
            assert response.text.split(",")[0] in ("Yes", "No")
        if item.category == "defect_type":
            assert "defect pattern" in response.text
    reseeded = [build_request(item, bench, params=None) for item in items]
    for request in reseeded:
        request.params.seed = 7
    assert [r.text for r in answers(load_model("random"), reseeded)] != [r.text for r in first]
