"""Local transformers checkpoints (``backend: hf``): batched image+text generation in a worker thread.

A config names a checkpoint folder (``config.json`` plus processor/tokenizer files, e.g. a Qwen3-VL folder) or a
LoRA adapter folder (``adapter_config.json``, loaded through peft onto the base folder it names). torch,
transformers and peft are imported only when the model is first used, so the core install never needs them::

    name: qwen3-vl-4b-sft
    backend: hf
    path: checkpoints/qwen3-vl-4b-sft
    device: auto          # auto | cpu | cuda
    dtype: auto           # auto (bfloat16 on a GPU that has it, else float32) | float32 | bfloat16 | float16
    batch_size: 4
    max_new_tokens: 512
    image_max_side: 512

Config and folder problems raise :class:`ModelConfigError` (at construction, or at the first ``generate`` when
the weights fail to load); a request that cannot run (unreadable image, out of memory) gets a response with
``error`` and the others go on. Requests in one batch that ask for different generation parameters run as separate sub-batches. With
temperature 0 decoding is greedy (deterministic, and batched answers equal one-at-a-time answers thanks to left
padding). A sampled request with a seed runs alone after ``torch.manual_seed(seed)``, so the same request and seed
give the same answer in any batch; sampled requests without a seed are batched.
``response_format`` is not enforced here (it is a hint for API backends).
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from ..tasks.maps.untrusted import check_image
from .base import GenerationParams, ModelRequest, ModelResponse, SentImage
from .config import ModelConfig, ModelConfigError
from .images import ImageReadError, capped_size, image_size

PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")


class HFOptions(BaseModel):
    """Options of the ``hf`` backend (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="checkpoint folder (config.json + processor files) or LoRA adapter folder")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto picks cuda when available")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="weights dtype; auto = bfloat16 on a GPU that supports it, float32 otherwise")
    batch_size: int = Field(4, ge=1, description="requests per generate() call; the runner sends batches this big")
    max_new_tokens: int = Field(512, ge=1, description="cap on new tokens; a request gets min(its max_tokens, this)")
    image_max_side: int | None = Field(
        None, ge=16, description="downscale images whose longer side exceeds this (pixels); None keeps them")

    def sent_image(self, path: str) -> SentImage:
        """The size the model sees; no encoding, since the processor gets decoded pixels."""
        return capped_size(image_size(path), self.image_max_side), None


def load_image(path: str, max_side: int | None):
    """Open an image as RGB, shrunk (aspect kept) so its long side is at most ``max_side``.

    Same size rule (:func:`~wafersage.models.images.capped_size`) and nearest-neighbour resampling as
    :func:`~wafersage.models.images.encode_image`, so every backend sees a wafer map's dies alike (each die stays
    one solid colour).
    """
    from PIL import Image

    check_image(path, where="image to send", error=ImageReadError)
    try:
        with Image.open(path) as img:
            image = img.convert("RGB")
    except OSError as exc:
        raise ImageReadError(f"cannot read image {path} ({exc}); check the request's image path") from exc
    size = capped_size(image.size, max_side)
    if size != image.size:
        image = image.resize(size, Image.Resampling.NEAREST)
    return image


def chat_messages(request: ModelRequest, image_part: Any = None) -> list[dict[str, Any]]:
    """The request as chat-template messages; the images go first in the last user message.

    ``image_part(i)`` returns the content part of image ``i`` (default ``{"type": "image"}``, which the
    processor's chat template turns into the model's image placeholder).
    """
    messages: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in request.messages]
    if request.images:
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        if not users:
            raise ValueError("the request has images but no user message to attach them to")
        last = messages[users[-1]]
        parts = [image_part(i) if image_part else {"type": "image"} for i in range(len(request.images))]
        last["content"] = parts + [{"type": "text", "text": last["content"]}]
    return messages


