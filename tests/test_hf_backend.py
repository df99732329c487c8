"""The ``hf`` backend on the tiny offline Qwen3-VL: batching, determinism, images, LoRA adapters, bad folders."""
from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wafersage.models.base import ChatMessage, GenerationParams, Model, ModelRequest
from wafersage.models.config import ModelConfigError
from wafersage.models.registry import load_model
from wafersage.tasks.maps.palette import COLOUR

pytestmark = pytest.mark.torch


def wafer_png(path: Path, size: int, fail_centre: tuple[float, float]) -> str:
    """A wafer-like PNG: a disc of pass dies with a cluster of fail dies around ``fail_centre``."""
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    codes = np.where(x**2 + y**2 <= 1, 1, 0)
    codes[(x - fail_centre[0]) ** 2 + (y - fail_centre[1]) ** 2 < 0.1] = 2
    Image.fromarray(COLOUR[codes]).save(path)
    return str(path)


def request(question: str, image: str | None, **params) -> ModelRequest:
    return ModelRequest(
        messages=[ChatMessage(role="system", content="Answer in one sentence."),
                  ChatMessage(role="user", content=question)],
        images=[image] if image else [], params=GenerationParams(max_tokens=10, **params))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("images")
    return {"centre": wafer_png(folder / "centre.png", 64, (0.0, 0.0)),
            "edge": wafer_png(folder / "edge.png", 64, (0.8, 0.3)),
            "big_centre": wafer_png(folder / "big_centre.png", 256, (0.0, 0.0))}


def generate(model, requests):
    return asyncio.run(model.generate(requests))


QUESTIONS = ("Where are the failed dies?", "Which defect pattern does this wafer map show, and why?",
             "Is the pattern near the edge?", "What is the likely root cause?", "Describe the morphology.")


def test_batched_generation_answers_every_request(tiny_qwen_dir, images):
    model = load_model(f"hf:{tiny_qwen_dir}", batch_size=2)
    assert model.batch_size == 2 and model.deployment == "local"
    requests = [request(q, images["centre" if i % 2 else "edge"]) for i, q in enumerate(QUESTIONS)]
    responses = generate(model, requests)
    assert len(responses) == len(requests)
    for response in responses:
        assert response.ok, response.error
        assert 0 < response.output_tokens <= 10
        assert response.text
        assert response.latency_s > 0 and response.cost_usd == 0
    # the longer question has more input tokens; both carry the image's tokens on top of the text
    assert responses[1].input_tokens > responses[0].input_tokens
    # greedy decoding is deterministic, and left padding makes batched answers equal one-at-a-time answers
    assert [r.text for r in generate(model, requests)] == [r.text for r in responses]
    single = load_model(f"hf:{tiny_qwen_dir}", batch_size=1)
    assert [(r.text, r.input_tokens) for r in generate(single, requests)] == [
        (r.text, r.input_tokens) for r in responses]


def test_image_reaches_the_model_and_is_capped(tiny_qwen_dir, images):
    model = load_model(f"hf:{tiny_qwen_dir}")
    centre, edge, text_only, big = generate(model, [
        request(QUESTIONS[0], images["centre"]), request(QUESTIONS[0], images["edge"]),
        request(QUESTIONS[0], None), request(QUESTIONS[0], images["big_centre"])])
    assert centre.text != edge.text  # same question, different wafer -> the pixels change the answer
    assert centre.input_tokens > text_only.input_tokens
    assert big.input_tokens > centre.input_tokens  # a 256 px image has more patches than a 64 px one
    capped = load_model(f"hf:{tiny_qwen_dir}", image_max_side=64)
    (big_capped,) = generate(capped, [request(QUESTIONS[0], images["big_centre"])])
    assert big_capped.input_tokens == centre.input_tokens


def test_sampling_honours_the_seed(tiny_qwen_dir, images):
    model = load_model(f"hf:{tiny_qwen_dir}")
    sampled = [request(QUESTIONS[1], images["edge"], temperature=1.0, seed=seed) for seed in (1, 1, 2)]
    first, again, other = generate(model, sampled)  # one batch: the answer depends on the seed, not neighbours
    assert first.ok and first.output_tokens > 0
    assert first.text == again.text
    assert first.text != other.text
    greedy = generate(model, [request(QUESTIONS[1], images["edge"])])[0]
    assert first.text != greedy.text


