"""Stages 0b–2 driven by a model over real HTTP: the openai backend against the OpenAI-compatible test server.

The server's reply function plays the model: it answers the describe prompt with prose, the rubric prompt first
with broken JSON (to exercise the retry-with-error path) and then a valid rubric, and the VQA prompt with pairs.
"""
from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from served_vlm import last_user_text, paper_rubric
from wafersage.models.base import ChatMessage, ModelRequest
from wafersage.models.config import ModelConfig
from wafersage.models.registry import load_model
from wafersage.models.testing.server import ChatCompletionsServer
from wafersage.tasks.synth.describe import ModelDescriber
from wafersage.tasks.generate.generator import generate_map
from wafersage.tasks.geometry.measure import measure
from wafersage.tasks.synth.rubric import ModelRubricBuilder, build_rubric
from wafersage.tasks.synth.vqa import make_items
from wafersage.tasks.synth.vqa_model import ModelVQAWriter





@pytest.fixture
def wafer():
    wafer = generate_map(["Edge-Ring"], rng=np.random.default_rng(3), wafer_id="http-1")
    return wafer, measure(wafer)


def test_describe_rubric_and_vqa_through_a_real_openai_endpoint(wafer, tmp_path):
    wafer, geom = wafer
    truth_rubric = build_rubric(wafer, geom)
    pairs = [{"question": it.question, "answer": it.answer, "category": it.category, "difficulty": it.difficulty,
              "expected_yes": it.expected_yes, "dimension": it.dimension}
             for it in make_items(wafer, geom, truth_rubric, rng=np.random.default_rng(0), image="i.png",
                                  split="test")]
    rubric_calls = []

    def reply(payload):
        text, _ = last_user_text(payload)
        if "evaluation rubric" in text:
            rubric_calls.append(text)
            return "Sorry, here it is: {broken" if len(rubric_calls) == 1 else paper_rubric(truth_rubric)
        if "question-answer pairs" in text:
            return json.dumps(pairs)
        has_image = any(part.get("type") == "image_url" for m in payload["messages"]
                        if isinstance(m.get("content"), list) for part in m["content"])
        return "A thin ring of failing dies along the wafer edge." if has_image else "no image received"

    loop = asyncio.new_event_loop()
    with ChatCompletionsServer(reply=reply) as server:
        model = load_model(ModelConfig(name="served", backend="openai", base_url=server.url, model="served-model",
                                       timeout=10, max_retries=1))

        def ask(prompt: str, image: bytes | None = None) -> str:
            images = []
            if image is not None:
                path = tmp_path / "map.png"
                path.write_bytes(image)
                images = [str(path)]
            request = ModelRequest(messages=[ChatMessage(role="user", content=prompt)], images=images)
            [response] = loop.run_until_complete(model.generate([request]))
            if not response.ok:
                raise RuntimeError(response.error)
            return response.text

        try:
            description = ModelDescriber(ask).describe(wafer, geom, mode="full")
            result = ModelRubricBuilder(ask).build(description)
            written = ModelVQAWriter(ask).write(result.rubric, image="images/http-1.png", split="test",
                                                labels=list(wafer.labels))
        finally:
            loop.run_until_complete(model.aclose())
            loop.close()
    assert description.source == "model" and description.text.startswith("A thin ring")
    assert result.status == "ok" and result.attempts == 2, result.reason
    assert "could not be used" in rubric_calls[1] and description.text in rubric_calls[0]
    assert result.rubric.model_dump(exclude={"facts"}) == truth_rubric.model_dump(exclude={"facts"})  # facts: from the map
    assert written.status == "ok" and len(written.items) == len(pairs)
    assert written.items[0].id == "http-1-q0"