def checkpoint_folders(config: ModelConfig, path: str) -> tuple[Path, Path | None]:
    """Check a checkpoint or adapter folder before anything heavy loads; return (base folder, adapter folder)."""
    folder = Path(path).expanduser()
    expected = ("expected a transformers checkpoint folder with config.json and processor files "
                f"({' or '.join(PROCESSOR_FILES)} plus {' or '.join(TOKENIZER_FILES)}), "
                "or a LoRA adapter folder with adapter_config.json")
    where = f"model {config.name!r} ({config.source or 'config'})"
    if not folder.is_dir():
        raise ModelConfigError(f"{where}: checkpoint folder {folder} does not exist; {expected}; fix 'path'")
    adapter = None
    if (folder / "adapter_config.json").is_file():
        adapter_config = folder / "adapter_config.json"
        try:
            base_name = json.loads(adapter_config.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelConfigError(f"{where}: cannot read {adapter_config} ({exc})") from exc
        base = Path(str(base_name or "")).expanduser()
        if not base_name or not base.is_dir():
            raise ModelConfigError(
                f"{where}: {adapter_config} names base model {base_name!r}, which is not a local folder; "
                "set base_model_name_or_path to the base checkpoint folder")
        adapter, folder = folder, base
    missing = [f"config.json in {folder}"] if not (folder / "config.json").is_file() else []
    proc_dirs = [d for d in (adapter, folder) if d is not None]
    for kind, names in (("processor", PROCESSOR_FILES), ("tokenizer", TOKENIZER_FILES)):
        if not any((d / n).is_file() for d in proc_dirs for n in names):
            missing.append(f"{kind} file ({' or '.join(names)})")
    if missing:
        raise ModelConfigError(f"{where}: {folder} lacks {', '.join(missing)}; {expected}")
    return folder, adapter


def _batch_key(params: GenerationParams, cap: int, index: int) -> tuple:
    """Requests with equal keys share a generate() call.

    A sampled request with a seed gets a call of its own, so its answer depends on its seed alone and not on
    the batch it arrived in.
    """
    key = (min(params.max_tokens, cap), params.temperature, params.top_p, params.seed)
    return key + (index,) if params.temperature > 0 and params.seed is not None else key


class HFModel:
    """A transformers image-text-to-text model answering batches of requests (see the module docstring)."""

    deployment = "local"

    def __init__(self, config: ModelConfig):
        self.config = config
        self.name = config.name
        self.options: HFOptions = config.parse_options(HFOptions)  # type: ignore[assignment]
        self.batch_size = self.options.batch_size
        self.base_dir, self.adapter_dir = checkpoint_folders(config, self.options.path)
        self._model = None
        self._processor = None
        self._device = None
        self._lock = threading.Lock()

    def sent_image(self, path: str) -> SentImage:
        return self.options.sent_image(path)

    # -- loading ---------------------------------------------------------------------------------------
    def _load(self) -> None:
        """Load processor and weights once (called under the lock, in the worker thread).

        Raises :class:`ModelConfigError` naming the folder when they cannot load: every request would fail alike.
        """
        if self._model is not None:
            return
        try:
            self._load_parts()
        except ModelConfigError:
            raise
        except ImportError as exc:
            raise ModelConfigError(f"model {self.name!r}: {exc}; install the extra with pip install -e "
                                   "'.[local]' (LoRA adapters: '.[train]') -c constraints.txt") from exc
        except Exception as exc:
            where = self.adapter_dir or self.base_dir
            raise ModelConfigError(f"model {self.name!r}: cannot load the checkpoint in {where} "
                                   f"({type(exc).__name__}: {exc})") from exc

    def _load_parts(self) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = self.options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ModelConfigError(f"model {self.name!r}: device 'cuda' asked for but torch sees no GPU; "
                                   "use device: cpu or auto")
        dtype = self.options.dtype
        if dtype == "auto":
            dtype = "bfloat16" if device == "cuda" and torch.cuda.is_bf16_supported() else "float32"
        processor_dir = self.adapter_dir if self.adapter_dir and any(
            (self.adapter_dir / n).is_file() for n in PROCESSOR_FILES) else self.base_dir
        processor = AutoProcessor.from_pretrained(processor_dir)
        if not getattr(processor, "chat_template", None):
            raise ModelConfigError(f"model {self.name!r}: the processor in {processor_dir} has no chat template; "
                                   "save one with the processor (chat_template.jinja)")
        processor.tokenizer.padding_side = "left"
        model = AutoModelForImageTextToText.from_pretrained(self.base_dir, dtype=getattr(torch, dtype))
        if self.adapter_dir is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, self.adapter_dir).merge_and_unload()
        self._model, self._processor, self._device = model.to(device).eval(), processor, device

    # -- generation ------------------------------------------------------------------------------------
    async def generate(self, requests: Sequence[ModelRequest]) -> list[ModelResponse]:
        """One response per request, in order; compute runs in a worker thread so the event loop stays free."""
        if not requests:
            return []
        return await asyncio.to_thread(self._generate_sync, list(requests))

    def _generate_sync(self, requests: list[ModelRequest]) -> list[ModelResponse]:
        with self._lock:
            self._load()
            responses: list[ModelResponse | None] = [None] * len(requests)
            prepared: dict[tuple, list[tuple[int, str, list]]] = {}
            for index, request in enumerate(requests):
                try:
                    images = [load_image(p, self.options.image_max_side) for p in request.images]
                    text = self._processor.apply_chat_template(
                        chat_messages(request), add_generation_prompt=True, tokenize=False)
                except Exception as exc:  # one bad request (unreadable image, bad messages) fails alone
                    responses[index] = ModelResponse(error=f"{type(exc).__name__}: {exc}")
                    continue
                key = _batch_key(request.params, self.options.max_new_tokens, index)
                prepared.setdefault(key, []).append((index, text, images))
            for key, group in prepared.items():
                for start in range(0, len(group), self.batch_size):
                    chunk = group[start:start + self.batch_size]
                    for (index, *_), response in zip(chunk, self._run_batch(key, chunk)):
                        responses[index] = response
            return [r if r is not None else ModelResponse(error="internal: no response") for r in responses]

    def _run_batch(self, key: tuple, chunk: list[tuple[int, str, list]]) -> list[ModelResponse]:
        import torch

        max_new_tokens, temperature, top_p, seed = key[:4]
        texts = [text for _, text, _ in chunk]
        images = [image for _, _, imgs in chunk for image in imgs]
        started = time.perf_counter()
        try:
            inputs = self._processor(text=texts, images=images or None, padding=True, return_tensors="pt")
            inputs = inputs.to(self._device)
            sampling: dict[str, Any] = {"do_sample": False}
            if temperature > 0:
                sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p or 1.0}
                if seed is not None:
                    torch.manual_seed(seed)
            tokenizer = self._processor.tokenizer
            with torch.inference_mode():
                output = self._model.generate(**inputs, max_new_tokens=max_new_tokens,
                                              pad_token_id=tokenizer.pad_token_id, **sampling)
        except Exception as exc:  # e.g. out of memory: the batch fails, the run goes on
            error = f"{type(exc).__name__}: {exc}"
            return [ModelResponse(error=error, latency_s=time.perf_counter() - started) for _ in chunk]
        latency = (time.perf_counter() - started) / len(chunk)
        new_tokens = output[:, inputs["input_ids"].shape[1]:].tolist()
        input_counts = inputs["attention_mask"].sum(dim=1).tolist()
        stop_ids = self._stop_ids()
        responses = []
        for row, n_input in zip(new_tokens, input_counts):
            end = next((i + 1 for i, tok in enumerate(row) if tok in stop_ids), len(row))
            text = tokenizer.decode(row[:end], skip_special_tokens=True).strip()
            responses.append(ModelResponse(text=text, input_tokens=int(n_input), output_tokens=end,
                                           latency_s=latency, cost_usd=0.0))
        return responses

    def _stop_ids(self) -> set[int]:
        """Token ids that end a generation: the generation config's eos ids and the tokenizer's eos."""
        eos = self._model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self._processor.tokenizer.eos_token_id is not None:
            ids.add(self._processor.tokenizer.eos_token_id)
        return ids

    async def aclose(self) -> None:
        """Drop the weights (and the GPU cache when on a GPU)."""
        if self._model is None:
            return
        device, self._model, self._processor = self._device, None, None
        if device == "cuda":
            import torch

            torch.cuda.empty_cache()
