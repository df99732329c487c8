"""What an exported lm-eval task folder runs: docs, images, prompts and rule scores, the harness's way.

The folder's ``utils.py`` binds lm-eval's hooks to :func:`runtime_for` (its own folder), which reads
``wafersage_task.json`` (:class:`TaskFolderConfig`), loads the benchmark folder recorded there (hashes verified,
and the benchmark hash must still be the exported one) and the calibration copied next to it.

* ``load_docs`` (``custom_dataset``): the split's items as dicts (:meth:`VQAItem.model_dump` plus
  ``system_prompt``), all of them or one question category (the task's ``metadata.category``).
* ``doc_to_image``: the wafer image, opened as the ``hf`` backend opens it.
* ``doc_to_text``: ``<image>`` followed by :func:`~wafersage.harness.run.messages.user_text`; the task's
  ``description`` is the ``system_prompt`` field, which lm-eval sends as the system message under
  ``--apply_chat_template``: the folder's recorded prompt, :data:`~wafersage.harness.run.messages.SYSTEM_PROMPT` by
  default or the one a trained checkpoint was trained with (``export lm-eval --trained-model DIR``), as
  ``wafersage eval`` prompts each model.
* ``process_results``: the answer goes through :func:`~wafersage.harness.scoring.score_run.score_samples` with the scorer
  ``wafersage score`` builds (every rubric of the benchmark, calibrated constants when exported with a
  calibration), so the same answer gets the same score on both paths.

Metrics (:func:`metric_names`): ``rule_score`` for every item (0-10, the harness's item ``rule_score``);
``rule_<category>`` only for items of that category, so its mean runs over those items alone (an item is never
counted as 0 for a category or dimension it does not have; for the rubric categories this is the harness's
``per_dimension``); ``type_accuracy`` / ``consistency_accuracy`` only for defect-type / consistency items (the
harness's accuracies); ``rule_score_default`` (default constants) when a calibration is active. An answer
that is not text (a failed API call) scores 0, as a failed sample does in ``wafersage score``.
"""
from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ....models.base import ModelResponse
from ....tasks.bench.folder import Benchmark, BenchmarkError
from ....tasks.bench.schema import CATEGORIES, VQAItem
from ...scoring import SCORER_VERSION
from ...scoring.calibrate import CalibrationError, load_calibration
from ...run.messages import SYSTEM_PROMPT, user_text
from ...run.records import Sample, SentRequest
from ...scoring.rules import RuleConstants, RuleScorer
from ...scoring.score_run import ItemScore, score_samples

CONFIG_FILE = "wafersage_task.json"
CALIBRATION_FILE = "calibration.json"
#: lm-eval's image placeholder (``lm_eval.models.hf_vlms.DEFAULT_IMAGE_PLACEHOLDER``)
IMAGE_PLACEHOLDER = "<image>"
FORMAT_VERSION = 1
ALL = "all"
ACCURACY_METRIC = {"defect_type": "type_accuracy", "consistency": "consistency_accuracy"}


class TaskFolderError(ValueError):
    """An exported task folder cannot be used as it is; the message names the file and the fix."""


class TaskFolderConfig(BaseModel):
    """``wafersage_task.json``: what a task folder was exported from and how it prompts."""

    model_config = ConfigDict(extra="forbid")
    format_version: int = Field(FORMAT_VERSION, description="layout version of the task folder")
    name: str = Field(description="group name; the tasks are <name>_all and <name>_<category>")
    bench_dir: str = Field(description="absolute path of the benchmark folder")
    bench_name: str
    bench_version: str
    bench_hash: str = Field(description="Benchmark.hash at export; a changed benchmark needs a new export")
    split: str = Field(description="train, val, test or all")
    calibration_id: str | None = Field(None, description=f"id of the calibration copied to {CALIBRATION_FILE}")
    image_placeholder: bool = Field(True, description=f"doc_to_text starts with {IMAGE_PLACEHOLDER} (hf-multimodal)")
    max_gen_toks: int = Field(ge=1, description="generation cap written to the task YAMLs")
    system_prompt: str = Field(SYSTEM_PROMPT, min_length=1,
                               description="system message of every doc (the harness default unless exported for a "
                                           "trained checkpoint or with --system-prompt)")
    tasks: dict[str, int] = Field(description="task name -> number of docs")
    files: list[str] = Field(default_factory=list, description="files the export wrote (replaced on re-export)")
    wafersage_version: str = ""
    scorer_version: str = Field("1", description="the rule scorer the folder was exported for")


def metric_names(category: str, calibrated: bool) -> list[str]:
    """The metrics ``process_results`` returns for a task over ``category`` (a question category or ``all``)."""
    categories = CATEGORIES if category == ALL else (category,)
    names = ["rule_score", *(["rule_score_default"] if calibrated else [])]
    names += [f"rule_{c}" for c in categories]
    names += [ACCURACY_METRIC[c] for c in categories if c in ACCURACY_METRIC]
    return names


def read_config(folder: Path) -> TaskFolderConfig:
    path = folder / CONFIG_FILE
    fix = "export the task folder again with 'wafersage export lm-eval --bench BENCH --out DIR'"
    if not path.is_file():
        raise TaskFolderError(f"{path}: missing; {fix}")
    try:
        config = TaskFolderConfig.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TaskFolderError(f"{path}: invalid at {'.'.join(map(str, first['loc']))} ({first['msg']}); {fix}") from None
    if config.format_version != FORMAT_VERSION:
        raise TaskFolderError(f"{path}: format version {config.format_version}, this wafersage reads "
                              f"{FORMAT_VERSION}; {fix}")
    if config.scorer_version != SCORER_VERSION:
        raise TaskFolderError(f"{path}: exported for rule scorer version {config.scorer_version}, the installed "
                              f"scorer is {SCORER_VERSION} (scores would not match 'wafersage score'); {fix}")
    return config


