"""`wafersage synth --describe-model / --writer-model` end to end through the CLI against the real OpenAI-compatible
test server on 127.0.0.1: the server's reply function plays the VLM (prose for a map image, a rubric for the rubric
prompt, question-answer pairs for the writer prompt; one wafer's pairs are never valid)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from served_vlm import last_user_text, paper_rubric
from wafersage.cli import main
from wafersage.models.testing.server import ChatCompletionsServer
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.geometry.measure import measure
from wafersage.tasks.synth.rubric import build_rubric
from wafersage.tasks.synth.build import SynthConfig, load_maps
from wafersage.tasks.synth.vqa import make_items

CONFIG = {"name": "served-synth", "seed": 5, "source": {"kind": "generated", "n": 5, "size": [30, 30],
                                                        "patterns": ["Center", "Scratch", "Edge-Ring"],
                                                        "mixtures": False},
          "cleaning": {"enabled": False}, "splits": {"train": 0.0, "val": 0.0, "test": 1.0}, "image_size": 64}
PROSE = "The failing dies form one pattern; see the image."





class PlayedVLM:
    """The server's reply function: answers each synthesis prompt from the wafer's true rubric."""

    def __init__(self, config_path, broken_wafer: str):
        config = SynthConfig.from_yaml(config_path)
        self.truth = {}
        for wafer in load_maps(config):
            geom = measure(wafer)
            self.truth[wafer.id] = (wafer, geom, build_rubric(wafer, geom))
        self.broken_wafer = broken_wafer
        self.prompts: list[str] = []

    def __call__(self, payload: dict):
        text, has_image = last_user_text(payload)
        self.prompts.append(text)
        if "evaluation rubric" in text:
            wafer_id = re.search(r"Description of wafer (\S+) ", text).group(1)
            return paper_rubric(self.truth[wafer_id][2])
        if "question-answer pairs" in text:
            wafer_id = re.search(r"Ground truth for wafer (\S+) ", text).group(1)
            if wafer_id == self.broken_wafer:
                return "Here are some questions: none, sorry."
            wafer, geom, rubric = self.truth[wafer_id]
            items = make_items(wafer, geom, rubric, rng=np.random.default_rng(0), image="i.png", split="test")
            return json.dumps([{"question": it.question, "answer": it.answer, "category": it.category,
                                "difficulty": it.difficulty, "expected_yes": it.expected_yes} for it in items])
        return PROSE if has_image else "no image received"


@pytest.fixture
def served(tmp_path):
    config_path = tmp_path / "synth.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    first_ids = [w.id for w in load_maps(SynthConfig.from_yaml(config_path))]
    vlm = PlayedVLM(config_path, broken_wafer=first_ids[1])
    with ChatCompletionsServer(reply=vlm) as server:
        model = tmp_path / "served.yaml"
        model.write_text(f"name: served\nbackend: openai\nbase_url: {server.url}\nmodel: m\ntimeout: 10\n"
                         "max_retries: 1\n")
        yield config_path, model, server, vlm


def _synth(*args) -> object:
    return CliRunner().invoke(main, ["synth", *map(str, args), "--quiet"], catch_exceptions=False)


def test_models_describe_and_write_and_a_rebuild_costs_no_call(served, tmp_path):
    config_path, model, server, vlm = served
    out = tmp_path / "bench"
    result = _synth("--config", config_path, "--out", out, "--describe-model", model, "--writer-model", model,
                    "--max-failed-share", 0.2)  # 1 of 5 wafers fails
    assert result.exit_code == 0, result.output
    bench = Benchmark.load(out)
    counts = bench.manifest["counts"]
    assert counts["wafers"] == 4 and counts["failed_wafers"] == 1
    assert bench.manifest["config"]["describer"] == "model"
    models = bench.manifest["models"]
    assert models["writer"]["name"] == "served" and "base_url" in models["describer"]
    [failure] = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failure["wafer_id"] == vlm.broken_wafer and failure["stage"] == "vqa"
    assert "invalid after 3 attempts" in failure["reason"] and failure["attempts"] == 3
    descriptions = [json.loads(line) for line in (out / "descriptions.jsonl").read_text().splitlines()]
    assert {d["text"] for d in descriptions} == {PROSE} and {d["source"] for d in descriptions} == {"model"}
    items = bench.items("test")
    # 4 ok wafers, 3 tries for the broken one: the third repeats the second prompt and is answered by the cache
    assert sum("question-answer pairs" in p for p in vlm.prompts) == 4 + 2
    assert items and all(not it.id.startswith(vlm.broken_wafer) for it in items)
    assert len(items) == counts["items"] and {it.category for it in items} >= {"defect_type", "consistency"}
    calls = server.chat_requests
    again = _synth("--config", config_path, "--out", out, "--describe-model", model, "--writer-model", model,
                   "--force", "--max-failed-share", 0.2)
    assert again.exit_code == 0, again.output
    assert server.chat_requests == calls  # every reply came from the response cache
    assert "model served: 0 calls," in again.output
    assert Benchmark.load(out).hash == bench.hash


def test_writer_model_with_geometry_descriptions(served, tmp_path):
    config_path, model, server, vlm = served
    result = _synth("--config", config_path, "--out", tmp_path / "b", "--writer-model", model)
    assert result.exit_code == 1 and "1 of 5 wafers (20%) failed, more than --max-failed-share 0.1" in " ".join(
        result.output.split())  # the default share; the benchmark is written all the same
    bench = Benchmark.load(tmp_path / "b")
    assert bench.manifest["config"]["describer"] == "geometry" and "describer" not in bench.manifest["models"]
    assert not any("evaluation rubric" in p for p in vlm.prompts)  # rubrics from geometry, questions from the model
    assert bench.manifest["counts"]["failed_wafers"] == 1 and bench.manifest["counts"]["wafers"] == 4


def test_model_describer_without_a_model_and_baselines_are_clear_errors(served, tmp_path):
    config_path, _, server, _ = served
    model_config = tmp_path / "model.yaml"
    model_config.write_text(yaml.safe_dump({**CONFIG, "describer": "model"}))
    result = _synth("--config", model_config, "--out", tmp_path / "x")
    assert result.exit_code == 1 and "--describe-model NAME" in result.output and "model.yaml" in result.output
    result = _synth("--config", config_path, "--out", tmp_path / "y", "--writer-model", "oracle")
    assert result.exit_code == 1 and "baseline" in result.output
    result = _synth("--config", config_path, "--out", tmp_path / "z", "--writer-model", "gpt-5-minni")
    assert result.exit_code == 1 and "Did you mean" in result.output
    assert server.chat_requests == 0 and not (tmp_path / "y").exists()
