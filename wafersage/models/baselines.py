"""Built-in reference models that need no network and no weights: ``oracle``, ``constant`` and ``random``.

They bound a leaderboard: the oracle returns each item's reference answer (the ceiling a scorer should give full
marks), the constant model always says one plausible sentence and the random model says plausible but random
things (floors that a sound scorer must rank low). They read the benchmark context from
``request.metadata`` (``item_id``, ``category``, ``bench_dir``), which :mod:`wafersage.harness.run.messages` sets.
Tokens are counted roughly as words; cost is 0.
"""
from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path
from typing import Callable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from ..tasks.bench.folder import Benchmark
from ..tasks.maps.wafer import PATTERNS
from .base import ModelRequest, ModelResponse, SentImage
from .config import ModelConfig

#: backend names of the built-in baselines (deployment "baseline", no cost, no image read)
BASELINE_BACKENDS = ("oracle", "constant", "random", "specialist", "blind-prior", "blind-question")
#: baselines that answer from the map or the reference itself: a run without the image means nothing for them
READS_THE_MAP = frozenset({"oracle", "specialist"})

DEFAULT_CONSTANT_TEXT = (
    "The failing dies form a cluster near the center of the wafer, "
    "most likely caused by a deposition non-uniformity."
)

ZONES = ("center", "middle ring", "edge")
SHAPES = ("compact cluster", "ring", "thin line", "arc along the edge", "scattered spots", "solid blanket")
DENSITIES = ("sparse", "moderate", "dense")
CAUSES = (
    ("Deposition", "a CVD showerhead non-uniformity"), ("Etching", "a plasma etch edge non-uniformity"),
    ("CMP", "uneven polishing pressure"), ("Lithography", "an edge-bead removal problem"),
    ("Wet Processing", "particle contamination in a wet bench"), ("Handling", "a scratch from a transfer robot"),
)


class BaselineOptions(BaseModel):
    """Options every baseline accepts. The image settings are accepted so any run command works, but unused."""

    model_config = ConfigDict(extra="forbid")
    image_max_side: int | None = Field(None, description="accepted for uniform commands; baselines read no image")
    image_format: Literal["png", "jpeg"] | None = Field(None, description="accepted; baselines read no image")

    def sent_image(self, path: str) -> SentImage:
        return None, None  # baselines answer from the request's metadata and send no image anywhere


class ConstantOptions(BaselineOptions):
    text: str = Field(DEFAULT_CONSTANT_TEXT, min_length=1, description="the answer given to every question")


def _word_count(text: str) -> int:
    return len(text.split())


class _Baseline:
    """Shared plumbing: per-request timing, rough token counts, errors as responses."""

    deployment = "baseline"
    batch_size = 1
    options_model: type[BaselineOptions] = BaselineOptions

    def __init__(self, config: ModelConfig):
        self.config = config
        self.name = config.name
        self.options = config.parse_options(self.options_model)

    def sent_image(self, path: str) -> SentImage:
        return self.options.sent_image(path)

    def answer(self, request: ModelRequest) -> str:
        raise NotImplementedError

    async def generate(self, requests: Sequence[ModelRequest]) -> list[ModelResponse]:
        return [self._respond(request) for request in requests]

    def _respond(self, request: ModelRequest) -> ModelResponse:
        start = time.perf_counter()
        try:
            text = self.answer(request)
        except (KeyError, ValueError, OSError) as exc:
            return ModelResponse(error=f"{self.name}: {exc}", latency_s=time.perf_counter() - start)
        return ModelResponse(
            text=text,
            input_tokens=sum(_word_count(m.content) for m in request.messages),
            output_tokens=_word_count(text),
            latency_s=time.perf_counter() - start,
        )

    async def aclose(self) -> None:
        return None


def _metadata(request: ModelRequest, key: str) -> str:
    try:
        return str(request.metadata[key])
    except KeyError:
        raise KeyError(
            f"request has no metadata {key!r}; build requests with wafersage.harness.run.messages.build_request"
        ) from None


class OracleModel(_Baseline):
    """Returns the item's reference answer, read from the benchmark folder in ``metadata['bench_dir']``."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self._answers: dict[str, dict[str, str]] = {}

    def _answers_of(self, bench_dir: str) -> dict[str, str]:
        folder = str(Path(bench_dir).resolve())
        if folder not in self._answers:
            # the runner verified the folder's hashes already; loading again only reads items.jsonl
            bench = Benchmark.load(folder, verify=False)
            self._answers[folder] = {item.id: item.answer for item in bench.all_items}
        return self._answers[folder]

    def answer(self, request: ModelRequest) -> str:
        item_id = _metadata(request, "item_id")
        answers = self._answers_of(_metadata(request, "bench_dir"))
        if item_id not in answers:
            raise KeyError(f"item {item_id!r} is not in the benchmark at {request.metadata['bench_dir']}")
        return answers[item_id]


class ConstantModel(_Baseline):
    """Gives the same sentence (option ``text``) to every question."""

    options_model = ConstantOptions

    def answer(self, request: ModelRequest) -> str:
        return self.options.text


def _rng_for(request: ModelRequest) -> random.Random:
    """A generator seeded by the item id and the request's seed, so a rerun gives the same answers."""
    seed_text = f"{_metadata(request, 'item_id')}|{request.params.seed}"
    return random.Random(int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "big"))


def _random_defect(rng: random.Random) -> str:
    return f"The wafer shows a {rng.choice(PATTERNS)} defect pattern."


def _random_spatial(rng: random.Random) -> str:
    return f"The failing dies sit in the {rng.choice(ZONES)} zone, around {rng.randint(1, 12)} o'clock."


def _random_morphology(rng: random.Random) -> str:
    return f"The failures form a {rng.choice(DENSITIES)} {rng.choice(SHAPES)}."


def _random_cause(rng: random.Random) -> str:
    equipment, cause = rng.choice(CAUSES)
    return f"This most likely comes from {equipment}: {cause}."


def _random_yes_no(rng: random.Random) -> str:
    verdict, reason = rng.choice(("Yes", "No")), _random_spatial(rng)
    return f"{verdict}, {reason[0].lower()}{reason[1:]}"


_RANDOM_BY_CATEGORY: dict[str, Callable[[random.Random], str]] = {
    "defect_type": _random_defect, "spatial": _random_spatial, "morphology": _random_morphology,
    "root_cause": _random_cause, "consistency": _random_yes_no,
}


class RandomModel(_Baseline):
    """Plausible but random answers: a random defect type, zone, clock position, shape or cause, per category."""

    def answer(self, request: ModelRequest) -> str:
        rng = _rng_for(request)
        category = str(request.metadata.get("category", ""))
        phrase = _RANDOM_BY_CATEGORY.get(category)
        if phrase is None:  # unknown category: a full random description
            return " ".join(f(rng) for f in (_random_defect, _random_spatial, _random_cause))
        return phrase(rng)
