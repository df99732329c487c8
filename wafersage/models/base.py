"""The one interface every VLM backend implements."""
from __future__ import annotations

from typing import Any, Literal, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, Field


#: where a model runs: a paid remote endpoint, this machine (weights or a loopback server), or a built-in baseline
Deployment = Literal["api", "local", "baseline"]
#: what a backend sends for an image file: (width, height) after its size cap, and its encoding (png or jpeg);
#: the encoding is None for a backend that hands the model decoded pixels, both are None for one that sends nothing
SentImage = tuple[tuple[int, int] | None, str | None]


class ChatMessage(BaseModel):
    role: str  # "system", "user" or "assistant"
    content: str


class GenerationParams(BaseModel):
    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = 0
    response_format: dict[str, Any] | None = None  # e.g. a JSON schema, where the backend supports it


class ModelRequest(BaseModel):
    """Chat messages plus images; the images belong to the last user message.

    ``images`` are file paths (PNG/JPEG). ``metadata`` carries the benchmark context (``item_id``, ``wafer_id``,
    ``category``, ``bench_dir``) for the built-in baselines; API backends ignore it and it is not part of the cache
    key.
    """

    messages: list[ChatMessage]
    images: list[str] = Field(default_factory=list)
    params: GenerationParams = Field(default_factory=GenerationParams)
    metadata: dict[str, Any] = Field(default_factory=dict)


class ModelResponse(BaseModel):
    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0
    error: str | None = None  # set when the call failed after its retries; text is then empty
    image_bytes_sent: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Model(Protocol):
    """Async batch interface: one response per request, in order; a failed call returns a response with ``error``.

    The runner reads ``deployment`` (baselines answer from request metadata, so their answers are never cached),
    sends ``batch_size`` requests per :meth:`generate` call, and records :meth:`sent_image` for every request.
    """

    name: str
    deployment: Deployment
    batch_size: int  # requests per generate() call the runner sends

    def sent_image(self, path: str) -> SentImage:
        """The size and encoding this backend sends for the image file at ``path`` (see :data:`SentImage`)."""
        ...

    async def generate(self, requests: Sequence[ModelRequest]) -> list[ModelResponse]: ...

    async def aclose(self) -> None: ...
