"""Any registered model as the synchronous ``generate(prompt, png_bytes_or_None) -> text`` that synthesis takes.

``wafersage.tasks`` never imports a model: the synthesis stages (describer, rubric builder, VQA writer) take a plain
callable. :class:`ModelCaller` is that callable for any model of :mod:`wafersage.models.registry` (API, vLLM,
transformers): each call runs the model's async ``generate`` on the caller's private event loop (one call at a
time, in the calling thread) and goes through the :class:`~wafersage.harness.run.cache.ResponseCache` first, so a
rebuild — after a crash, or with ``--force`` — pays only for what the model has not answered yet. A failed call
raises :class:`ModelCallError`; the builder records it in ``failures.jsonl`` with the wafer. A failure that every
call would share — credentials refused (HTTP 401/403), an unknown endpoint or model (404), an endpoint that cannot
be reached — raises :class:`~wafersage.tasks.synth.prompt_templates.ModelUnavailable` with the fix, and the build
stops.
"""
from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
from pathlib import Path

from ...models.base import ChatMessage, GenerationParams, ModelRequest, ModelResponse
from ...models.config import ModelConfig, ModelConfigError
from ...models.registry import load_model
from ...tasks.synth.prompt_templates import ModelCallFailed, ModelUnavailable
from .cache import ResponseCache, cached_generate

#: room for a VQA writer's JSON list of 8–10 pairs
DEFAULT_MAX_TOKENS = 4096
#: errors (as the backends word them) that every call to the model would get, with the fix
SYSTEMIC_ERRORS = (
    (re.compile(r"^HTTP 40[13]\b"), "the endpoint refused the credentials: check the API key {key}"),
    (re.compile(r"^HTTP 404\b"), "the endpoint does not know this path or model: check base_url and model"),
    (re.compile(r"^connection error\b"), "the endpoint cannot be reached: check base_url and that the server runs"),
)


class ModelCallError(ModelCallFailed):
    """A model call ended in an error after the backend's own retries (the message names the model)."""


def systemic_fix(error: str, config: ModelConfig) -> str | None:
    """The fix for an error every call would share (see :data:`SYSTEMIC_ERRORS`), or None for a one-off failure."""
    variable = config.options.get("api_key_env")
    key = (f"in ${variable} (the config's api_key_env)" if variable else
           "(the config sets no api_key_env: name the environment variable that holds the key)")
    return next((fix.format(key=key) for pattern, fix in SYSTEMIC_ERRORS if pattern.search(error)), None)


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
        if response.ok:
            return response.text
        fix = systemic_fix(response.error, self.config)
        where = f"model {self.config.name!r} ({self.config.source or 'no config file'})"
        if fix is not None:
            raise ModelUnavailable(f"{where}: {response.error}; {fix}")
        raise ModelCallError(f"model {self.config.name!r}: {response.error}")

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
