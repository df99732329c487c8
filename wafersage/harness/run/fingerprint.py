"""The request fingerprint of a run: what shapes every request it sends, hashed part by part, for the resume check.

A run folder's ``run.json`` keeps one sha256 per part (never a value, so a key inside ``base_url`` or a header in
``extra_body`` is stored only as a hash): each answer-relevant model config field (``model.<field>``, see
:func:`~.cache.output_config`), the system prompt actually sent (the config's, else the harness default
:data:`~.messages.SYSTEM_PROMPT`, so a change of the default is a change), each sampling setting
(``sampling.<field>`` of :class:`~wafersage.models.base.GenerationParams`), the benchmark hash and the split.
Resuming compares the parts and names those that differ (:func:`changed_parts`); a part this version no longer
fingerprints (:data:`RETIRED_PARTS`) is not a difference.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from ...models.base import GenerationParams
from ...models.config import ModelConfig
from .cache import output_config
from .messages import system_prompt_sent

Fingerprint = dict[str, str]  # part name -> sha256 of its value
#: parts that folders made by older versions record and this one leaves out: the endpoint is not the model's identity
RETIRED_PARTS = frozenset({"model.base_url"})


def _sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def request_fingerprint(config: ModelConfig, params: GenerationParams, bench_hash: str, split: str) -> Fingerprint:
    """One sha256 per part that shapes the run's requests (see the module docstring)."""
    model = {k: v for k, v in output_config(config).items() if k != "system_prompt"}
    parts: dict[str, Any] = {f"model.{key}": value for key, value in model.items()}
    parts["system_prompt"] = system_prompt_sent(config.system_prompt)
    parts |= {f"sampling.{key}": value for key, value in params.model_dump().items()}
    parts |= {"benchmark": bench_hash, "split": split}
    return {name: _sha256(value) for name, value in sorted(parts.items())}


def _describe(part: str) -> str:
    kind, _, field = part.partition(".")
    if kind == "model":
        return f"model config field {field!r}"
    if kind == "sampling":
        return f"sampling setting {field!r}"
    return part.replace("_", " ")


def changed_parts(recorded: Fingerprint, current: Fingerprint) -> list[str]:
    """The parts that differ (set in one only, or to another value), in words, e.g. ``sampling setting 'seed'``."""
    names = sorted((set(recorded) - RETIRED_PARTS) | set(current))
    return [_describe(name) for name in names if recorded.get(name) != current.get(name)]
