"""The LLM judge: any registered model grades answers against the reference and the rubric.

The prompt is the Jinja2 template ``judge.j2`` (plain text, so no HTML autoescaping; the candidate answer
is fenced and labelled as data). The judge replies JSON ``{score, spatial, morphology, root_cause, rationale}``
on a 0–10 scale; :func:`parse_reply` accepts fenced JSON, text around the object, Python-style single quotes and
numbers as strings; out-of-range numbers are clamped with a note (or rejected, ``clamp=False``). A reply that
cannot be parsed is re-asked ``parse_retries`` times — each time with the unreadable reply and a turn naming the
parse error and repeating the reply format, so the new request can succeed where the old one failed — and then
leaves the item ``unscored`` with the reason, never a low score. ``samples`` > 1 asks several times (seed + sample
index) at ``sample_temperature`` (above 0, so the samples can differ) and reports mean, spread and flip rate; an
endpoint whose config omits ``temperature`` (``omit_params``) repeats at its provider's default, which the
identity records (``temperature_sent``). Calls go through the runner's
:class:`~wafersage.harness.run.cache.ResponseCache`. Every score carries the judge identity (model config without
secrets, parameters, sha256 of the template). Several judges together: :mod:`.judges`.
"""
from __future__ import annotations

import ast
import asyncio
import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Sequence

import jinja2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ....models.base import ChatMessage, GenerationParams, Model, ModelRequest
from ....models.config import ModelConfig
from ....tasks.bench.schema import DIMENSIONS, Rubric, VQAItem
from ...run.cache import ResponseCache, cached_generate, output_config

TEMPLATE = Path(__file__).with_name("judge.j2")
FIELDS = ("score", *DIMENSIONS)
PASS_MARK = 5.0  # a flip is a sample on the other side of this mark than the majority
#: the turn that re-asks after an unreadable reply: the parse error, then the reply format again
FORMAT_REMINDER = ("Your reply could not be read: {error}. Reply again with ONLY one JSON object and no other text, "
                   'exactly in this form: {{"score": <0-10>, "spatial": <0-10>, "morphology": <0-10>, '
                   '"root_cause": <0-10>, "rationale": "<one or two sentences>"}}')
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)

JUDGE_SCHEMA: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "judgement", "strict": True,
        "schema": {
            "type": "object", "additionalProperties": False, "required": [*FIELDS, "rationale"],
            "properties": {**{f: {"type": "number"} for f in FIELDS}, "rationale": {"type": "string"}},
        },
    },
}


class JudgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    samples: int = Field(1, ge=1, le=20, description="judgements per item; >1 reports spread and flip rate")
    temperature: float = Field(0.0, ge=0, le=2, description="temperature of a single judgement (samples = 1)")
    sample_temperature: float = Field(
        0.7, gt=0, le=2, description="temperature of each judgement when samples > 1, so that the samples can differ "
                                     "and spread and flip rate measure the judge (an endpoint whose config omits "
                                     "temperature samples at its provider's default, and reports say so)")
    seed: int = Field(0, description="seed of the first sample; sample i uses seed + i")
    max_tokens: int = Field(400, ge=16, description="reply length cap")
    json_schema: bool = Field(False, description="send response_format json_schema (where the endpoint supports it)")
    parse_retries: int = Field(1, ge=0, le=5, description="re-asks after an unparseable reply before giving up")
    clamp: bool = Field(True, description="clamp out-of-range numbers to 0–10 with a note; False rejects the reply")
    concurrency: int = Field(8, ge=1, description="items judged at once")

    @property
    def effective_temperature(self) -> float:
        """The temperature each judgement asks for: ``temperature`` for one sample, else ``sample_temperature``."""
        return self.temperature if self.samples == 1 else self.sample_temperature


class Judgement(BaseModel):
    """One parsed reply."""

    score: float
    spatial: float | None = None
    morphology: float | None = None
    root_cause: float | None = None
    rationale: str = ""
    notes: list[str] = Field(default_factory=list)


