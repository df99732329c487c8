"""How much of the rule score a reader without the image earns, before and after the vision-indispensable filter.

    .venv/bin/python benchmarks/bench_blind.py [--config configs/synth/demo.yaml] [--wafers N] [--other-seed S]

Builds the config twice with its seed, once with the blind filter off (*before*) and once as configured (*after*,
by default dropping blind-answerable items from val and test), and once with another seed. On the test split it
prints, per question category and per template, the answer entropy (bits, of the asked values) and each blind
adversary's mean rule score as a share of the oracle's, before and after:

* ``constant_per_category`` and ``question_text_only`` (harness/scoring/gaming.py), fitted on the train split of
  the *other seed's* benchmark, so they are not the filter's adversaries;
* ``blind-prior`` and ``blind-question`` (models/blind.py), trained on the benchmark's own train split;
* the filter's own fact-level adversaries (tasks/blindness/adversary.py), fitted on the train split: the share of
  test items whose asked value they predict (fact accuracy, not a rule score).

Beside them, the *chance floor* (tasks/blindness/answers.py ``chance_floor``): what guessing each template's most
common asked value on train earns under exact matching (a right yes/no verdict at a bare verdict's 8), the least
that any scorer paying an exactly right answer grants a reader without the image; each adversary's share of the
headroom above it; and the lowest floor any wafer's item mix within the paper's counts could have with these
templates (``best_mix_floor``: the best templates per category, yes/no items perfectly balanced).

Target (issue 15): every blind adversary <= 15% of the oracle, the oracle >= 9.5. No asserts: it prints figures.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from wafersage.harness.scoring.gaming import fitted_answers
from wafersage.models.blind import BlindPrior, BlindQuestion
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.blindness.adversary import guesses_of
from wafersage.harness.scoring.rules import BARE_VERDICT, RuleScorer
from wafersage.tasks.blindness.answers import ItemRecord, asked_value, best_mix_floor, chance_floor, entropy_bits, headroom_share
from wafersage.tasks.synth.build import SynthConfig, build_benchmark
from wafersage.tasks.synth.vqa import CATEGORY_RANGES, ITEMS_RANGE, TEMPLATE_KEYS, TEMPLATES

REPO = Path(__file__).resolve().parents[1]
TARGET_SHARE = 0.15
_PHRASING = {q: TEMPLATE_KEYS[id(t)] for t in TEMPLATES for q in t.phrasings}
_PREMISE_WORDS = (("% of the dies", "share"), ("isolated", "texture"), ("separate groups", "regions"),
                  ("radial zone", "zone"), ("o'clock", "clock"), ("quadrant", "quadrant"), ("side", "symmetry"))


def template_of(item) -> str:
    if item.category != "consistency":
        return _PHRASING.get(item.question, f"model/{item.category}")
    return "consistency/" + next((kind for word, kind in _PREMISE_WORDS if word in item.question), "other")


def records_of(bench: Benchmark, split: str) -> list[ItemRecord]:
    return [ItemRecord(item_id=it.id, wafer_id=it.wafer_id, split=it.split, category=it.category,
                       template=template_of(it), question=it.question,
                       truth=asked_value(it.category, it.focus, bench.rubrics[it.wafer_id], it.expected_yes))
            for it in bench.items(split)]


def fact_accuracy(bench: Benchmark) -> dict[str, float]:
    """The filter's adversaries fitted on the train split: the share of test items whose asked value each gets
    right (over the items it guesses)."""
    hits: dict[str, list[bool]] = defaultdict(list)
    test = records_of(bench, "test")
    for record, guess in zip(test, guesses_of(records_of(bench, "train"), test)):
        for name, (value, _) in guess.items():
            hits[name].append(value == record.truth)
    return {name: float(np.mean(values)) for name, values in hits.items()}


def measure(bench: Benchmark, other: Benchmark) -> dict:
    """Per group (all, each category, each template): items, entropy, the oracle's mean and each adversary's share
    of it. The gaming strategies are fitted once, on the other seed's train split."""
    items = bench.items("test")
    scorer = RuleScorer({**bench.rubrics, **other.rubrics})
    prior, question = BlindPrior(bench.items("train")), BlindQuestion(bench.items("train"))
    answers = {"oracle": [it.answer for it in items],
               "blind-prior": [prior(it.category, it.question) for it in items],
               "blind-question": [question(it.category, it.question) for it in items]}
    answers |= fitted_answers(items, other.items("train"), scorer)
    scores = {name: np.array([scorer.score(it, text).score for it, text in zip(items, texts)])
              for name, texts in answers.items()}
    floor = np.array(chance_floor(records_of(bench, "train"), records_of(bench, "test"), BARE_VERDICT))
    groups: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        groups["all"].append(i)
        groups[it.category].append(i)
        groups["  " + template_of(it)].append(i)
    rows = {}
    for group in sorted(groups, key=lambda g: (g != "all", g.strip())):
        rows_of = groups[group]
        oracle = float(scores["oracle"][rows_of].mean())
        values = Counter(asked_value(items[i].category, items[i].focus, bench.rubrics[items[i].wafer_id],
                                     items[i].expected_yes) for i in rows_of)
        rows[group] = {"n": len(rows_of), "entropy": entropy_bits(values), "oracle": oracle,
                       "chance": float(floor[rows_of].mean()),
                       **{name: float(s[rows_of].mean()) / oracle for name, s in scores.items() if name != "oracle"}}
    return rows


