"""Reading YAML config files and describing validation errors, the same way for every kind of config."""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_yaml_mapping(path: str | Path, error: type[Exception], what: str, expected: str) -> dict[str, Any]:
    """The mapping in a YAML file; ``error`` (naming the file and the fix) when it is unreadable or not a mapping.

    ``what`` names the file's role ("synthesis config"), ``expected`` its top-level fields ("name, seed, source").
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc}); pass an existing YAML file") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc}); fix the syntax") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of fields ({expected}) in the {what}")
    return data


def validation_problems(exc: ValidationError) -> str:
    """One line listing every field a pydantic validation rejected, e.g. ``source.n: Input should be > 0``."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors())


def load_validated_yaml(cls: type[M], path: str | Path | None, error: type[Exception], what: str, expected: str,
                        **overrides: Any) -> M:
    """Validate ``cls`` from a YAML file (or from its defaults when ``path`` is None) plus the non-None
    ``overrides``; ``error`` names the file and every rejected field."""
    data = read_yaml_mapping(path, error, what, expected) if path is not None else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise error(f"{path if path is not None else 'defaults'}: invalid {what}: {validation_problems(exc)}") from None
