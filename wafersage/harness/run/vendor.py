"""Questions for a vendor, answers back: a benchmark split answered by a model the harness cannot call.

:func:`export_questions` writes what a vendor needs to answer a split, and nothing of what scores it (no reference
answers, rubrics, facts, labels or descriptions)::

    questions.jsonl      {"item_id", "image", "question"} per item, in the split's order
    images/<nnnnn>.png   the benchmark's PNGs, renamed by order (a wafer id never reaches the vendor's model)
    system_prompt.txt    the system turn 'wafersage eval' sends with every question
    export.json          bench_hash, benchmark name and version, split, item count, the answers file's format
    README.md            what to send back

:func:`import_answers` reads the vendor's answers file: a first line ``{"bench_hash": "<export.json's>"}``, then
one line per item ``{"item_id", "answer"}`` with optional ``"usage": {"input_tokens", "output_tokens"}`` and
``"latency_s"``. A different benchmark hash, a line that is not such an object, an id that is not a question of the
split and a second answer to one item are refused, each naming its line; items without an answer are listed and
recorded as missing (``wafersage score`` counts them as failed). The result is an ordinary run folder (its
``run.json`` has ``imported`` set and deployment ``imported``) that score, report and compare treat like any other.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...models.base import ModelResponse
from ...tasks.bench.folder import Benchmark, sha256_file
from ...tasks.bench.schema import SPLITS, VQAItem
from .folder import SAMPLES, folder_lock, rewrite_samples, write_run_info
from .messages import SYSTEM_PROMPT, user_text
from .provenance import git_commit, package_versions
from .records import ImportInfo, RunInfo, Sample, SentRequest

QUESTIONS, EXPORT_INFO = "questions.jsonl", "export.json"
ANSWER_FORMAT = ('first line {"bench_hash": "<bench_hash>"}, then one JSON object per line: {"item_id": "...", '
                 '"answer": "..."} with optional "usage": {"input_tokens": N, "output_tokens": N} and "latency_s": '
                 'seconds')
MAX_ERRORS = 10


class VendorError(ValueError):
    """An export or an answers file that cannot be used; the message names the file, the line and the fix."""


class Usage(BaseModel):
    """Tokens an answer took, as the vendor counted them."""

    model_config = ConfigDict(extra="forbid")
    input_tokens: int = Field(0, ge=0, description="tokens of the question, image and system prompt")
    output_tokens: int = Field(0, ge=0, description="tokens of the answer")


class AnswerLine(BaseModel):
    """One answer of an answers file."""

    model_config = ConfigDict(extra="forbid")
    item_id: str = Field(description="the item_id of questions.jsonl")
    answer: str = Field(description="the model's answer, as it would have come back from 'wafersage eval'")
    usage: Usage | None = Field(None, description="tokens the answer took")
    latency_s: float | None = Field(None, ge=0, description="seconds from sending the question to the answer")


class HashLine(BaseModel):
    """The answers file's first line."""

    model_config = ConfigDict(extra="forbid")
    bench_hash: str = Field(description="export.json's bench_hash: the benchmark the questions came from")


def _selection(bench: Benchmark, split: str) -> list[VQAItem]:
    if split not in (*SPLITS, "all"):
        raise VendorError(f"unknown split {split!r}; use one of {', '.join(SPLITS)} or all")
    items = bench.items(split)
    if not items:
        raise VendorError(f"{bench.root}: split {split!r} has no items; pick another with --split")
    return items


def _vendor_readme(bench: Benchmark, split: str, n_items: int, first: str) -> str:
    example = json.dumps({"item_id": first, "answer": "...", "usage": {"input_tokens": 812, "output_tokens": 41},
                          "latency_s": 1.9})
    return f"""# Questions of {bench.name} v{bench.version} ({split} split, {n_items} items)

Answer every line of `{QUESTIONS}` with your model: send `system_prompt.txt` as the system turn and the item's
`question` with its `image` as the user turn, one conversation per item, and keep the answer as the model gave it.

Send back one JSONL file whose first line names this export's benchmark hash and whose other lines hold one answer
per item (`usage` and `latency_s` are optional):

```
{json.dumps({"bench_hash": bench.hash})}
{example}
```

Each item_id once, only ids of `{QUESTIONS}`; an item left out counts as unanswered.
"""


