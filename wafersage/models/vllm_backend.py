"""In-process vLLM (``backend: vllm``): ``LLM.chat`` over batches of image+text conversations, on a GPU.

Images travel as base64 PNG (or JPEG) ``image_url`` data URLs inside OpenAI-style chat messages, the form vLLM's
``LLM.chat`` documents for multimodal input; vLLM applies the checkpoint's own chat template. vLLM is imported
only when the model is first used (extra ``vllm``)::

    name: qwen3-vl-4b
    backend: vllm
    path: checkpoints/qwen3-vl-4b
    tensor_parallel_size: 1
    gpu_memory_utilization: 0.85
    max_model_len: 8192
    batch_size: 64
    dtype: auto

vLLM batches continuously inside one ``LLM.chat`` call; ``batch_size`` is how many requests the runner hands
over per call. A LoRA adapter folder is refused: merge it first (peft ``merge_and_unload``) or use ``hf``.
"""
from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from .base import ModelRequest, ModelResponse, SentImage
from .config import ModelConfig, ModelConfigError
from .hf_backend import chat_messages, checkpoint_folders
from .images import ImageFormat, capped_size, encode_image, image_size


class VLLMOptions(BaseModel):
    """Options of the ``vllm`` backend (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="checkpoint folder (config.json + processor files); adapters must be merged")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs the model is split over")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="share of GPU memory vLLM may take")
    max_model_len: int | None = Field(8192, ge=64, description="context length; None takes the checkpoint's")
    batch_size: int = Field(64, ge=1, description="requests per LLM.chat call; the runner sends batches this big")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="weights dtype")
    max_new_tokens: int = Field(512, ge=1, description="cap on new tokens; a request gets min(its max_tokens, this)")
    image_max_side: int | None = Field(
        None, ge=16, description="downscale images whose longer side exceeds this (pixels); None keeps them")
    image_format: ImageFormat = Field("png", description="how images are encoded for vLLM: png or jpeg")
    max_images_per_prompt: int = Field(1, ge=1, description="vLLM's limit_mm_per_prompt for images")
    enforce_eager: bool = Field(False, description="skip CUDA graph capture (faster start, slower decoding)")
    seed: int = Field(0, description="engine seed; a request's own seed still applies when it samples")

    def sent_image(self, path: str) -> SentImage:
        """The size and format :func:`vllm_conversation` sends with these options."""
        return capped_size(image_size(path), self.image_max_side), self.image_format


def vllm_conversation(request: ModelRequest, max_side: int | None,
                      image_format: ImageFormat = "png") -> tuple[list[dict[str, Any]], int]:
    """The request as OpenAI-style messages with images as data URLs, and the URL bytes they carry."""
    urls = [encode_image(path, max_side, image_format).data_url for path in request.images]
    messages = chat_messages(request, lambda i: {"type": "image_url", "image_url": {"url": urls[i]}})
    return messages, sum(len(url) for url in urls)


class VLLMModel:
    """A vLLM engine in this process answering batches of requests (see the module docstring)."""

    deployment = "local"

    def __init__(self, config: ModelConfig):
        self.config = config
        self.name = config.name
        self.options: VLLMOptions = config.parse_options(VLLMOptions)  # type: ignore[assignment]
        self.batch_size = self.options.batch_size
        base, adapter = checkpoint_folders(config, self.options.path)
        if adapter is not None:
            raise ModelConfigError(
                f"model {self.name!r}: {adapter} is a LoRA adapter; the vllm backend needs a full checkpoint. "
                "Merge it (peft merge_and_unload + save_pretrained) or use backend 'hf'")
        if importlib.util.find_spec("vllm") is None:
            raise ModelConfigError(
                f"model {self.name!r}: backend 'vllm' needs vLLM, which is not installed; "
                "install it with pip install 'wafersage[vllm]' -c constraints.txt (needs a CUDA GPU), "
                "or use backend 'hf'")
        self.path: Path = base
        self._llm = None
        self._lock = threading.Lock()

    def sent_image(self, path: str) -> SentImage:
        return self.options.sent_image(path)

    def _load(self) -> None:
        if self._llm is not None:
            return
        import torch
        from vllm import LLM

        if not torch.cuda.is_available():
            raise ModelConfigError(f"model {self.name!r}: vLLM needs a CUDA GPU and torch sees none; "
                                   "use backend 'hf' on this machine")
        o = self.options
        self._llm = LLM(model=str(self.path), tensor_parallel_size=o.tensor_parallel_size,
                        gpu_memory_utilization=o.gpu_memory_utilization, max_model_len=o.max_model_len,
                        dtype=o.dtype, seed=o.seed, enforce_eager=o.enforce_eager,
                        limit_mm_per_prompt={"image": o.max_images_per_prompt})

    async def generate(self, requests: Sequence[ModelRequest]) -> list[ModelResponse]:
        """One response per request, in order; the engine runs in a worker thread so the event loop stays free."""
        if not requests:
            return []
        return await asyncio.to_thread(self._generate_sync, list(requests))

    def _generate_sync(self, requests: list[ModelRequest]) -> list[ModelResponse]:
        from vllm import SamplingParams

        with self._lock:
            self._load()
            responses: list[ModelResponse | None] = [None] * len(requests)
            groups: dict[tuple, list[tuple[int, list, int]]] = {}
            for index, request in enumerate(requests):
                try:
                    conversation, sent = vllm_conversation(request, self.options.image_max_side,
                                                           self.options.image_format)
                except Exception as exc:  # one bad request (unreadable image, bad messages) fails alone
                    responses[index] = ModelResponse(error=f"{type(exc).__name__}: {exc}")
                    continue
                p = request.params
                key = (min(p.max_tokens, self.options.max_new_tokens), p.temperature, p.top_p, p.seed)
                groups.setdefault(key, []).append((index, conversation, sent))
            for (max_tokens, temperature, top_p, seed), group in groups.items():
                sampling = SamplingParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p or 1.0,
                                          seed=seed if temperature > 0 else None)
                started = time.perf_counter()
                try:
                    outputs = self._llm.chat([conv for _, conv, _ in group], sampling_params=sampling,
                                             use_tqdm=False)
                except Exception as exc:  # the group fails, the run goes on
                    for index, _, _ in group:
                        responses[index] = ModelResponse(error=f"{type(exc).__name__}: {exc}")
                    continue
                latency = (time.perf_counter() - started) / len(group)
                for (index, _, sent), output in zip(group, outputs):
                    completion = output.outputs[0]
                    responses[index] = ModelResponse(
                        text=completion.text.strip(), input_tokens=len(output.prompt_token_ids or []),
                        output_tokens=len(completion.token_ids), latency_s=latency, cost_usd=0.0,
                        image_bytes_sent=sent)
            return [r if r is not None else ModelResponse(error="internal: no response") for r in responses]

    async def aclose(self) -> None:
        """Drop the engine; its GPU memory is freed when vLLM's workers exit."""
        self._llm = None
