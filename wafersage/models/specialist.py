"""The ``specialist`` baseline: a classical classifier that answers every question from what it sees on the map.

The non-LLM bar a VLM should beat. Per question it reads, from the benchmark folder in ``metadata['bench_dir']``,
the grid of ``metadata['wafer_id']`` — the map only: never the items' reference answers, the rubrics, the
descriptions, or the wafer's stored labels and generator truth. It predicts the defect types with
:class:`~wafersage.tasks.classify.classifier.DefectClassifier` (trained on the benchmark's train split only,
in this process), measures the geometry, and states the facts of that *prediction*: a rubric built from a
map whose labels are the predicted ones (:func:`~wafersage.tasks.synth.rubric.build_rubric`), phrased by
:mod:`wafersage.tasks.synth.phrasing`. So a wrong class gives wrong morphology and root cause, as it should.

Per category (``metadata['category']``): defect type -> the predicted types; spatial -> zones, distribution and
clock positions, led by the clock, quadrant or radial zone when the question asks for one; morphology -> the
predicted pattern's structure, density and texture; root cause -> the knowledge table's entry for the predicted
types; consistency -> the question's premise (failing share, share of isolated failing dies, number of groups, a
zone's failure rate against the wafer's, clock position, quadrant, all-around or one-sided, a zone or a type word)
checked against its own prediction and geometry, "No" when it cannot parse the premise.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from pydantic import Field

from ..tasks.bench.folder import Benchmark
from ..tasks.blindness.population import numeric_values
from ..tasks.geometry.measure import Geometry, measure
from ..tasks.synth.phrasing import morphology_sentence, root_cause_sentence, spatial_sentence, type_sentence
from ..tasks.synth.rubric import build_rubric
from ..tasks.bench.schema import Rubric
from ..tasks.classify.classifier import DefectClassifier, classifier_for_benchmark
from ..tasks.synth.vocab import CLOCK_TERM_RE, CLOCK_TERMS, NUMBER_WORDS, PATTERN_TERMS, QUADRANT_TERMS, ZONE_TERMS
from ..tasks.maps.wafer import PATTERNS, WaferMap
from .base import ModelRequest, ModelResponse
from .baselines import BaselineOptions, _Baseline, _metadata
from .config import ModelConfig


class SpecialistOptions(BaselineOptions):
    """How the specialist's classifier is trained (in each process, never loaded from disk)."""

    min_train: int = Field(
        0, ge=0, description="0 (the default): train on the benchmark's train split only. N > 0: top a smaller train "
                             "split up to N maps with freshly generated ones (never sharing a grid with the "
                             "benchmark); then the baseline is no longer trained on the benchmark alone")
    n_estimators: int = Field(200, ge=10, le=2000, description="trees in the random forest")
    seed: int = Field(0, description="seed of the forest")


@dataclass(frozen=True)
class Reading:
    """What the specialist concluded about one wafer."""

    types: list[str]
    geom: Geometry
    rubric: Rubric  # the facts of the predicted types on this map (not the benchmark's rubric)


_ALL_AROUND = re.compile(r"all around|rather than on one side|whole wafer|every direction", re.IGNORECASE)
_MORE_THAN = re.compile(r"(more|greater|higher) than (\d+(?:\.\d+)?)\s*%", re.IGNORECASE)
_LESS_THAN = re.compile(r"(less|fewer|lower) than (\d+(?:\.\d+)?)\s*%", re.IGNORECASE)
_QUADRANT = re.compile(r"\b(upper|lower|top|bottom)[\s-]+(left|right)\b", re.IGNORECASE)
_ISOLATED = re.compile(r"(more|fewer|less) than (\d+(?:\.\d+)?)\s*% of the failing dies (?:are )?isolated",
                       re.IGNORECASE)
_GROUPS = re.compile(r"(more|fewer|less) than (\d+) separate groups", re.IGNORECASE)
_ZONE_RATE = re.compile(r"failure rate in the (inner|middle|outer) radial zone (above|below) the wafer", re.IGNORECASE)
_ONE_SIDE = re.compile(r"confined to one side", re.IGNORECASE)
_RATE_ZONE = {"inner": "center", "middle": "middle", "outer": "edge"}
_ZONE_EXTRA_WORDS = {"center": ("inner",), "middle": (), "edge": ("outer", "rim")}


