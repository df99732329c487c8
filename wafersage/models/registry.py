"""Name -> model. Lazy ``module:attr`` entries, so the core never imports torch or vLLM until asked.

``resolve(spec)`` accepts a registered name (a built-in baseline or a YAML file in the models directory), the path
of a YAML file, or a shorthand ``hf:PATH`` / ``vllm:PATH``. Unknown names answer with the closest known ones. A
shorthand folder exported by ``wafersage train`` (it holds ``wafersage_training.json``) gets the system prompt it
was trained with, so it is evaluated in its own answer format.
"""
from __future__ import annotations

import difflib
import importlib
import os
from pathlib import Path
from typing import Any

from .base import Model
from .config import ModelConfig, ModelConfigError, load_config_file, training_system_prompt

#: backend name -> "module:Class"; the class is built as ``Class(config)``
BACKENDS: dict[str, str] = {
    "openai": "wafersage.models.openai_backend:OpenAIModel",
    "hf": "wafersage.models.hf_backend:HFModel",
    "vllm": "wafersage.models.vllm_backend:VLLMModel",
    "oracle": "wafersage.models.baselines:OracleModel",
    "constant": "wafersage.models.baselines:ConstantModel",
    "random": "wafersage.models.baselines:RandomModel",
    "specialist": "wafersage.models.specialist:SpecialistModel",
    "blind-prior": "wafersage.models.blind:BlindPriorModel",
    "blind-question": "wafersage.models.blind:BlindQuestionModel",
}

#: backend name -> "module:Class" of its pydantic options, so a dry run reads a backend's defaults without building it
OPTIONS: dict[str, str] = {
    "openai": "wafersage.models.openai_backend:OpenAIOptions",
    "hf": "wafersage.models.hf_backend:HFOptions",
    "vllm": "wafersage.models.vllm_backend:VLLMOptions",
    "oracle": "wafersage.models.baselines:BaselineOptions",
    "constant": "wafersage.models.baselines:ConstantOptions",
    "random": "wafersage.models.baselines:BaselineOptions",
    "specialist": "wafersage.models.specialist:SpecialistOptions",
    "blind-prior": "wafersage.models.baselines:BaselineOptions",
    "blind-question": "wafersage.models.baselines:BaselineOptions",
}

#: models that need no config file
BUILTIN: dict[str, dict[str, Any]] = {
    "oracle": {"backend": "oracle"},
    "constant": {"backend": "constant"},
    "random": {"backend": "random"},
    "specialist": {"backend": "specialist"},
    "blind-prior": {"backend": "blind-prior"},
    "blind-question": {"backend": "blind-question"},
}

SHORTHANDS = ("hf", "vllm")


def models_dir() -> Path:
    """Where named YAML configs live: ``$WAFERSAGE_MODELS_DIR`` or ``./configs/models``."""
    return Path(os.environ.get("WAFERSAGE_MODELS_DIR", "configs/models"))


def _named_configs() -> dict[str, Path]:
    folder = models_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.y*ml"))}


def known_names() -> list[str]:
    return sorted(set(BUILTIN) | set(_named_configs()))


def resolve(spec: str, **overrides: Any) -> ModelConfig:
    """Turn a name, a YAML path or a shorthand into a :class:`ModelConfig`."""
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in SHORTHANDS:
        config = ModelConfig(name=Path(rest).name or rest, backend=prefix, path=rest, source=spec,
                             system_prompt=training_system_prompt(rest))  # answer in the format it was trained on
    elif spec.endswith((".yaml", ".yml")) or os.sep in spec:
        if not Path(spec).exists():
            raise ModelConfigError(f"model config {spec} does not exist")
        config = load_config_file(spec)
    elif spec in BUILTIN:
        config = ModelConfig(name=spec, **BUILTIN[spec], source="builtin")
    elif spec in (named := _named_configs()):
        config = load_config_file(named[spec])
    else:
        close = difflib.get_close_matches(spec, known_names(), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ModelConfigError(
            f"unknown model {spec!r}.{hint} Use a registered name ({', '.join(known_names())}), "
            f"a YAML file, or hf:PATH / vllm:PATH."
        )
    if overrides:
        config = config.model_copy(update=overrides)
    return config


def _import(table: dict[str, str], backend: str) -> Any:
    """The object a lazy ``module:attr`` entry of ``table`` names; an unknown backend or a missing extra is a
    :class:`ModelConfigError` naming the fix."""
    target = table.get(backend)
    if target is None:
        close = difflib.get_close_matches(backend, table, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ModelConfigError(f"unknown backend {backend!r}.{hint} Known: {', '.join(table)}")
    module, attr = target.split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        extra = {"hf": "local", "vllm": "vllm"}.get(backend, "")
        fix = f"; install it with pip install 'wafersage[{extra}]' -c constraints.txt" if extra else ""
        raise ModelConfigError(f"backend {backend!r} cannot be imported ({exc}){fix}") from exc
    return getattr(mod, attr)


def backend_class(backend: str) -> type:
    return _import(BACKENDS, backend)


def backend_options(config: ModelConfig) -> Any:
    """The config's options parsed by its backend's options model (its defaults filled in), without building the
    model: nothing heavy is imported, no key is read, no endpoint is touched."""
    return config.parse_options(_import(OPTIONS, config.backend))


def load_model(spec: str | ModelConfig, **overrides: Any) -> Model:
    """Build a ready model from a spec (see :func:`resolve`) or a config."""
    config = spec if isinstance(spec, ModelConfig) else resolve(spec, **overrides)
    return backend_class(config.backend)(config)
