"""Any registered model as the synchronous ``generate(prompt, png_bytes_or_None) -> text`` that synthesis takes.

``wafersage.tasks`` never imports a model: the synthesis stages (describer, rubric builder, VQA writer) take a plain
callable. :class:`ModelCaller` is that callable for any model of :mod:`wafersage.models.registry` (API, vLLM,
transformers): each call runs the model's async ``generate`` on the caller's private event loop (one call at a
time, in the calling thread) and goes through the :class:`~wafersage.harness.run.cache.ResponseCache` first, so a
rebuild — after a crash, or with ``--force`` — pays only for what the model has not answered yet. A failed call
raises :class:`ModelCallError`; the builder records it in ``failures.jsonl`` with the wafer.
"""
from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path

from ...models.base import ChatMessage, GenerationParams, ModelRequest, ModelResponse
from ...models.config import ModelConfig, ModelConfigError
from ...models.registry import load_model
from .cache import ResponseCache, cached_generate

#: room for a VQA writer's JSON list of 8–10 pairs
DEFAULT_MAX_TOKENS = 4096


class ModelCallError(RuntimeError):
    """A model call ended in an error after the backend's own retries (the message names the model)."""


class ModelCaller:
    """``caller(prompt, png_bytes=None) -> reply text`` over one model; use as a context manager (or ``close()``)."""

    def __init__(self, config: ModelConfig, cache: ResponseCache, *, max_tokens: int = DEFAULT_MAX_TOKENS):
        self.config = config
        self.cache = cache
        self.params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=0)
        self.model = load_model(config)
        if self.model.deployment == "baseline":
            raise ModelConfigError(
                f"model {config.name!r} is a built-in baseline: it answers benchmark questions from a benchmark "
                "folder and cannot describe maps or write questions; pass a vision-language model")
        self.n_calls = 0  # model calls made (cache misses)
        self.n_cached = 0  # replies taken from the cache
        self._loop = asyncio.new_event_loop()
        self._images = tempfile.TemporaryDirectory(prefix="wafersage-synth-images-")

    def _image_file(self, png: bytes) -> str:
        """The PNG as a file (backends take paths), named by its content so cache keys stay stable."""
        path = Path(self._images.name) / f"{hashlib.sha256(png).hexdigest()}.png"
        if not path.exists():
            path.write_bytes(png)
        return str(path)

    def _generate(self, request: ModelRequest) -> ModelResponse:
        """The request through the cache (errors are never cached: a rebuild asks again), counted."""
        response, cached = self._loop.run_until_complete(cached_generate(self.cache, self.model, self.config, request))
        if cached:
            self.n_cached += 1
        else:
            self.n_calls += 1
        return response

    def __call__(self, prompt: str, png: bytes | None = None) -> str:
        request = ModelRequest(messages=[ChatMessage(role="user", content=prompt)],
                               images=[self._image_file(png)] if png is not None else [], params=self.params)
        response = self._generate(request)
        if not response.ok:
            raise ModelCallError(f"model {self.config.name!r}: {response.error}")
        return response.text

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._loop.run_until_complete(self.model.aclose())
        finally:
            self._loop.close()
            self._images.cleanup()

    def __enter__(self) -> "ModelCaller":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