class JudgeScore(BaseModel):
    """The judge's verdict on one answer; ``unscored`` (with ``reason``) when no sample could be parsed."""

    status: Literal["scored", "unscored"]
    score: float | None = None
    dimensions: dict[str, float] = Field(default_factory=dict)
    rationale: str | None = None
    reason: str | None = None
    samples: list[float] = Field(default_factory=list)
    spread: float | None = None  # standard deviation over samples
    flip_rate: float | None = None  # share of samples on the other side of PASS_MARK than the majority
    range: float | None = None  # several judges: max - min of their scores (see judges.py)
    n_unparsed: int = 0
    notes: list[str] = Field(default_factory=list)
    judge_id: str


class JudgeReplyError(ValueError):
    """A judge reply that is not a usable judgement; the message is the reason recorded."""


def _extract_object(text: str) -> str:
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start = body.find("{")
    if start < 0:
        raise JudgeReplyError("no JSON object in the reply")
    depth = 0
    for pos in range(start, len(body)):
        depth += {"{": 1, "}": -1}.get(body[pos], 0)
        if depth == 0:
            return body[start:pos + 1]
    raise JudgeReplyError("the JSON object in the reply is not closed")


def _number(name: str, value: Any, clamp: bool, notes: list[str]) -> float:
    try:
        number = float(str(value).split("/")[0]) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise JudgeReplyError(f"{name} is not a number: {value!r}") from None
    if not np.isfinite(number):
        raise JudgeReplyError(f"{name} is not finite: {value!r}")
    if 0.0 <= number <= 10.0:
        return number
    if not clamp:
        raise JudgeReplyError(f"{name} {number:g} is outside 0-10")
    clamped = min(10.0, max(0.0, number))
    notes.append(f"{name} {number:g} clamped to {clamped:g}")
    return clamped


def parse_reply(text: str, *, clamp: bool = True) -> Judgement:
    """Parse a judge reply; raises :class:`JudgeReplyError` with the reason when it is unusable."""
    raw = _extract_object(text or "")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        try:
            data = ast.literal_eval(raw)  # single quotes, Python literals; evaluates no code
        except (ValueError, SyntaxError):
            raise JudgeReplyError("the reply's object is neither JSON nor a literal dict") from None
    if not isinstance(data, dict):
        raise JudgeReplyError("the reply's JSON is not an object")
    if data.get("score") is None:
        raise JudgeReplyError("the reply has no 'score'")
    notes: list[str] = []
    values = {k: _number(k, data[k], clamp, notes) for k in FIELDS if data.get(k) is not None}
    return Judgement(**values, rationale=str(data.get("rationale", "")), notes=notes)


@lru_cache(maxsize=4)
def _template(path: str) -> tuple[jinja2.Template, str]:
    source = Path(path).read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(source), hashlib.sha256(source.encode()).hexdigest()


def render_prompt(item: VQAItem, rubric: Rubric, answer: str, template: Path = TEMPLATE) -> str:
    tmpl, _ = _template(str(template))
    dims = [{"name": d, "must_hit": [t.term for t in rubric.dimension(d).must_hit],
             "must_avoid": rubric.dimension(d).must_avoid} for d in DIMENSIONS]
    return tmpl.render(question=item.question, reference=item.answer, defect_types=rubric.defect_types or ["none"],
                       dimensions=dims, answer=answer)


def template_sha256(template: Path = TEMPLATE) -> str:
    return _template(str(template))[1]


