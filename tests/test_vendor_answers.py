"""`export questions` / `import-answers`: a vendor gets the questions without any reference text, its answers come
back into a run folder that scores like the eval run they came from, and each bad answers file is refused naming
its line."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.harness.run.folder import load_run
from wafersage.harness.run.runner import EvalUsageError, run_eval
from wafersage.harness.run.vendor import VendorError, import_answers
from wafersage.harness.scoring.score_run import IncompleteRunWarning, Summary, score_run
from wafersage.reports.cli import write_report
from wafersage.tasks.bench.folder import Benchmark


def _invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def exported(scorer_bench, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vendor") / "questions"
    result = _invoke("export", "questions", "--bench", scorer_bench, "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def eval_run(scorer_bench, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vendor") / "random"
    run_eval(scorer_bench, "random", out_dir=out, progress=False)
    score_run(out, progress=False)
    return out


def _answers_from(run: Path, bench_hash: str) -> list[str]:
    """The eval run's answers as a vendor would send them."""
    lines = [json.dumps({"bench_hash": bench_hash})]
    for s in load_run(run).samples:
        lines.append(json.dumps({"item_id": s.item_id, "answer": s.response.text, "latency_s": 0.25,
                                 "usage": {"input_tokens": 100, "output_tokens": 20}}))
    return lines


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_questions_export_holds_no_reference_text(exported, scorer_bench):
    bench = Benchmark.load(scorer_bench)
    items = bench.items("test")
    questions = [json.loads(line) for line in (exported / "questions.jsonl").read_text().splitlines()]
    assert [q["item_id"] for q in questions] == [it.id for it in items]
    info = json.loads((exported / "export.json").read_text())
    assert info["bench_hash"] == bench.hash and info["n_items"] == len(items)
    prompt = (exported / "system_prompt.txt").read_text().strip()
    wafers = {it.wafer_id for it in items}
    assert len(list((exported / "images").glob("*.png"))) == len(wafers)
    text = "\n".join(p.read_bytes().decode("latin-1") for p in sorted(exported.rglob("*")) if p.is_file()).lower()
    # what 'wafersage eval' sends the model anyway (system prompt, questions) is taken out before terms are looked for
    sent = text.replace(prompt.lower(), " ")
    for q in questions:
        sent = sent.replace(json.dumps(q["question"]).lower()[1:-1], " ")
    rubrics = [bench.rubrics[w] for w in wafers]
    references = {it.answer for it in items}
    long_texts = references | {r.summary for r in rubrics} | {c for r in rubrics for c in r.root_cause.potential_causes}
    long_texts |= {json.loads(line)["text"] for line in (scorer_bench / "descriptions.jsonl").read_text().splitlines()
                   if json.loads(line)["wafer_id"] in wafers}
    leaked = [t for t in long_texts if t.lower() in text]
    assert not leaked, leaked[:3]
    terms = {t.term for r in rubrics for d in (r.spatial, r.morphology, r.root_cause) for t in d.must_hit}
    terms |= {t for r in rubrics for d in (r.spatial, r.morphology, r.root_cause) for t in d.must_avoid}
    terms |= {label for it in items for label in it.labels} | {r.root_cause.process_step for r in rubrics}
    terms = {t for t in terms if t and t.lower() != "none"}
    found = [t for t in sorted(terms) if re.search(rf"\b{re.escape(t.lower())}\b", sent)]
    assert not found, found
    assert len(terms) > 20 and len(references) > 100


def test_answers_of_an_eval_run_imported_again_score_identically(exported, eval_run, scorer_bench, tmp_path):
    bench_hash = json.loads((exported / "export.json").read_text())["bench_hash"]
    answers = _write(tmp_path / "answers.jsonl", _answers_from(eval_run, bench_hash))
    result = _invoke("import-answers", "--bench", scorer_bench, "--answers", answers, "--name", "vendor-model",
                     "--out", tmp_path / "imported")
    assert result.exit_code == 0, result.output
    assert _invoke("score", tmp_path / "imported").exit_code == 0
    mine = [json.loads(line) for line in (tmp_path / "imported" / "scores.jsonl").read_text().splitlines()]
    theirs = [json.loads(line) for line in (eval_run / "scores.jsonl").read_text().splitlines()]
    assert {s["item_id"]: (s["rule_score"], s["rule"]) for s in mine} == \
        {s["item_id"]: (s["rule_score"], s["rule"]) for s in theirs}
    assert len(mine) == len(theirs) == len(Benchmark.load(scorer_bench).items("test"))
    summary = Summary.model_validate_json((tmp_path / "imported" / "summary.json").read_text())
    assert summary.rule == Summary.model_validate_json((eval_run / "summary.json").read_text()).rule
    assert summary.deployment == "imported" and summary.latency_p50_s == pytest.approx(0.25)
    board = write_report([eval_run, tmp_path / "imported"], tmp_path / "board.html", markdown_path=tmp_path / "b.md")
    assert {row.model: row.deployment for row in board.rows} == {"random": "baseline", "vendor-model": "imported"}
    assert "imported" in (tmp_path / "b.md").read_text()
    gate = _invoke("compare", eval_run, tmp_path / "imported")
    assert gate.exit_code == 0, gate.output
    with pytest.raises(EvalUsageError, match="imported with 'wafersage import-answers'"):
        run_eval(scorer_bench, "random", out_dir=tmp_path / "imported", progress=False)


