"""Helpers for tests that play a VLM behind the real OpenAI-compatible test server during synthesis."""
from __future__ import annotations

import json

from wafersage.tasks.synth.rubric import rubric_json


def paper_rubric(rubric) -> dict:
    """A rubric in the paper's Stage-1 JSON layout (``*_avoid`` lists, ``clock_position``), as a VLM would write it."""
    data = json.loads(rubric_json(rubric))
    for key, avoid in (("spatial_rubric", "spatial_avoid"), ("morphology_rubric", "morphology_avoid"),
                       ("root_cause_rubric", "root_cause_avoid")):
        data[key][avoid] = data[key].pop("must_avoid")
    data["spatial_rubric"]["clock_position"] = data["spatial_rubric"].pop("clock_positions")
    return data


def last_user_text(payload: dict) -> tuple[str, bool]:
    """The last user message's text, and whether it carried an image."""
    content = [m for m in payload["messages"] if m["role"] == "user"][-1]["content"]
    if isinstance(content, str):
        return content, False
    return (" ".join(p.get("text", "") for p in content),
            any(p.get("type") == "image_url" for p in content))
