"""Token and cost estimates for ``wafersage eval --dry-run``: nothing is called, nothing is written.

Rules (rough on purpose, stated in the result): text tokens = characters / 4; an image costs one token per 28x28
pixel patch of the size actually sent plus 2 marker tokens (the Qwen-VL rule; OpenAI-style providers charge the
same order of magnitude for a 512-pixel image); the expected output is as long as the reference answer, and the
upper bound is ``max_tokens`` per request. Prices come from the model config's ``price_per_million``
``{input, output}`` (US dollars per million tokens).
"""
from __future__ import annotations

import math
from typing import Sequence

from pydantic import BaseModel, Field, ValidationError

from ...models.baselines import BASELINE_BACKENDS
from ...models.config import ModelConfig, ModelConfigError, PricePerMillion
from ...tasks.bench.schema import VQAItem
from .records import SentRequest

CHARS_PER_TOKEN = 4
IMAGE_PATCH = 28
IMAGE_MARKER_TOKENS = 2
IMAGE_TOKEN_RULE = f"ceil(w/{IMAGE_PATCH})*ceil(h/{IMAGE_PATCH})+{IMAGE_MARKER_TOKENS} per image, at the size sent"


class CostEstimate(BaseModel):
    """What a run would cost; ``cost_usd`` is None when the config has no price table."""

    model_name: str
    n_requests: int
    text_tokens: int = Field(description="input text tokens (characters / 4)")
    image_tokens: int = Field(description="input image tokens by the rule in image_token_rule")
    input_tokens: int
    output_tokens: int = Field(description="expected output tokens: the reference answers' length")
    output_tokens_max: int = Field(description="upper bound: max_tokens per request")
    price_per_million: dict[str, float] | None
    cost_usd: float | None
    cost_usd_max: float | None
    image_token_rule: str = IMAGE_TOKEN_RULE


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def image_tokens(size: tuple[int, int] | None) -> int:
    if size is None:
        return 0
    width, height = size
    return math.ceil(width / IMAGE_PATCH) * math.ceil(height / IMAGE_PATCH) + IMAGE_MARKER_TOKENS


def price_table(config: ModelConfig) -> dict[str, float] | None:
    """The config's ``price_per_million`` as ``{input, output}`` (a side left out is 0), None without one."""
    if config.backend in BASELINE_BACKENDS:
        return {"input": 0.0, "output": 0.0}
    prices = config.options.get("price_per_million")
    if prices is None:
        return None
    try:
        return PricePerMillion.model_validate(prices).model_dump()
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise ModelConfigError(
            f"model {config.name!r} ({config.source or 'config'}): price_per_million: {problem}") from None


def estimate_cost(config: ModelConfig, sent: Sequence[SentRequest], items: Sequence[VQAItem]) -> CostEstimate:
    """Estimate one request per ``sent`` entry; ``items`` (same order) give the expected answer lengths."""
    text = sum(text_tokens(m["content"]) for request in sent for m in request.messages)
    images = sum(image_tokens(request.image_size) for request in sent)
    output = sum(text_tokens(item.answer) for item in items)
    output_max = sum(int(request.params.get("max_tokens", 0)) for request in sent)
    prices = price_table(config)

    def cost(out_tokens: int) -> float | None:
        if prices is None:
            return None
        return ((text + images) * prices["input"] + out_tokens * prices["output"]) / 1e6

    return CostEstimate(
        model_name=config.name, n_requests=len(sent), text_tokens=text, image_tokens=images,
        input_tokens=text + images, output_tokens=output, output_tokens_max=output_max,
        price_per_million=prices, cost_usd=cost(output), cost_usd_max=cost(output_max),
    )