def export_questions(bench_dir: str | Path, out_dir: str | Path, split: str = "test") -> int:
    """Write the vendor's folder for ``split`` of the benchmark (hashes verified); returns the number of items."""
    bench = Benchmark.load(bench_dir)
    items = _selection(bench, split)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise VendorError(f"{out}: folder exists and is not empty; pass another --out")
    (out / "images").mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    with open(out / QUESTIONS, "w", encoding="utf-8") as fh:
        for item in items:
            if item.image not in names:
                names[item.image] = f"images/{len(names) + 1:05d}.png"
                (out / names[item.image]).write_bytes(bench.image_path(item).read_bytes())
            fh.write(json.dumps({"item_id": item.id, "image": names[item.image], "question": user_text(item)}) + "\n")
    (out / "system_prompt.txt").write_text(SYSTEM_PROMPT + "\n", encoding="utf-8")
    info = {"bench_hash": bench.hash, "bench_name": bench.name, "bench_version": bench.version, "split": split,
            "n_items": len(items), "answers_format": ANSWER_FORMAT,
            "wafersage_version": package_versions(["wafersage"]).get("wafersage")}
    (out / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(_vendor_readme(bench, split, len(items), items[0].id), encoding="utf-8")
    return len(items)


def _error(path: Path, lineno: int, message: str) -> str:
    return f"{path}:{lineno}: {message}"


def _read_answers(path: Path, bench: Benchmark, items: dict[str, VQAItem],
                  split: str) -> tuple[dict[str, AnswerLine], int]:
    """The answers by item id and the number of answer lines; :class:`VendorError` naming every bad line."""
    if not path.is_file():
        raise VendorError(f"{path}: no such answers file")
    lines = path.read_bytes().split(b"\n")
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise VendorError(f"{path}: empty; its first line must be {{\"bench_hash\": \"{bench.hash}\"}}")
    lineno, first = numbered[0]
    try:
        claimed = HashLine.model_validate_json(first).bench_hash
    except ValidationError:
        raise VendorError(_error(path, lineno, 'the first line must be {"bench_hash": "<export.json\'s bench_hash>"}'
                                 f", this benchmark's being {bench.hash}")) from None
    if claimed != bench.hash:
        raise VendorError(_error(path, lineno, f"answers to benchmark hash {claimed[:12]}, but {bench.root} has "
                                               f"{bench.hash[:12]}; import them with the benchmark their questions "
                                               "were exported from, or export this one's questions again"))
    answers: dict[str, AnswerLine] = {}
    first_line: dict[str, int] = {}
    errors: list[str] = []
    for lineno, line in numbered[1:]:
        try:
            answer = AnswerLine.model_validate_json(line)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"])
            errors.append(_error(path, lineno, f"not an answer line ({field + ': ' if field else ''}{error['msg']}); "
                                               f"expected {ANSWER_FORMAT}"))
            continue
        if answer.item_id not in items:
            errors.append(_error(path, lineno, f"item {answer.item_id!r} is not a question of {bench.name} split "
                                               f"{split!r}; answer only the ids of questions.jsonl (exported "
                                               "with another --split? pass the same one here)"))
        elif answer.item_id in answers:
            errors.append(_error(path, lineno, f"item {answer.item_id!r} is answered twice (first on line "
                                               f"{first_line[answer.item_id]}); keep one answer per item"))
        else:
            answers[answer.item_id], first_line[answer.item_id] = answer, lineno
    if errors:
        more = f"\n... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise VendorError("\n".join(errors[:MAX_ERRORS]) + more)
    return answers, len(numbered) - 1


def import_answers(bench_dir: str | Path, answers_path: str | Path, name: str, out_dir: str | Path,
                   split: str = "test") -> tuple[RunInfo, list[str]]:
    """Read a vendor's answers file into the run folder ``out_dir``; returns its record and the unanswered ids."""
    bench = Benchmark.load(bench_dir)
    selection = _selection(bench, split)
    path, out = Path(answers_path), Path(out_dir)
    if not name.strip():
        raise VendorError("--name must name the model that answered (it is its name on the leaderboard)")
    if out.exists() and any(p.name != ".lock" for p in out.iterdir()):
        raise VendorError(f"{out}: folder exists and is not empty; pass another --out")
    answers, n_lines = _read_answers(path, bench, {it.id: it for it in selection}, split)
    samples = []
    for item in selection:
        answer = answers.get(item.id)
        if answer is None:
            continue
        usage = answer.usage or Usage()
        samples.append(Sample(
            item_id=item.id, wafer_id=item.wafer_id,
            request=SentRequest(messages=[{"role": "system", "content": SYSTEM_PROMPT},
                                          {"role": "user", "content": user_text(item)}], image=item.image),
            response=ModelResponse(text=answer.answer, input_tokens=usage.input_tokens,
                                   output_tokens=usage.output_tokens, latency_s=answer.latency_s or 0.0)))
    missing = [item.id for item in selection if item.id not in answers]
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    info = RunInfo(
        model={"name": name, "backend": "imported"}, model_name=name, deployment="imported",
        bench_dir=str(bench.root.resolve()), bench_name=bench.name, bench_version=bench.version,
        bench_hash=bench.hash, split=split, n_items=len(selection), item_ids=[it.id for it in selection],
        packages=package_versions(["wafersage"]), git_commit=git_commit(), started_at=now, finished_at=now,
        n_ok=len(samples), n_failed=len(missing),
        imported=ImportInfo(answers_file=str(path), answers_sha256=sha256_file(path), n_answers=n_lines,
                            n_missing=len(missing), imported_at=now,
                            latency_reported=all(a.latency_s is not None for a in answers.values())),
    )
    with folder_lock(out):
        rewrite_samples(out / SAMPLES, samples)
        write_run_info(out, info)
    return info, missing