def test_a_bad_image_fails_only_its_request(tiny_qwen_dir, images, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    model = load_model(f"hf:{tiny_qwen_dir}")
    good, missing, unreadable = generate(model, [
        request(QUESTIONS[0], images["centre"]), request(QUESTIONS[0], str(tmp_path / "absent.png")),
        request(QUESTIONS[0], str(broken))])
    assert good.ok and good.text
    assert not missing.ok and "absent.png" in missing.error and not missing.text
    assert not unreadable.ok and "broken.png" in unreadable.error


def test_generation_leaves_the_event_loop_free(tiny_qwen_dir, images):
    model = load_model(f"hf:{tiny_qwen_dir}")

    async def main() -> int:
        ticks = 0
        task = asyncio.create_task(model.generate([request(q, images["edge"]) for q in QUESTIONS]))
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.001)
        assert all(r.ok for r in task.result())
        return ticks

    assert asyncio.run(main()) > 1  # a blocking generate would finish before the loop ticked again


def make_adapter(base_dir: Path, out_dir: Path) -> Path:
    """A LoRA adapter for the tiny model with non-zero weights, so it changes the answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(base_dir)
    torch.manual_seed(0)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    peft_model.save_pretrained(out_dir)
    return out_dir


def test_lora_adapter_folder_loads_onto_its_base(tiny_qwen_dir, images, tmp_path):
    pytest.importorskip("peft", reason="LoRA adapters need peft (pip install -e '.[train]')")
    adapter = make_adapter(tiny_qwen_dir, tmp_path / "adapter")
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        tiny_qwen_dir)
    assert not (adapter / "config.json").exists()
    requests = [request(q, images["edge"]) for q in QUESTIONS[:3]]
    tuned = load_model(f"hf:{adapter}")
    assert tuned.adapter_dir == adapter and tuned.base_dir == tiny_qwen_dir
    tuned_answers = generate(tuned, requests)
    base_answers = generate(load_model(f"hf:{tiny_qwen_dir}"), requests)
    assert all(r.ok and r.output_tokens > 0 for r in tuned_answers)
    assert [r.text for r in tuned_answers] != [r.text for r in base_answers]


def test_missing_folder_names_path_and_expected_files(tmp_path):
    with pytest.raises(ModelConfigError, match=r"absent.*does not exist.*config\.json"):
        load_model(f"hf:{tmp_path / 'absent'}")


def test_folder_without_checkpoint_files_lists_what_is_missing(tiny_qwen_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelConfigError, match=r"lacks config\.json.*processor file.*tokenizer file"):
        load_model(f"hf:{empty}")
    no_processor = tmp_path / "weights_only"
    no_processor.mkdir()
    shutil.copy(tiny_qwen_dir / "config.json", no_processor)
    with pytest.raises(ModelConfigError, match=r"weights_only lacks processor file"):
        load_model(f"hf:{no_processor}")


def test_corrupt_weights_fail_with_the_folder_named(tiny_qwen_dir, images, tmp_path):
    broken = tmp_path / "broken_ckpt"
    shutil.copytree(tiny_qwen_dir, broken)
    (broken / "model.safetensors").write_bytes(b"truncated")
    model = load_model(f"hf:{broken}")
    with pytest.raises(ModelConfigError, match=r"cannot load the checkpoint in .*broken_ckpt"):
        generate(model, [request(QUESTIONS[0], images["centre"])])


def test_adapter_with_a_non_local_base_is_refused(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "Qwen/Qwen3-VL-4B"}))
    with pytest.raises(ModelConfigError, match=r"Qwen/Qwen3-VL-4B.*not a local folder.*base_model_name_or_path"):
        load_model(f"hf:{tmp_path}")


def test_options_are_validated(tiny_qwen_dir):
    with pytest.raises(ModelConfigError, match=r"batch_sise"):
        load_model(f"hf:{tiny_qwen_dir}", batch_sise=2)
    with pytest.raises(ModelConfigError, match=r"dtype"):
        load_model(f"hf:{tiny_qwen_dir}", dtype="float8")


def test_registry_shorthand_builds_an_hf_model(tiny_qwen_dir):
    from wafersage.models.hf_backend import HFModel

    model = load_model(f"hf:{tiny_qwen_dir}")
    assert isinstance(model, HFModel) and isinstance(model, Model)
    assert model.name == tiny_qwen_dir.name and model.batch_size == 4
    assert model.options.path == str(tiny_qwen_dir)
    asyncio.run(model.aclose())
