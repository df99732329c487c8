"""Make a graded panel from helper answerers and graders, as the README of each panel describes.

Three steps, each a subcommand; answerers and graders see only what the scratch folders hold:

    python benchmarks/panels/make_panel.py scratch --bench B [--first 27] --wafers 14 --out S
        S/sighted_A, S/sighted_B: the wafers' PNGs under neutral names, their questions, the system prompt;
        S/blind_one_A, S/blind_one_B: every question shuffled across wafers, no image;
        S/blind_all_A, S/blind_all_B: each wafer's questions together, no image;
        S.key.json (beside S, never inside it): which question id is which item.
    python benchmarks/panels/make_panel.py prompts --bench B --scratch S --runs R... --out P --graders 5
        reads S/*/answers.jsonl (``{"qid", "answer"}``), each run folder's answers (baselines) and any --answers
        files (``{"item_id", "source", "answer"}``, e.g. from ``adversaries``), writes the panel
        P (items, maps, labels, images; answers without grades) and the rendered judge prompts, shuffled across
        sources under opaque ids, split over P.grading/grader_K (and a random 160 for a second grader; the key to
        the ids in P.grading.key.json, beside the graders' folders);
    python benchmarks/panels/make_panel.py adversaries --bench B --like P0 --out A.jsonl
        the answers of the oracle (the references), ``blind-prior`` and the fitted blind adversaries of
        ``bench_gaming.py`` (fitted on the train split of the same config built with ``--other-seed``) to the items of
        the panel P0, one ``{"item_id", "source", "answer"}`` per line, for ``prompts --answers``;
    python benchmarks/panels/make_panel.py grades --panel P
        reads P.grading/grader_*/grades.jsonl (``{"id", "score", "spatial", "morphology", "root_cause",
        "rationale"}``) and writes P/answers.jsonl with each answer's grade and P/grades_second.jsonl.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np

from wafersage.harness.run.folder import load_run
from wafersage.harness.scoring.gaming import fitted_answers
from wafersage.harness.scoring.rules import RuleScorer
from wafersage.harness.run.messages import SYSTEM_PROMPT
from wafersage.harness.scoring.judging.judge import render_prompt
from wafersage.models.blind import BlindPrior
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.synth.build import SynthConfig, build_benchmark

SIGHTED = """You are answering questions about wafer maps, as a vision-language model would. Each line of
questions.jsonl has a question id, the image it is about (a PNG in this folder) and the question. Look at the image
and answer each question on its own, following the system prompt in system_prompt.txt. Write answers.jsonl in this
folder: one JSON object per line, {"qid": "...", "answer": "..."}, for every question."""
BLIND_ONE = """You are answering questions about wafer maps WITHOUT seeing them, as a text-only model would. Each
line of questions.jsonl is about a DIFFERENT wafer, in random order. Follow the system prompt in system_prompt.txt
(it mentions an image you do not have); answer each question on its own, without using the other questions, with
your best guess as an engineer would without the map: commit to an answer, do not refuse. Write answers.jsonl in
this folder: one JSON object per line, {"qid": "...", "answer": "..."}, for every question."""
BLIND_ALL = """You are answering questions about wafer maps WITHOUT seeing them, as a text-only model would. In
questions.jsonl the questions are grouped by wafer ("map"): all questions with the same map number are about the
same wafer, and you may use everything the questions of a map say. Follow the system prompt in system_prompt.txt (it
mentions an image you do not have) and give your best guess as an engineer would without the map: commit to an
answer, do not refuse. Write answers.jsonl in this folder: one JSON object per line, {"qid": "...", "answer":
"..."}, for every question."""


_PREFIX = {"sighted": "s", "blind_one": "o", "blind_all": "a"}


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wafers(bench: Benchmark, split: str, first: int, n: int) -> list[str]:
    """The split's wafers ``first`` to ``first + n - 1`` (1-based, in the split's item order)."""
    return list(dict.fromkeys(it.wafer_id for it in bench.items(split)))[first - 1:first - 1 + n]


def scratch(args: argparse.Namespace) -> None:
    bench = Benchmark.load(args.bench)
    wafers = _wafers(bench, args.split, args.first, args.wafers)
    items = [it for it in bench.items(args.split) if it.wafer_id in wafers]
    rng = random.Random(args.seed)
    key: dict[str, str] = {}
    halves = (wafers[: (len(wafers) + 1) // 2], wafers[(len(wafers) + 1) // 2:])
    for kind, text in (("sighted", SIGHTED), ("blind_one", BLIND_ONE), ("blind_all", BLIND_ALL)):
        shuffled = rng.sample(items, len(items))
        for half, part in zip("AB", halves):
            folder = args.out / f"{kind}_{half}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "system_prompt.txt").write_text(SYSTEM_PROMPT + "\n")
            (folder / "INSTRUCTIONS.md").write_text(text + "\n")
            if kind == "blind_one":  # half of all questions, across all wafers
                chosen = shuffled[: len(items) // 2] if half == "A" else shuffled[len(items) // 2:]
            else:
                chosen = [it for it in items if it.wafer_id in part]
            rows = []
            for n, it in enumerate(chosen):
                qid = f"{_PREFIX[kind]}{half}{n:03d}"
                key[qid] = it.id
                row = {"qid": qid, "question": it.question}
                map_no = part.index(it.wafer_id) + 1 if kind != "blind_one" else None
                if kind == "sighted":
                    row["image"] = f"map_{map_no:02d}.png"
                    shutil.copy(bench.image_path(it), folder / row["image"])
                elif kind == "blind_all":
                    row = {"qid": qid, "map": map_no, "question": it.question}
                rows.append(row)
            _write_jsonl(folder / "questions.jsonl", rows)
    Path(f"{args.out}.key.json").write_text(json.dumps(key, indent=0))
    print(f"{len(wafers)} wafers, {len(items)} items -> {args.out}")


def prompts(args: argparse.Namespace) -> None:
    bench = Benchmark.load(args.bench)
    answers: list[dict] = []
    if args.scratch:
        key = json.loads(Path(f"{args.scratch}.key.json").read_text())
        for path in sorted(args.scratch.glob("*/answers.jsonl")):
            source = path.parent.name.rsplit("_", 1)[0]
            answers += [{"item_id": key[r["qid"]], "source": source, "answer": str(r["answer"])}
                        for r in _read_jsonl(path)]
    for path in args.answers:
        answers += [{"item_id": r["item_id"], "source": r["source"], "answer": str(r["answer"])}
                    for r in _read_jsonl(path)]
    wanted = {a["item_id"] for a in answers}
    for run in args.runs:
        loaded = load_run(run)
        answers += [{"item_id": s.item_id, "source": loaded.info.model_name, "answer": s.response.text}
                    for s in loaded.samples if s.item_id in wanted]
    items = {it.id: it for it in bench.items() if it.id in wanted}
    grids = {w.id: w for w in bench.wafers()}
    out: Path = args.out
    (out / "images").mkdir(parents=True, exist_ok=True)
    wafers = list(dict.fromkeys(items[i].wafer_id for i in items))
    rows = []
    for it in items.values():
        rubric = bench.rubrics[it.wafer_id]
        image = f"images/{it.wafer_id}.png"
        shutil.copy(bench.image_path(it), out / image)
        rows.append(dict(id=it.id, wafer_id=it.wafer_id, question=it.question, category=it.category,
                         difficulty=it.difficulty, labels=it.labels, expected_yes=it.expected_yes, targets=it.targets,
                         image=image, reference=it.answer, rubric=rubric.model_dump(mode="json")))
    _write_jsonl(out / "items.jsonl", rows)
    np.savez_compressed(out / "maps.npz", **{w: grids[w].grid for w in wafers})
    (out / "labels.json").write_text(json.dumps({w: list(grids[w].labels) for w in wafers}, indent=1))
    rng = random.Random(args.seed)
    order = rng.sample(range(len(answers)), len(answers))
    grading = Path(f"{out}.grading")
    opaque = {f"g{n:04d}": answers[i] for n, i in enumerate(order)}
    ids = list(opaque)
    second = set(rng.sample(ids, min(160, len(ids))))
    for k in range(args.graders + 1):
        chosen = ids[k::args.graders] if k < args.graders else [i for i in ids if i in second]
        folder = grading / (f"grader_{k + 1}" if k < args.graders else "grader_second")
        folder.mkdir(parents=True, exist_ok=True)
        _write_jsonl(folder / "prompts.jsonl", [
            {"id": i, "prompt": render_prompt(items[opaque[i]["item_id"]],
                                              bench.rubrics[items[opaque[i]["item_id"]].wafer_id], opaque[i]["answer"])}
            for i in chosen])
    Path(f"{grading}.key.json").write_text(json.dumps(opaque))  # beside the graders' folders, never inside
    print(f"{len(answers)} answers of {len(items)} items -> {out}; prompts in {grading}")


def adversaries(args: argparse.Namespace) -> None:
    bench = Benchmark.load(args.bench)
    by_id = {it.id: it for it in bench.items()}
    items = [by_id[r["id"]] for r in _read_jsonl(args.like / "items.jsonl")]
    config = SynthConfig.from_yaml(args.config).model_copy(update={"seed": args.other_seed})
    prior = BlindPrior(bench.items("train"))
    rows = [{"item_id": it.id, "source": "oracle", "answer": it.answer} for it in items]
    rows += [{"item_id": it.id, "source": "blind-prior", "answer": prior(it.category, it.question)} for it in items]
    with tempfile.TemporaryDirectory() as tmp:
        other = Benchmark.load(build_benchmark(config, Path(tmp) / "other", progress=False))
        scorer = RuleScorer({**bench.rubrics, **other.rubrics})
        for name, texts in fitted_answers(items, other.items("train"), scorer).items():
            rows += [{"item_id": it.id, "source": name, "answer": text} for it, text in zip(items, texts)]
    _write_jsonl(args.out, rows)
    print(f"{len(rows)} answers to {len(items)} items -> {args.out}")


def grades(args: argparse.Namespace) -> None:
    grading = Path(f"{args.panel}.grading")
    opaque = json.loads(Path(f"{grading}.key.json").read_text())
    first: dict[str, dict] = {}
    for path in sorted(grading.glob("grader_[0-9]*/grades.jsonl")):
        first |= {r["id"]: r for r in _read_jsonl(path)}
    missing = sorted(set(opaque) - set(first))
    if missing:
        raise SystemExit(f"{len(missing)} answers have no grade, e.g. {missing[:5]}; finish grading them first")
    grade = lambda r: {k: r.get(k) for k in ("score", "spatial", "morphology", "root_cause", "rationale")}
    _write_jsonl(args.panel / "answers.jsonl", [opaque[i] | {"judge": grade(first[i])} for i in sorted(
        opaque, key=lambda i: (opaque[i]["item_id"], opaque[i]["source"]))])
    second_path = grading / "grader_second" / "grades.jsonl"
    if second_path.exists():
        _write_jsonl(args.panel / "grades_second.jsonl", [
            {"item_id": opaque[r["id"]]["item_id"], "source": opaque[r["id"]]["source"], "judge": grade(r)}
            for r in _read_jsonl(second_path)])
    print(f"graded {len(first)} answers -> {args.panel}/answers.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("scratch")
    one.add_argument("--bench", type=Path, required=True)
    one.add_argument("--split", default="test")
    one.add_argument("--first", type=int, default=1, help="the split's first wafer to take (1-based)")
    one.add_argument("--wafers", type=int, default=14)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--out", type=Path, required=True)
    two = sub.add_parser("prompts")
    two.add_argument("--bench", type=Path, required=True)
    two.add_argument("--scratch", type=Path, help="scratch folder of the answerers (from 'scratch')")
    two.add_argument("--answers", type=Path, nargs="*", default=[], help="answer files, e.g. from 'adversaries'")
    two.add_argument("--runs", type=Path, nargs="*", default=[])
    two.add_argument("--graders", type=int, default=5)
    two.add_argument("--seed", type=int, default=1)
    two.add_argument("--out", type=Path, required=True)
    adv = sub.add_parser("adversaries")
    adv.add_argument("--bench", type=Path, required=True)
    adv.add_argument("--like", type=Path, required=True, help="the panel whose items to answer")
    adv.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[2] / "configs/synth/demo.yaml")
    adv.add_argument("--other-seed", type=int, default=1000)
    adv.add_argument("--out", type=Path, required=True)
    three = sub.add_parser("grades")
    three.add_argument("--panel", type=Path, required=True)
    args = parser.parse_args()
    {"scratch": scratch, "prompts": prompts, "adversaries": adversaries, "grades": grades}[args.command](args)


if __name__ == "__main__":
    main()
