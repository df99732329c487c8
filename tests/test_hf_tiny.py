"""The tiny offline Qwen3-VL: real Qwen3-VL classes at toy sizes, reloadable with the Auto classes."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.torch


def test_tiny_model_reloads_with_auto_classes(tiny_qwen_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    config = json.loads((tiny_qwen_dir / "config.json").read_text())
    assert config["model_type"] == "qwen3_vl"
    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen_dir)
    processor = AutoProcessor.from_pretrained(tiny_qwen_dir)
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen3VLProcessor"
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    tokenizer = processor.tokenizer
    for token, key in (("<|image_pad|>", "image_token_id"), ("<|vision_start|>", "vision_start_token_id"),
                       ("<|vision_end|>", "vision_end_token_id"), ("<|video_pad|>", "video_token_id")):
        assert tokenizer.convert_tokens_to_ids(token) == config[key]
    assert model.generation_config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id


def test_tiny_processor_uses_qwen_chat_template(tiny_qwen_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_qwen_dir)
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which pattern?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|image_pad|><|vision_end|>Which pattern?<|im_end|>\n<|im_start|>assistant\n")


def test_tiny_tokenizer_round_trips_wafer_text(tiny_qwen_dir):
    from transformers import AutoProcessor

    tokenizer = AutoProcessor.from_pretrained(tiny_qwen_dir).tokenizer
    text = "A Scratch near the edge at 2 o'clock, (0.31, 0.42); likely cause: CMP Handling robot."
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text) / 2  # BPE merges learned from wafer vocabulary, not bytes alone


def test_seed_decides_the_weights_not_the_tokenizer(tiny_qwen_dir, tmp_path):
    from safetensors.numpy import load_file

    from wafersage.models.testing.tiny import build_tiny_qwen3_vl

    again = load_file(build_tiny_qwen3_vl(tmp_path / "again", seed=0) / "model.safetensors")
    first = load_file(tiny_qwen_dir / "model.safetensors")
    assert again.keys() == first.keys()
    assert all((again[k] == first[k]).all() for k in first)
    other_dir = build_tiny_qwen3_vl(tmp_path / "other", seed=1)
    other = load_file(other_dir / "model.safetensors")
    assert all(other[k].shape == first[k].shape for k in first)
    assert any((other[k] != first[k]).any() for k in first)
    assert (other_dir / "tokenizer.json").read_text() == (tiny_qwen_dir / "tokenizer.json").read_text()
