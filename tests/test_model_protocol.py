"""What the runner reads from a backend is declared by the ``Model`` protocol; a dry run reads the same options."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from wafersage.models.base import ChatMessage, Model, ModelRequest
from wafersage.models.config import ModelConfig
from wafersage.models.registry import BACKENDS, OPTIONS, backend_options, load_model
from wafersage.models.vllm_backend import VLLMOptions, vllm_conversation


@pytest.fixture
def wafer_image(tmp_path) -> str:
    path = tmp_path / "wafer.png"
    Image.new("RGB", (600, 300), (32, 128, 128)).save(path)
    return str(path)


def openai_config(**options) -> ModelConfig:
    return ModelConfig(name="served", backend="openai", base_url="http://127.0.0.1:9/v1", model="m", **options)


def test_every_backend_has_an_options_model():
    assert set(OPTIONS) == set(BACKENDS)


@pytest.mark.parametrize("spec", ["oracle", "constant", "random", "specialist"])
def test_baselines_are_models_that_send_no_image(spec, wafer_image):
    model = load_model(spec)
    assert isinstance(model, Model) and model.deployment == "baseline" and model.batch_size == 1
    assert model.sent_image(wafer_image) == (None, None)
    assert backend_options(ModelConfig(name=spec, backend=spec)).sent_image(wafer_image) == (None, None)


@pytest.mark.parametrize("options", [{}, {"image_max_side": 100, "image_format": "jpeg"}, {"image_max_side": None}])
def test_openai_records_what_it_encodes(options, wafer_image):
    config = openai_config(**options)
    model = load_model(config)
    assert isinstance(model, Model) and model.deployment == "local" and model.batch_size == 1
    image = model.encode(wafer_image)
    assert model.sent_image(wafer_image) == ((image.width, image.height), image.image_format)
    assert backend_options(config).sent_image(wafer_image) == model.sent_image(wafer_image)


def test_defaults_come_from_the_backends_options(wafer_image):
    assert backend_options(openai_config()).sent_image(wafer_image) == ((512, 256), "png")
    hf = ModelConfig(name="hf", backend="hf", path="nowhere")  # the folder is checked when the model is built
    assert backend_options(hf).sent_image(wafer_image) == ((600, 300), None)  # decoded pixels, no cap by default
    capped = hf.model_copy(update={"image_max_side": 60})
    assert backend_options(capped).sent_image(wafer_image) == ((60, 30), None)


def test_vllm_options_record_what_its_conversation_sends(wafer_image):
    options = VLLMOptions(path="nowhere", image_max_side=100, image_format="jpeg")
    request = ModelRequest(messages=[ChatMessage(role="user", content="Which pattern?")], images=[wafer_image])
    messages, _ = vllm_conversation(request, options.image_max_side, options.image_format)
    url = messages[-1]["content"][0]["image_url"]["url"]
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert options.sent_image(wafer_image) == (sent.size, sent.format.lower())