def test_missing_items_are_listed_and_scored_as_missing(exported, eval_run, scorer_bench, tmp_path):
    lines = _answers_from(eval_run, json.loads((exported / "export.json").read_text())["bench_hash"])
    kept = [lines[0]] + [json.dumps(json.loads(line) | {"latency_s": None}) for line in lines[1:-3]]
    skipped = [json.loads(line)["item_id"] for line in lines[-3:]]
    result = _invoke("import-answers", "--bench", scorer_bench, "--answers", _write(tmp_path / "a.jsonl", kept),
                     "--name", "partial", "--out", tmp_path / "partial")
    assert result.exit_code == 0, result.output
    assert f"3 of {len(lines) - 1} items have no answer and are recorded as missing: {', '.join(skipped)}" in \
        " ".join(result.output.split())
    assert load_run(tmp_path / "partial").info.imported.n_missing == 3
    with pytest.warns(IncompleteRunWarning):
        summary = score_run(tmp_path / "partial", progress=False)
    assert summary.n_missing == 3 and summary.latency_p50_s is None  # no latency given: unknown, not 0


@pytest.mark.parametrize("case, pattern", [
    ("other hash", r"a\.jsonl:1: answers to benchmark hash 000000000000, but .* has [0-9a-f]{12}; import them with "
                   r"the benchmark their questions were exported from"),
    ("no hash line", r'a\.jsonl:1: the first line must be \{"bench_hash": "<export\.json\'s bench_hash>"\}'),
    ("unknown id", r"a\.jsonl:3: item 'gen-7-999999-q0' is not a question of wafersage-demo split 'test'"),
    ("duplicate", r"a\.jsonl:4: item '[^']+' is answered twice \(first on line 2\); keep one answer per item"),
    ("bad line", r"a\.jsonl:3: not an answer line \(answer: Input should be a valid string\)"),
    ("extra field", r"a\.jsonl:2: not an answer line \(score: Extra inputs are not permitted\)"),
    ("not json", r"a\.jsonl:3: not an answer line \(Invalid JSON"),
    ("empty", r"a\.jsonl: empty; its first line must be"),
])
def test_each_bad_answers_file_is_refused_naming_its_line(exported, eval_run, scorer_bench, tmp_path, case, pattern):
    lines = _answers_from(eval_run, json.loads((exported / "export.json").read_text())["bench_hash"])[:4]
    first = json.loads(lines[1])
    bad = {
        "other hash": [json.dumps({"bench_hash": "0" * 64}), *lines[1:]],
        "no hash line": lines[1:],
        "unknown id": [*lines[:2], json.dumps(first | {"item_id": "gen-7-999999-q0"}), *lines[3:]],
        "duplicate": [*lines[:3], lines[1]],
        "bad line": [*lines[:2], json.dumps(first | {"answer": 7})],
        "extra field": [lines[0], json.dumps(first | {"score": 10}), *lines[2:]],
        "not json": [*lines[:2], "{'item_id': 'x'}"],
        "empty": [],
    }[case]
    with pytest.raises(VendorError, match=pattern):
        import_answers(scorer_bench, _write(tmp_path / "a.jsonl", bad), "m", tmp_path / "run")
    assert not (tmp_path / "run").exists()
    result = _invoke("import-answers", "--bench", scorer_bench, "--answers", tmp_path / "a.jsonl", "--name", "m",
                     "--out", tmp_path / "run")
    assert result.exit_code == 2 and re.search(pattern, " ".join(result.output.split()))
