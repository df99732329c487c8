"""The ``vllm`` backend: request conversion and config checks everywhere; generation only with vLLM and a GPU."""
from __future__ import annotations

import asyncio
import base64
import importlib.util
import io
import json

import pytest
from PIL import Image

from wafersage.models.base import ChatMessage, GenerationParams, ModelRequest
from wafersage.models.config import ModelConfigError
from wafersage.models.registry import load_model
from wafersage.models.vllm_backend import vllm_conversation

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def has_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.fixture
def wafer_image(tmp_path) -> str:
    path = tmp_path / "wafer.png"
    Image.new("RGB", (200, 100), (32, 128, 128)).save(path)
    return str(path)


def request(image: str | None, question: str = "Which defect pattern is this?") -> ModelRequest:
    return ModelRequest(messages=[ChatMessage(role="system", content="Be brief."),
                                  ChatMessage(role="user", content=question)],
                        images=[image] if image else [], params=GenerationParams(max_tokens=8))


def test_conversation_carries_images_as_png_data_urls(wafer_image):
    messages, sent = vllm_conversation(request(wafer_image), max_side=50)
    assert messages[0] == {"role": "system", "content": "Be brief."}
    image_part, text_part = messages[1]["content"]
    assert text_part == {"type": "text", "text": "Which defect pattern is this?"}
    assert image_part["type"] == "image_url"
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,") and sent == len(url)
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.format == "PNG" and decoded.size == (50, 25)  # capped, aspect kept


def test_jpeg_encoding_can_be_chosen(wafer_image):
    messages, _ = vllm_conversation(request(wafer_image), max_side=None, image_format="jpeg")
    url = messages[1]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (200, 100)


def test_text_only_request_stays_plain():
    messages, sent = vllm_conversation(request(None), max_side=None)
    assert messages[1] == {"role": "user", "content": "Which defect pattern is this?"} and sent == 0


def test_images_without_a_user_message_are_refused(wafer_image):
    lonely = ModelRequest(messages=[ChatMessage(role="system", content="Be brief.")], images=[wafer_image])
    with pytest.raises(ValueError, match="no user message"):
        vllm_conversation(lonely, max_side=None)


def test_unreadable_image_names_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"absent\.png"):
        vllm_conversation(request(str(tmp_path / "absent.png")), max_side=None)


def test_options_are_validated(tmp_path):
    with pytest.raises(ModelConfigError, match="gpu_memory_utilization"):
        load_model(f"vllm:{tmp_path}", gpu_memory_utilization=1.5)
    with pytest.raises(ModelConfigError, match="does not exist"):
        load_model(f"vllm:{tmp_path / 'absent'}")


def test_adapter_folders_are_refused(tiny_qwen_dir, tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tiny_qwen_dir)}))
    with pytest.raises(ModelConfigError, match=r"LoRA adapter.*merge_and_unload.*'hf'"):
        load_model(f"vllm:{tmp_path}")


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here; this checks the message shown without it")
def test_missing_vllm_says_how_to_install(tiny_qwen_dir):
    with pytest.raises(ModelConfigError, match=r"pip install 'wafersage\[vllm\]'"):
        load_model(f"vllm:{tiny_qwen_dir}")


def vllm_missing() -> str:
    """Why vLLM cannot run here, or "" where it can."""
    if not HAS_VLLM:
        return "vLLM is not installed (pip install 'wafersage[vllm]'; needs a CUDA GPU)"
    return "" if has_gpu() else "vLLM needs a CUDA GPU and torch sees none"


@pytest.mark.skipif(bool(vllm_missing()), reason=vllm_missing() or "runs")
def test_vllm_generates_for_image_requests(tiny_qwen_dir, wafer_image):
    model = load_model(f"vllm:{tiny_qwen_dir}", gpu_memory_utilization=0.3, max_model_len=2048,
                       enforce_eager=True)
    assert model.deployment == "local"
    requests = [request(wafer_image, q) for q in ("Where?", "Which pattern does this wafer show?", "Why?")]
    first = asyncio.run(model.generate(requests))
    assert all(r.ok and r.output_tokens > 0 and r.input_tokens > 0 for r in first), first
    assert first[1].input_tokens > first[0].input_tokens
    again = asyncio.run(model.generate(requests))
    assert [r.text for r in again] == [r.text for r in first]  # temperature 0 is greedy
    asyncio.run(model.aclose())
