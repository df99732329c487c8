"""How much of a graded panel's score needs the image: judge and rule means per source, blind against sighted.

    .venv/bin/python benchmarks/bench_vision_sets.py [--panel benchmarks/panels/panel_w]
        [--config configs/synth/demo.yaml [--mixture-share none]]

For each source of answers: the judge's mean grade and the rule score's mean (each with a wafer-bootstrap 95% CI),
the judge mean as a share of the ``sighted`` source's (and of the graded ``oracle`` source's, where the panel has
one: ``benchmarks/panels/panel_g``), and the rule mean as a share of the oracle's (the reference answers, scored by
the same rule scorer). Then the targets of the "benchmark that needs the image" issue: the
one-question-at-a-time blind set (``blind_one``) at most 35% of the sighted set by the judge and at most 15% of the
oracle by the rule score; the set that saw all of a wafer's questions at once (``blind_all``) at most 1.2x the
one-at-a-time set by the judge.

With ``--config`` (the synthesis config the panel's items were built from; demo v3, the items of panel_v and
panel_g, is ``configs/synth/demo.yaml --mixture-share none``) it builds that benchmark again, checks that the
panel's items are its items, and prints the panel's chance floor (``tasks/blindness/answers.py``: guessing each
template's most common asked value on the train split) and each source's share of the headroom above it, by the
judge (where the panel grades the oracle) and by the rule score.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from rich.console import Console
from rich.table import Table

from wafersage.harness.agreement.panel import load_panel
from wafersage.harness.agreement.scoring import as_vqa_item, panel_scorer
from wafersage.harness.scoring.answers import scored_answer
from wafersage.harness.scoring.rules import BARE_VERDICT
from wafersage.harness.scoring.stats import format_estimate, mean_ci
from wafersage.tasks.blindness.answers import chance_floor, headroom_share

REPO = Path(__file__).resolve().parents[1]


def by_category(panel, scorer) -> Table:
    """Per question category and source: the judge's mean and the rule score's mean, each as a share of its mean
    for the references (the judge's when the panel grades an ``oracle`` source, else 10)."""
    scores: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for a in panel.answers:
        item = panel.items[a.item_id]
        rule = scorer.score(as_vqa_item(item), scored_answer(a.answer)).score
        scores[item.category, a.source].append((a.judge.score, rule))
    categories = sorted({c for c, _ in scores})
    table = Table(title="per category: judge / rule mean as a share of the references' (the graded oracle's, else 10)")
    table.add_column("answers")
    for category in categories:
        table.add_column(category)
    for source in panel.sources:
        cells = []
        for category in categories:
            pairs = np.array(scores[category, source])
            ref = np.array(scores.get((category, "oracle"), [(10.0, 10.0)]))
            cells.append(f"{pairs[:, 0].mean() / ref[:, 0].mean():.0%} / {pairs[:, 1].mean() / ref[:, 1].mean():.0%}")
        table.add_row(source, *cells)
    return table


def _mixture_share(text: str) -> str:
    if text != "none":
        try:
            ok = 0.0 <= float(text) <= 1.0
        except ValueError:
            ok = False
        if not ok:
            raise argparse.ArgumentTypeError(f"{text!r}: give a share from 0 to 1, or 'none'")
    return text


def panel_chance_floor(panel, config_path: Path, mixture_share: str | None) -> float:
    """The mean chance floor of the panel's items, on the benchmark ``config_path`` builds (see the docstring)."""
    import tempfile

    from bench_blind import records_of
    from wafersage.tasks.bench.folder import Benchmark
    from wafersage.tasks.synth.build import SynthConfig, build_benchmark

    config = SynthConfig.from_yaml(config_path)
    if mixture_share is not None:
        share = None if mixture_share == "none" else float(mixture_share)
        config = config.model_copy(update={"source": config.source.model_copy(update={"mixture_share": share})})
    with tempfile.TemporaryDirectory() as tmp:
        bench = Benchmark.load(build_benchmark(config, Path(tmp) / "bench", progress=False))
        test = [r for split in ("val", "test") for r in records_of(bench, split)]
        floors = dict(zip((r.item_id for r in test), chance_floor(records_of(bench, "train"), test, BARE_VERDICT)))
        questions = {r.item_id: r.question for r in test}
    wrong = [i for i, it in panel.items.items() if questions.get(i) != it.question]
    if wrong:
        raise SystemExit(f"{config_path}: {len(wrong)} of the panel's items (first {wrong[0]}) are not items of this "
                         "benchmark; pass the config (and --mixture-share) the panel was made from")
    return float(np.mean([floors[i] for i in panel.items]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panel", type=Path, default=REPO / "benchmarks/panels/panel_w",
                        help="a graded panel (default: the one made on the current demo benchmark)")
    parser.add_argument("--config", type=Path, default=None,
                        help="the synthesis config the panel's items came from: print the chance floor")
    parser.add_argument("--mixture-share", default=None, type=_mixture_share,
                        help="override the config's source.mixture_share: a share from 0 to 1, or 'none' (demo v3)")
    args = parser.parse_args()
    panel = load_panel(args.panel)
    scorer = panel_scorer(panel)
    oracle_scores = [scorer.score(as_vqa_item(it), it.reference).score for it in panel.items.values()]
    oracle = mean_ci(oracle_scores, [it.wafer_id for it in panel.items.values()])
    judge, rule = {}, {}
    for source in panel.sources:
        answers = [a for a in panel.answers if a.source == source]
        wafers = [panel.items[a.item_id].wafer_id for a in answers]
        judge[source] = mean_ci([a.judge.score for a in answers], wafers)
        rule[source] = mean_ci([scorer.score(as_vqa_item(panel.items[a.item_id]), scored_answer(a.answer)).score
                                for a in answers], wafers)
    sighted, graded_oracle = judge.get("sighted"), judge.get("oracle")
    share = lambda value, of: f"{value / of.value:.0%}" if of else "-"
    table = Table(title=f"{args.panel.name}: {len(panel.items)} items of {len(panel.wafers)} wafers")
    for column in ("answers", "n", "judge mean", "share of sighted (judge)", "share of oracle (judge)", "rule mean",
                   "share of oracle (rule)"):
        table.add_column(column)
    table.add_row("oracle (references)", str(oracle.n), "", "", "", format_estimate(oracle), "100%")
    for source in panel.sources:
        table.add_row(source, str(judge[source].n), format_estimate(judge[source]), share(judge[source].value, sighted),
                      share(judge[source].value, graded_oracle), format_estimate(rule[source]),
                      share(rule[source].value, oracle))
    console = Console(width=150)
    console.print(table)
    console.print(by_category(panel, scorer))
    if sighted and "blind_one" in judge:
        one = judge["blind_one"].value
        console.print(f"blind_one / sighted (judge): {one / sighted.value:.0%} (target <= 35%); "
                      f"blind_one / oracle (rule): {rule['blind_one'].value / oracle.value:.0%} (target <= 15%)")
        if "blind_all" in judge:
            console.print(f"blind_all / blind_one (judge): {judge['blind_all'].value / one:.2f}x (target <= 1.2x)")
    if args.config:
        floor = panel_chance_floor(panel, args.config, args.mixture_share)
        shares = []
        for source in (s for s in panel.sources if s != "oracle"):
            by_judge = headroom_share(judge[source].value / graded_oracle.value, floor) if graded_oracle else None
            by_rule = headroom_share(rule[source].value / oracle.value, floor)
            shares.append(f"{source} " + (f"judge {by_judge:.0%}, " if by_judge is not None else "") +
                          f"rule {by_rule:.0%}")
        console.print(f"chance floor of these items: {floor:.1%} of the oracle; share of the headroom above it: "
                      + ", ".join(shares))


if __name__ == "__main__":
    main()