def item_doc(item: VQAItem, system_prompt: str = SYSTEM_PROMPT) -> dict[str, Any]:
    """One lm-eval doc: the item's fields and the system prompt (the task's ``description`` field)."""
    return {**item.model_dump(mode="json"), "system_prompt": system_prompt}


class TaskRuntime:
    """The hooks of one task folder; the benchmark and scorer load on first use."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).resolve()
        self.config = read_config(self.folder)

    def _fix(self) -> str:
        return (f"export again with 'wafersage export lm-eval --bench BENCH --out {self.folder}' "
                f"(recorded in {self.folder / CONFIG_FILE})")

    @cached_property
    def bench(self) -> Benchmark:
        try:
            bench = Benchmark.load(self.config.bench_dir)
        except BenchmarkError as exc:
            raise TaskFolderError(f"{exc}; this lm-eval task folder reads it; {self._fix()}") from exc
        if bench.hash != self.config.bench_hash:
            raise TaskFolderError(f"{bench.root}: benchmark hash {bench.hash[:12]} differs from the exported "
                                  f"{self.config.bench_hash[:12]}; {self._fix()}")
        return bench

    @cached_property
    def items(self) -> dict[str, VQAItem]:
        return {item.id: item for item in self.bench.all_items}

    @cached_property
    def scorers(self) -> tuple[RuleScorer, RuleScorer | None]:
        """(active scorer, default-constant scorer when calibrated): built as ``wafersage score`` builds them."""
        if self.config.calibration_id is None:
            return RuleScorer.for_benchmark(self.bench, RuleConstants()), None
        try:
            calibration = load_calibration(self.folder / CALIBRATION_FILE)
        except CalibrationError as exc:
            raise TaskFolderError(f"{exc}; {self._fix()}") from exc
        if calibration.id != self.config.calibration_id:
            raise TaskFolderError(f"{self.folder / CALIBRATION_FILE}: calibration {calibration.id} is not the "
                                  f"exported {self.config.calibration_id}; {self._fix()}")
        scorer = RuleScorer.for_benchmark(self.bench, calibration.constants)
        return scorer, scorer.with_constants(RuleConstants())

    def item(self, doc: dict[str, Any]) -> VQAItem:
        item = self.items.get(doc.get("id"))
        if item is None:
            raise TaskFolderError(f"doc {doc.get('id')!r} is not an item of {self.bench.root}; {self._fix()}")
        return item

    # -- lm-eval hooks ---------------------------------------------------------------------------------
    def load_docs(self, category: str = ALL, **_metadata: Any):
        """``custom_dataset``: a DatasetDict with the split's items (of ``category``) as ``test``."""
        import datasets

        if category != ALL and category not in CATEGORIES:
            raise TaskFolderError(f"task metadata category {category!r} is unknown; use one of {ALL}, "
                                  f"{', '.join(CATEGORIES)}")
        items = [it for it in self.bench.items(self.config.split) if category in (ALL, it.category)]
        return datasets.DatasetDict({"test": datasets.Dataset.from_list([item_doc(it, self.config.system_prompt) for it in items])})

    def doc_to_image(self, doc: dict[str, Any]) -> list:
        from ....models.hf_backend import load_image

        return [load_image(str(self.bench.image_path(self.item(doc))), None)]

    def doc_to_text(self, doc: dict[str, Any]) -> str:
        text = user_text(self.item(doc))
        return IMAGE_PLACEHOLDER + text if self.config.image_placeholder else text

    def doc_to_target(self, doc: dict[str, Any]) -> str:
        return self.item(doc).answer

    def score(self, doc: dict[str, Any], answer: Any) -> ItemScore:
        """The harness's :class:`ItemScore` of ``answer`` (not text: a failed sample)."""
        item = self.item(doc)
        failed = not isinstance(answer, str)
        response = ModelResponse(error=f"lm-eval gave no text ({type(answer).__name__})") if failed \
            else ModelResponse(text=answer)
        sample = Sample(item_id=item.id, wafer_id=item.wafer_id, request=SentRequest(messages=[]), response=response)
        scorer, default_scorer = self.scorers
        return score_samples([sample], self.items, scorer, default_scorer)[0]

    def process_results(self, doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
        item = self.item(doc)
        scored = self.score(doc, results[0] if results else None)
        metrics = {"rule_score": scored.rule_score, f"rule_{item.category}": scored.rule_score}
        if self.config.calibration_id is not None:
            metrics["rule_score_default"] = scored.rule_score_default if scored.status == "scored" else 0.0
        if item.category in ACCURACY_METRIC:
            metrics[ACCURACY_METRIC[item.category]] = float(bool(scored.rule and scored.rule.correct))
        return metrics


@lru_cache(maxsize=None)
def _runtime(folder: Path, config_bytes: bytes) -> TaskRuntime:
    return TaskRuntime(folder)


def runtime_for(folder: str | Path) -> TaskRuntime:
    """The shared runtime of a task folder: lm-eval imports ``utils.py`` once per YAML, the benchmark loads once
    (per content of ``wafersage_task.json``, so a re-export in the same process is picked up)."""
    folder = Path(folder).resolve()
    config = folder / CONFIG_FILE
    return _runtime(folder, config.read_bytes() if config.is_file() else b"")