def _combine(parsed: list[Judgement], unparsed: list[str], judge_id: str) -> JudgeScore:
    if not parsed:
        return JudgeScore(status="unscored", reason="; ".join(dict.fromkeys(unparsed)) or "no reply",
                          n_unparsed=len(unparsed), judge_id=judge_id)
    scores = np.array([p.score for p in parsed])
    passed = scores >= PASS_MARK
    majority = passed.sum() * 2 >= len(passed)
    dims = {}
    for d in DIMENSIONS:
        values = [getattr(p, d) for p in parsed if getattr(p, d) is not None]
        if values:
            dims[d] = float(np.mean(values))
    return JudgeScore(  # the spread of samples less the first: exactly 0 when the samples are equal
        status="scored", score=float(scores.mean()), dimensions=dims, rationale=parsed[0].rationale,
        samples=scores.tolist(), spread=float((scores - scores[0]).std()) if len(scores) > 1 else None,
        flip_rate=float((passed != majority).mean()) if len(scores) > 1 else None,
        n_unparsed=len(unparsed), notes=[n for p in parsed for n in p.notes], judge_id=judge_id,
    )


class LLMJudge:
    """Grades answers with ``model`` (built from ``config`` via the registry); ``cache`` is optional."""

    def __init__(self, model: Model, config: ModelConfig, settings: JudgeSettings | None = None,
                 cache: ResponseCache | None = None, template: Path = TEMPLATE):
        self.model, self.config, self.cache, self.template = model, config, cache, template
        self.settings = settings or JudgeSettings()
        #: False when the endpoint's config omits temperature (omit_params): samples repeat at the provider default
        self.temperature_sent = "temperature" not in (config.options.get("omit_params") or [])
        self.identity: dict[str, Any] = {
            "name": config.name, "model": output_config(config), "settings": self.settings.model_dump(),
            "temperature_sent": self.temperature_sent,
            "template": template.name, "template_sha256": template_sha256(template),
        }
        digest = hashlib.sha256(json.dumps(self.identity, sort_keys=True, default=str).encode())
        self.judge_id = digest.hexdigest()[:16]

    def _request(self, messages: list[ChatMessage], sample: int) -> ModelRequest:
        s = self.settings
        params = GenerationParams(max_tokens=s.max_tokens, temperature=s.effective_temperature, seed=s.seed + sample,
                                  response_format=JUDGE_SCHEMA if s.json_schema else None)
        return ModelRequest(messages=messages, params=params)

    async def judge_one(self, item: VQAItem, rubric: Rubric, answer: str, *, fresh: bool = False) -> JudgeScore:
        """One answer's verdict; ``fresh`` asks the endpoint again instead of reading cached replies (the new
        replies are cached)."""
        prompt = [ChatMessage(role="user", content=render_prompt(item, rubric, answer, self.template))]
        parsed, unparsed = [], []
        for sample in range(self.settings.samples):
            messages = prompt
            for attempt in range(self.settings.parse_retries + 1):
                response, _ = await cached_generate(self.cache, self.model, self.config,
                                                    self._request(messages, sample), refresh=fresh)
                if response.error is not None:
                    unparsed.append(f"judge call failed: {response.error}")
                    break
                try:
                    parsed.append(parse_reply(response.text, clamp=self.settings.clamp))
                    break
                except JudgeReplyError as exc:
                    if attempt == self.settings.parse_retries:
                        unparsed.append(f"unparseable reply: {exc}")
                    messages = [*prompt, ChatMessage(role="assistant", content=response.text),
                                ChatMessage(role="user", content=FORMAT_REMINDER.format(error=exc))]
        return _combine(parsed, unparsed, self.judge_id)

    async def judge_many(self, triples: Sequence[tuple[VQAItem, Rubric, str]], progress=None, *,
                         fresh: bool = False) -> list[JudgeScore]:
        """Judge (item, rubric, answer) triples with a fixed pool of workers; results in input order (``fresh``:
        see :meth:`judge_one`)."""
        results: list[JudgeScore | None] = [None] * len(triples)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(triples)):
            queue.put_nowait(index)

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                results[index] = await self.judge_one(*triples[index], fresh=fresh)
                if progress is not None:
                    progress(1)

        await asyncio.gather(*(worker() for _ in range(min(self.settings.concurrency, len(triples)) or 1)))
        return [r for r in results if r is not None]