def paper_mix_floor(template_floor: dict[str, float], clock: bool) -> float:
    """:func:`best_mix_floor` over the synthesis templates (clock templates only on a wafer with a clock)."""
    usable = {t: f for t, f in template_floor.items()
              if not t.startswith("consistency/") and (clock or "clock" not in t.split(":")[-1])}
    return best_mix_floor(usable, CATEGORY_RANGES, ITEMS_RANGE, 0.5 * BARE_VERDICT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "configs/synth/demo.yaml"))
    parser.add_argument("--wafers", type=int, default=None, help="generated maps (default: the config's)")
    parser.add_argument("--other-seed", type=int, default=1000, help="seed of the benchmark the gaming "
                                                                      "strategies are fitted on")
    args = parser.parse_args()
    console = Console(width=200)
    config = SynthConfig.from_yaml(args.config)
    if args.wafers:
        config = config.model_copy(update={"source": config.source.model_copy(update={"n": args.wafers})})
    with tempfile.TemporaryDirectory() as tmp:
        off = config.model_copy(update={"blind_filter": config.blind_filter.model_copy(update={"mode": "off"})})
        before = Benchmark.load(build_benchmark(off, Path(tmp) / "before", progress=False))
        after = Benchmark.load(build_benchmark(config, Path(tmp) / "after", progress=False))
        other = Benchmark.load(build_benchmark(config.model_copy(update={"seed": args.other_seed}),
                                               Path(tmp) / "other", progress=False))
        figures = {"before": measure(before, other), "after": measure(after, other)}
        facts = {"before": fact_accuracy(before), "after": fact_accuracy(after)}
        report = json.loads((after.root / "manifest.json").read_text())["blind_filter"]
        per_wafer = Counter(it.wafer_id for it in after.items("test"))
    names = ["oracle", "chance", "constant_per_category", "question_text_only", "blind-prior", "blind-question"]
    table = Table(title=f"test split, {config.name} ({config.source.n} maps): entropy (bits) and share of the "
                        "oracle's rule score (oracle: mean 0-10), before -> after the filter")
    for column in ("group", "n", "entropy", *names):
        table.add_column(column)
    for group, row in figures["before"].items():
        new = figures["after"].get(group, {})
        cell = lambda key, fmt: f"{row[key]:{fmt}} -> " + (f"{new[key]:{fmt}}" if key in new else "-")
        table.add_row(group, f"{row['n']} -> {new.get('n', 0)}", cell("entropy", ".2f"),
                      *(cell(name, ".2f" if name == "oracle" else ".0%") for name in names))
    console.print(table)
    after = figures["after"]["all"]
    worst = max(after[n] for n in names[2:])
    console.print(f"worst blind adversary after the filter: {worst:.1%} of the oracle (target <= {TARGET_SHARE:.0%}); "
                  f"oracle {after['oracle']:.2f} (target >= 9.5); chance floor {after['chance']:.1%}, so the adversary "
                  f"earns {headroom_share(worst, after['chance']):.1%} of the headroom above chance")
    template_floor = {g.strip(): row["chance"] for g, row in figures["before"].items() if g.startswith("  ")}
    console.print("lowest chance floor the paper's item counts allow with these templates (yes/no perfectly "
                  f"balanced): {paper_mix_floor(template_floor, clock=True):.1%} on a wafer with a clock to ask, "
                  f"{paper_mix_floor(template_floor, clock=False):.1%} on one without")
    console.print("filter's fact-level adversaries (fitted on train), share of test items' asked values right: " +
                  ", ".join(f"{n} {facts['before'][n]:.0%} -> {facts['after'].get(n, 0):.0%}"
                            for n in facts["before"]))
    console.print(f"filter: dropped {report.get('dropped')} items, kept back {report.get('kept_back')}, per category "
                  f"{report.get('dropped_per_category')}; test items per wafer after: "
                  f"min {min(per_wafer.values())}, mean {np.mean(list(per_wafer.values())):.1f}")


if __name__ == "__main__":
    main()