def _words_re(words) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


_ZONE_RE = {zone: _words_re([*ZONE_TERMS[zone].variants, *extra]) for zone, extra in _ZONE_EXTRA_WORDS.items()}
_TYPE_RE = {label: _words_re([label, PATTERN_TERMS[label].term, *PATTERN_TERMS[label].synonyms]) for label in PATTERNS}


def _clock_distance(a: int, b: int) -> int:
    return min((a - b) % 12, (b - a) % 12)


class SpecialistModel(_Baseline):
    """Classifier + geometry -> answers (see the module docstring). Options: :class:`SpecialistOptions`."""

    options_model = SpecialistOptions

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self._classifiers: dict[str, DefectClassifier] = {}
        self._grids: dict[str, dict[str, np.ndarray]] = {}
        self._readings: dict[tuple[str, str], Reading] = {}

    def _bench(self, bench_dir: str) -> str:
        folder = str(Path(bench_dir).resolve())
        if folder not in self._classifiers:
            opts = self.options
            self._classifiers[folder] = classifier_for_benchmark(
                folder, min_train=opts.min_train, seed=opts.seed, n_estimators=opts.n_estimators)
            # keep the grids only: the stored labels and generator truth stay unread
            self._grids[folder] = {w.id: w.grid for w in Benchmark.load(folder, verify=False).wafers()}
        return folder

    def read(self, bench_dir: str, wafer_ids: Sequence[str]) -> list[Reading]:
        """Predict and measure wafers of a benchmark (one classifier call for the new ones; memoised per wafer)."""
        folder = self._bench(bench_dir)
        grids = self._grids[folder]
        missing = sorted({w for w in wafer_ids if w not in grids})
        if missing:
            raise KeyError(f"wafers {missing[:5]} are not in the benchmark at {bench_dir}")
        new = sorted({w for w in wafer_ids if (folder, w) not in self._readings})
        geoms = [measure(grids[w]) for w in new]
        probabilities = self._classifiers[folder].probabilities([grids[w] for w in new], geoms)
        for wafer_id, geom, proba in zip(new, geoms, probabilities):
            types = DefectClassifier.decide(proba)
            predicted = WaferMap(grid=grids[wafer_id], id=wafer_id, labels=tuple(types))
            self._readings[(folder, wafer_id)] = Reading(types, geom, build_rubric(predicted, geom))
        return [self._readings[(folder, w)] for w in wafer_ids]

    async def generate(self, requests: Sequence[ModelRequest]) -> list[ModelResponse]:
        """Read the batch's wafers first, in one classifier call per benchmark; then answer each request."""
        by_bench: dict[str, set[str]] = {}
        for request in requests:
            if "bench_dir" in request.metadata and "wafer_id" in request.metadata:
                by_bench.setdefault(str(request.metadata["bench_dir"]), set()).add(str(request.metadata["wafer_id"]))
        for bench_dir, wafer_ids in by_bench.items():
            try:
                self.read(bench_dir, sorted(wafer_ids))
            except (KeyError, ValueError, OSError):
                pass  # each request then reports its own error
        return await super().generate(requests)

    def answer(self, request: ModelRequest) -> str:
        reading = self.read(_metadata(request, "bench_dir"), [_metadata(request, "wafer_id")])[0]
        question = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        category = str(request.metadata.get("category", ""))
        if category == "defect_type":
            return type_sentence(reading.types)
        if category == "spatial":
            return _spatial_answer(question, reading)
        if category == "morphology":
            return morphology_sentence(reading.rubric)
        if category == "root_cause":
            return root_cause_sentence(reading.rubric)
        if category == "consistency":
            return consistency_answer(question, reading)
        return " ".join([type_sentence(reading.types), spatial_sentence(reading.rubric),
                         morphology_sentence(reading.rubric), root_cause_sentence(reading.rubric)])


