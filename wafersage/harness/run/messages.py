"""How a benchmark item becomes a :class:`ModelRequest`: the system prompt, the question and the wafer image.

The same ``SYSTEM_PROMPT`` and :func:`user_text` are used by the lm-evaluation-harness export, so a model sees
identical prompts through both paths. Images travel as file paths; the backend resizes (long side capped at the
model's ``image_max_side``) and encodes them (``image_format``: png or jpeg), and its ``sent_image`` tells the
runner the size and format it sends, for the run's records.
"""
from __future__ import annotations

from ...models.base import ChatMessage, GenerationParams, ModelRequest
from ...tasks.bench.folder import Benchmark
from ...tasks.bench.schema import VQAItem

SYSTEM_PROMPT = (
    "You are a semiconductor yield engineer analysing a wafer map. In the image each small square is a die: "
    "passing dies and failing dies are drawn in different colours and the area outside the wafer is blank. "
    "Answer the question about the spatial pattern of the failing dies, its shape, and its likely process cause. "
    "Answer in 1-3 sentences. If the question is a yes/no question, start your answer with Yes or No."
)

def user_text(item: VQAItem) -> str:
    """The user turn's text for an item (the image goes with it)."""
    return item.question


def system_prompt_sent(config_prompt: str | None) -> str:
    """The system turn actually sent: the model config's ``system_prompt``, else :data:`SYSTEM_PROMPT`."""
    return config_prompt or SYSTEM_PROMPT


def build_request(item: VQAItem, bench: Benchmark, params: GenerationParams | None = None,
                  system_prompt: str | None = None, *, with_image: bool = True) -> ModelRequest:
    """One request per item: system prompt (the model config's ``system_prompt``, else :data:`SYSTEM_PROMPT`),
    question, the wafer image (none for a blind run), and the benchmark context as metadata."""
    return ModelRequest(
        messages=[ChatMessage(role="system", content=system_prompt_sent(system_prompt)),
                  ChatMessage(role="user", content=user_text(item))],
        images=[str(bench.image_path(item))] if with_image else [],
        params=params or GenerationParams(),
        metadata={
            "item_id": item.id, "wafer_id": item.wafer_id, "category": item.category,
            "bench_dir": bench.location,
        },
    )
