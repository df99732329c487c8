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

Secrets never reach a file: :func:`redact` is applied wherever a config is written or shown (``run.json``, the
judge identity in ``summary.json`` and ``calibration.json``, manifests, reprs, errors).
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SECRET_KEYS = ("api_key",)
REDACTED = "***"
#: words that make a field, header or query parameter a secret (``x-api-key``, ``access_token``, ``apiKey``, ...);
#: a name ending in ``env`` (``api_key_env``) holds a variable's name, not a secret
SECRET_WORDS = frozenset({"key", "apikey", "token", "secret", "password", "passwd", "pwd", "auth", "authorization",
                          "credential", "credentials", "cookie", "signature", "sig"})
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_AUTH_HEADER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/-]{8,}=*")
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
    no_image: bool = Field(
        False, description="send each question without the wafer image: a blind run, which measures what the model "
                           "answers from priors and the question's wording (wafersage eval --no-image)")
    system_prompt: str | None = Field(
        None, min_length=1, description="system turn sent with every benchmark question (any backend); null uses "
                                        "wafersage.harness.run.messages.SYSTEM_PROMPT. hf:PATH / vllm:PATH take it from "
                                        "PATH/wafersage_training.json when the model was trained by wafersage")

    @property
    def options(self) -> dict[str, Any]:
        """The backend's own options (everything but the common fields)."""
        return dict(self.model_extra or {})

    def public(self) -> dict[str, Any]:
        """The config without secrets (:func:`redact`), for run.json, manifests and reports."""
        return redact({k: v for k, v in self.model_dump().items() if k not in SECRET_KEYS})

    def parse_options(self, options_model: type[BaseModel]) -> BaseModel:
        try:
            return options_model.model_validate(self.options)
        except ValidationError as exc:
            where = self.source or self.name
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ModelConfigError(
                f"model {self.name!r} ({where}): invalid options for backend {self.backend!r}: {problems}"
            ) from None


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a field, header or query parameter called ``name`` holds a secret (see :data:`SECRET_WORDS`)."""
    words = [w.lower() for w in _WORDS.findall(name)]
    return bool(words) and words[-1] != "env" and not SECRET_WORDS.isdisjoint(words)


def redact(value: Any) -> Any:
    """A copy of a config value (mapping, list or text) with every secret replaced by ``***``: values of secret
    names at any depth (``extra_body: {headers: {Authorization: ...}}``), credentials and secret query parameters of
    URLs (``https://user:pass@host/v1?key=...``) and ``Bearer``/``Basic`` tokens in text. Idempotent, so a redacted
    config fingerprints like the config it came from."""
    if isinstance(value, dict):
        return {k: REDACTED if is_secret_name(str(k)) and value[k] not in (None, "") else redact(value[k])
                for k in value}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _redact_text(value)
    return value


@lru_cache(maxsize=4096)
def _redact_text(text: str) -> str:
    return _AUTH_HEADER.sub(rf"\1\2{REDACTED}", _URL.sub(lambda m: redact_url(m.group()), text))


def redact_url(url: str) -> str:
    """``url`` with its user:password and the values of secret query or fragment parameters replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    host = parts.netloc.rpartition("@")
    redacted = parts._replace(netloc=f"{REDACTED}@{host[2]}" if host[1] else parts.netloc,
                              query=_redact_params(parts.query), fragment=_redact_params(parts.fragment))
    return urlunsplit(redacted) if redacted != parts else url


def _redact_params(text: str) -> str:
    pairs = [pair.partition("=") for pair in text.split("&")] if text else []
    return "&".join(f"{name}={REDACTED}" if eq and is_secret_name(unquote(name)) else name + eq + val
                    for name, eq, val in pairs)


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