def _top_quadrant(geom: Geometry) -> str:
    return max(geom.quadrant_share, key=geom.quadrant_share.__getitem__)


def _spatial_answer(question: str, reading: Reading) -> str:
    """The location facts, led by the one fact the question asks for (clock, quadrant or radial zone)."""
    q, rubric, sentence = question.lower(), reading.rubric, spatial_sentence(reading.rubric)
    clocks = rubric.spatial.clock_positions
    if "clock" in q and clocks:
        return "Around " + " and ".join(CLOCK_TERMS[k].term for k in clocks) + ". " + sentence
    if ("quadrant" in q or "quarter" in q) and reading.geom.n_fail:
        return f"Mostly the {QUADRANT_TERMS[_top_quadrant(reading.geom)].term}. " + sentence
    if "zone" in q and rubric.spatial.zone in ("whole wafer", "none"):
        return "No single radial zone stands out. " + sentence
    return sentence


def _verdict(truth: bool, detail: str, facts: str) -> str:
    return ("Yes. " if truth else "No. ") + (detail + " " if detail else "") + facts


def consistency_answer(question: str, reading: Reading) -> str:
    """Check the question's premise against the specialist's own reading; "No" when it cannot parse it."""
    geom, rubric = reading.geom, reading.rubric
    spatial, morphology = spatial_sentence(rubric), morphology_sentence(rubric)
    share, isolated, groups = numeric_values(geom)
    detail = f"About {share:.0f}% of the dies fail."
    if m := _ISOLATED.search(question):
        more = m.group(1).lower() == "more"
        return _verdict(isolated > float(m.group(2)) if more else isolated < float(m.group(2)),
                        f"About {isolated:.0f}% of the failing dies are isolated.", morphology)
    if m := _GROUPS.search(question):
        more = m.group(1).lower() == "more"
        return _verdict(groups > int(m.group(2)) if more else groups < int(m.group(2)),
                        f"They form {groups:.0f} separate groups.", morphology)
    if m := _ZONE_RATE.search(question):
        rate = geom.zone_fail_ratio[_RATE_ZONE[m.group(1).lower()]]
        return _verdict(rate > geom.fail_ratio if m.group(2).lower() == "above" else rate < geom.fail_ratio, "",
                        spatial)
    if _ONE_SIDE.search(question):
        one_sided = set(rubric.spatial.distribution.split(", ")) <= {"localized", "linear"}
        return _verdict(one_sided and bool(rubric.spatial.clock_positions), "", spatial)
    if m := _MORE_THAN.search(question):
        return _verdict(share > float(m.group(2)), detail, morphology)
    if m := _LESS_THAN.search(question):
        return _verdict(share < float(m.group(2)), detail, morphology)
    if m := CLOCK_TERM_RE.search(question):
        word = m.group(1).lower()
        k = (NUMBER_WORDS.index(word) or 12) if word in NUMBER_WORDS else int(word)
        return _verdict(any(_clock_distance(k, c) <= 1 for c in rubric.spatial.clock_positions), "", spatial)
    if m := _QUADRANT.search(question):
        vertical = {"top": "upper", "bottom": "lower"}.get(m.group(1).lower(), m.group(1).lower())
        quadrant = f"{vertical}-{m.group(2).lower()}"
        return _verdict(geom.quadrant_share.get(quadrant, 0.0) >= 0.5, "", spatial)
    if _ALL_AROUND.search(question):
        around = set(rubric.spatial.distribution.split(", ")) <= {"radially symmetric", "wafer-wide"}
        return _verdict(around and geom.n_fail > 0, "", spatial)
    for label, pattern in _TYPE_RE.items():
        if pattern.search(question):
            return _verdict(label in reading.types, type_sentence(reading.types), morphology)
    zones = [z for z, pattern in _ZONE_RE.items() if pattern.search(question)]
    if zones:
        affected = rubric.spatial.zone.split(" and ")
        return _verdict(all(z in affected for z in zones), "", spatial)
    return _verdict(False, "", spatial)
