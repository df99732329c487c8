"""Model declarations: ``configs/models/*.yaml``, a registered name, or a shorthand like ``hf:PATH``.

A YAML file has ``name`` and ``backend`` and the backend's own options at the top level, e.g.::

    name: gemini-3-flash
    backend: openai
    base_url: https://generativelanguage.googleapis.com/v1beta/openai/
    model: gemini-3-flash
    api_key_env: GEMINI_API_KEY
    timeout: 60
    max_concurrency: 16
    price_per_million: {input: 0.5, output: 3.0}

Each backend validates its options with its own pydantic ``Options`` model (unknown keys are errors).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SECRET_KEYS = ("api_key",)
#: the file a training run writes into its exported model folder (stage, settings, system prompt, item ids)
TRAINING_MANIFEST = "wafersage_training.json"


class ModelConfigError(ValueError):
    """A model declaration is missing or invalid; the message names the file or name and the fix."""


class PricePerMillion(BaseModel):
    """A config's ``price_per_million``: US dollars per million tokens; a side left out costs nothing. The one
    parser of the table, for the openai backend's costs and the dry run's estimate."""

    model_config = ConfigDict(extra="forbid")
    input: float = Field(0.0, ge=0, description="USD per million input (prompt) tokens")
    output: float = Field(0.0, ge=0, description="USD per million output (completion) tokens")

    @model_validator(mode="wrap")
    @classmethod
    def _explain(cls, value: Any, handler: Any) -> PricePerMillion:
        """Any problem with the table gets one message saying what a price table is."""
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(f"expected {{input: USD, output: USD}} per million tokens (numbers, 0 or more; a side "
                             f"left out costs 0), got {value!r}") from None


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(description="display name in runs and leaderboards")
    backend: str = Field(description="openai, vllm, hf, oracle, constant, random or specialist")
    offline: bool = Field(False, description="refuse every endpoint not on loopback or in allow_hosts")
    allow_hosts: list[str] = Field(default_factory=list, description="hosts allowed when offline")
    source: str | None = Field(None, description="where this config came from (file path or shorthand)")
    system_prompt: str | None = Field(
        None, min_length=1, description="system turn sent with every benchmark question (any backend); null uses "
                                        "wafersage.harness.run.messages.SYSTEM_PROMPT. hf:PATH / vllm:PATH take it from "
                                        "PATH/wafersage_training.json when the model was trained by wafersage")

    @property
    def options(self) -> dict[str, Any]:
        """The backend's own options (everything but the common fields)."""
        return dict(self.model_extra or {})

    def public(self) -> dict[str, Any]:
        """The config without secrets, for run.json and reports."""
        data = self.model_dump()
        return {k: v for k, v in data.items() if k not in SECRET_KEYS}

    def parse_options(self, options_model: type[BaseModel]) -> BaseModel:
        try:
            return options_model.model_validate(self.options)
        except ValidationError as exc:
            where = self.source or self.name
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ModelConfigError(
                f"model {self.name!r} ({where}): invalid options for backend {self.backend!r}: {problems}"
            ) from None


def load_config_file(path: str | Path) -> ModelConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ModelConfigError(f"{path}: cannot read model config ({exc})") from exc
    if not isinstance(data, dict) or "name" not in data or "backend" not in data:
        raise ModelConfigError(f"{path}: a model config is a mapping with at least 'name' and 'backend'")
    if "api_key" in data:
        raise ModelConfigError(
            f"{path}: do not put an API key in a config file; name its environment variable with 'api_key_env'"
        )
    try:
        return ModelConfig(**data, source=str(path))
    except ValidationError as exc:
        raise ModelConfigError(f"{path}: invalid model config: {exc}") from None


def training_system_prompt(model_dir: str | Path) -> str | None:
    """The system prompt a model folder was trained with (its ``wafersage_training.json``), or None without one."""
    path = Path(model_dir) / TRAINING_MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelConfigError(f"{path}: cannot read the training manifest ({exc}); fix or delete the file, or "
                               "re-export the model with 'wafersage train export'") from None
    if not isinstance(manifest, dict):
        raise ModelConfigError(f"{path}: expected a JSON object; re-export the model with 'wafersage train export'")
    prompt = manifest.get("system_prompt") or (manifest.get("settings") or {}).get("system_prompt")
    return prompt if isinstance(prompt, str) and prompt.strip() else None
