"""Model-backed synthesis helpers: the prompt templates, JSON extraction and the validate-and-retry loop.

Templates live in ``wafersage/tasks/synth/prompts/*.j2`` (the paper's Stage 0–2 prompts). A model's reply that fails
validation is sent back with the validation error appended, up to ``max_retries`` more times; what still fails is
returned with its reason (:class:`Attempted`), never dropped.

A model callable signals a failed call with :class:`ModelCallFailed` (that wafer is recorded as failed, the build
goes on) and a model that can answer nothing with :class:`ModelUnavailable` (the build stops); any other exception
is a bug and stops the build too.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Generic, TypeVar

import jinja2

PROMPTS_DIR = Path(__file__).with_name("prompts")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
T = TypeVar("T")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    # Plain-text prompts: autoescape only where a template is HTML/XML, never inside prompt text.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(PROMPTS_DIR), autoescape=jinja2.select_autoescape(["html", "xml"]),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True,
    )


def render_prompt(name: str, **context: object) -> str:
    """Render ``prompts/<name>.j2`` with ``context``; a missing variable is an error, not an empty string."""
    return _environment().get_template(f"{name}.j2").render(**context).strip()


def extract_json(text: str) -> object:
    """The JSON value in a model reply: the whole reply, a fenced block, or the outermost braces/brackets."""
    text = text.strip()
    candidates = [text, *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for open_, close in (("{", "}"), ("[", "]")):
        start, end = text.find(open_), text.rfind(close)
        if 0 <= start < end:
            candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise ValueError(f"no JSON object found in the reply (starts {text[:80]!r})")


class ModelCallFailed(RuntimeError):
    """One model call failed after the model's own retries (a timeout, an HTTP 5xx, a malformed answer): the wafer
    it was for is recorded in ``failures.jsonl`` and the build goes on."""


class ModelUnavailable(RuntimeError):
    """The model can answer no request (credentials refused, endpoint unreachable, unknown model): the build stops
    at once instead of recording every wafer as failed."""


@dataclass(frozen=True)
class Attempted(Generic[T]):
    """Outcome of :func:`generate_validated`."""

    value: T | None
    reason: str | None
    attempts: int
    raw: str  # the last reply, kept for the record


def generate_validated(ask: Callable[[str], str], prompt: str, parse: Callable[[object], T],
                       max_retries: int) -> Attempted[T]:
    """Ask, parse the reply's JSON with ``parse`` (raising ValueError on invalid output), retry with the error.

    A :class:`ModelCallFailed` raised by ``ask`` ends the loop as a failure with its message; any other exception
    (a systemic error, a bug) propagates.
    """
    current, raw, reason = prompt, "", None
    for attempt in range(1, max_retries + 2):
        try:
            raw = ask(current)
        except ModelCallFailed as exc:
            return Attempted(None, f"model call failed: {exc}", attempt, raw)
        try:
            return Attempted(parse(extract_json(raw)), None, attempt, raw)
        except ValueError as exc:
            reason = str(exc)
            current = render_prompt("retry", prompt=prompt, reply=raw, error=reason)
    return Attempted(None, f"invalid after {max_retries + 1} attempts: {reason}", max_retries + 1, raw)
