"""Balanced answers and the vision-indispensable filter, on generated benchmarks built by build_benchmark (and the
filter on records made by hand, where what a blind adversary knows is set on purpose)."""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict

import numpy as np
import pytest

from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.blindness.answers import ItemRecord, best_mix_floor, chance_floor
from wafersage.tasks.blindness.filter import MIN_ITEMS, MIN_ITEMS_NORMAL, BlindFilterOptions, blind_filter
from wafersage.tasks.blindness.population import MARGIN, numeric_values
from wafersage.tasks.geometry.measure import measure
from wafersage.tasks.synth.build import SynthConfig, build_benchmark
from wafersage.tasks.synth.premises import PREMISE_SLOTS
from wafersage.tasks.synth.vqa import CATEGORY_RANGES, ITEMS_RANGE

from conftest import REPO

PREMISE_WORDS = (("% of the dies", "share"), ("isolated", "texture"), ("separate groups", "regions"),
                 ("radial zone", "zone"), ("o'clock", "clock"), ("quadrant", "quadrant"), ("side", "symmetry"))


def premise_kind(question: str) -> str:
    return next(kind for word, kind in PREMISE_WORDS if word in question)


def _config(seed: int, n: int = 400) -> SynthConfig:
    config = SynthConfig.from_yaml(REPO / "configs" / "synth" / "demo.yaml")
    return config.model_copy(update={"seed": seed, "source": config.source.model_copy(update={"n": n}),
                                     "splits": config.splits.model_copy(update={"train": 0.5, "val": 0.2,
                                                                                "test": 0.3})})


@pytest.fixture(scope="module")
def benches(tmp_path_factory) -> tuple[Benchmark, Benchmark]:
    """Two 400-map builds of the demo config with different seeds, the filter at its defaults."""
    root = tmp_path_factory.mktemp("blindness")
    return tuple(Benchmark.load(build_benchmark(_config(seed), root / f"seed{seed}", progress=False))
                 for seed in (7, 8))


def test_each_premise_kind_is_true_about_half_the_time(benches):
    for bench in benches:
        by_kind: dict[str, list[bool]] = defaultdict(list)
        for item in bench.items():
            if item.category == "consistency":
                by_kind[premise_kind(item.question)].append(item.expected_yes)
        everything = [v for values in by_kind.values() for v in values]
        assert 0.45 <= np.mean(everything) <= 0.55
        for kind, values in by_kind.items():
            if len(values) >= 40:
                assert 0.35 <= np.mean(values) <= 0.65, (kind, np.mean(values), len(values))


def test_numeric_premises_state_the_population_threshold_clear_of_the_wafer_value(benches):
    for bench in benches:
        thresholds = bench.manifest["premise_thresholds"]
        geoms = {w.id: measure(w) for w in bench.wafers()}
        asked, hugging = 0, 0
        for item in bench.items():
            if item.category != "consistency" or premise_kind(item.question) not in ("share", "texture"):
                continue
            kind = premise_kind(item.question)
            word, number = re.search(r"(more|fewer) than ([0-9.]+)%", item.question).groups()
            assert float(number) == thresholds[kind]  # one threshold per build, never the wafer's own value
            value = numeric_values(geoms[item.wafer_id])[("share", "texture").index(kind)]
            assert (value > float(number) if word == "more" else value < float(number)) == item.expected_yes
            asked += 1
            hugging += max(value, float(number)) < MARGIN * min(value, float(number))
        assert asked >= 50
        # only a map that decides no premise kind clearly (about 1 in 200) is asked its share within the margin
        assert hugging <= 0.01 * len(geoms)


def test_question_words_of_one_build_do_not_predict_another_builds_verdicts(benches):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    fit_on, test_on = ([it for it in bench.items() if it.category == "consistency"] for bench in benches)
    words = CountVectorizer(token_pattern=r"[A-Za-z0-9'.%]+", ngram_range=(1, 2))  # numbers are tokens
    model = LogisticRegression(max_iter=1000).fit(words.fit_transform([it.question for it in fit_on]),
                                                  [it.expected_yes for it in fit_on])
    accuracy = model.score(words.transform([it.question for it in test_on]), [it.expected_yes for it in test_on])
    assert len(test_on) >= 300
    assert accuracy <= 0.58, accuracy  # chance is 0.5; a threshold from the wafer's own value gave ~0.6 and more


def test_no_premise_states_a_fact_another_question_of_its_wafer_asks(benches):
    for bench in benches:
        by_wafer = defaultdict(list)
        for item in bench.items():
            by_wafer[item.wafer_id].append(item)
        for wafer, items in by_wafer.items():
            stated = set().union(*(PREMISE_SLOTS[premise_kind(it.question)] for it in items
                                   if it.category == "consistency"))
            asked = {slot for it in items if it.category != "consistency" for slot in it.focus}
            assert not stated & asked, (wafer, stated & asked)


def test_every_wafer_keeps_its_floor_and_its_category_ranges(benches):
    for bench in benches:
        normal = {w.id: w.label_text == "none" for w in bench.wafers()}
        by_wafer = defaultdict(list)
        for item in bench.items():
            by_wafer[item.wafer_id].append(item)
        for wafer, items in by_wafer.items():
            floor = MIN_ITEMS_NORMAL if normal[wafer] else MIN_ITEMS
            assert floor <= len(items) <= ITEMS_RANGE[1], (wafer, len(items))
            assert [it.qa_index for it in items] == list(range(len(items)))
            assert all(it.id == f"{wafer}-q{it.qa_index}" for it in items)
            per = Counter(it.category for it in items)
            for category, (lo, hi) in CATEGORY_RANGES.items():
                assert lo <= per[category] <= hi, (wafer, category, per)


def test_the_manifest_records_each_templates_answers_and_the_filters_counts(benches):
    for bench in benches:
        manifest = bench.manifest
        balance = manifest["answer_balance"]
        assert sum(b["n"] for b in balance.values()) == len(bench.items())
        for template, b in balance.items():
            assert sum(b["answers"].values()) == b["n"]
            assert 0 <= b["entropy_bits"] <= b["max_entropy_bits"] + 1e-9
            if template.startswith("consistency/") and b["n"] >= 40:
                assert b["entropy_bits"] >= 0.9, (template, b)  # a fair coin is 1 bit
        report = manifest["blind_filter"]
        assert report["mode"] == "drop" and report["splits"] == ["val", "test"]
        assert sum(report["dropped_per_category"].values()) == report["dropped"]
        assert sum(report["dropped_per_template"].values()) == report["dropped"]
        assert manifest["counts"]["items"] == len(bench.items())
        assert manifest["counts"]["items_per_category"] == dict(sorted(Counter(it.category
                                                                                for it in bench.items()).items()))


def _records(n_wafers: int, split_of) -> list[ItemRecord]:
    """Wafers of eight drawn items and four spares. Template 'prior/dense' always asks 'dense' (a blind reader
    knows it); the others ask a value of its own per wafer, or a verdict true for half the wafers (a coin: its
    fitted probability stays near 0.5, below the tests' threshold 0.7)."""
    categories = ["defect_type", "spatial", "spatial", "morphology", "morphology", "root_cause", "consistency",
                  "spatial", "morphology", "defect_type", "root_cause", "consistency"]
    records = []
    for w in range(n_wafers):
        for q, category in enumerate(categories):
            known = category == "morphology" and q == 3
            records.append(ItemRecord(
                item_id=f"w{w}-q{q}", wafer_id=f"w{w}", split=split_of(w), category=category,
                template="prior/dense" if known else f"{category}/{q}", question=f"question {q}",
                truth="dense" if known else ("yes" if (w + q) % 2 else "no") if category == "consistency"
                else f"value-{w}-{q}", spare=q >= 8))
    return records


def test_the_filter_drops_what_a_cross_fitted_adversary_knows_on_held_out_splits_and_counts_it():
    records = _records(60, lambda w: "train" if w < 30 else "test")
    result = blind_filter(records, BlindFilterOptions(threshold=0.7), CATEGORY_RANGES, seed=0)
    known = [i for i, r in enumerate(records) if r.template == "prior/dense"]
    assert all(result.keep[i] for i in known if records[i].split == "train")  # train stays as written
    assert not any(result.keep[i] for i in known if records[i].split == "test")
    assert result.report["dropped"] == 30
    assert result.report["dropped_per_template"] == {"prior/dense": 30}
    assert result.report["dropped_per_category"] == {"morphology": 30}
    for w in range(30, 60):  # a spare morphology item takes the dropped one's place: still eight items
        kept = [r for r, k in zip(records, result.keep) if k and r.wafer_id == f"w{w}"]
        assert len(kept) == 8 and Counter(r.category for r in kept)["morphology"] == 2


def test_the_filter_keeps_the_floor_and_flag_mode_only_lists():
    records = [r for r in _records(40, lambda w: "test") if not r.spare]  # no spares to replace dropped items
    dropped = blind_filter(records, BlindFilterOptions(threshold=0.7), CATEGORY_RANGES, seed=0)
    assert dropped.report["kept_back"] == 40 and dropped.report["dropped"] == 0  # a wafer keeps 8
    flagged = blind_filter(records, BlindFilterOptions(mode="flag", threshold=0.7), CATEGORY_RANGES, seed=0)
    assert all(flagged.keep)
    assert flagged.report["flagged"] == sorted(r.item_id for r in records if r.template == "prior/dense")
    assert blind_filter(records, BlindFilterOptions(mode="off"), CATEGORY_RANGES, seed=0).report == {"mode": "off"}


def test_filter_options_are_checked_at_construction():
    with pytest.raises(ValueError, match="threshold"):
        BlindFilterOptions(threshold=0)
    with pytest.raises(ValueError, match="mode"):
        BlindFilterOptions(mode="sometimes")
    with pytest.raises(ValueError, match="extra"):
        BlindFilterOptions(thershold=0.5)
    assert json.loads(BlindFilterOptions().model_dump_json())["splits"] == ["val", "test"]


def _record(template: str, truth: str, split: str = "train") -> ItemRecord:
    category = template.split("/")[0]
    return ItemRecord(item_id=f"{template}-{truth}", wafer_id="w", split=split, category=category,
                      template=template, question="?", truth=truth)


def test_the_chance_floor_pays_the_most_common_train_value_of_each_template_and_nothing_else():
    train = [_record("spatial/0:zone", v) for v in ("zone=edge", "zone=edge", "zone=center")]
    train += [_record("consistency/share", v) for v in ("yes", "yes", "no")]
    test = [_record("spatial/0:zone", "zone=edge", "test"), _record("spatial/0:zone", "zone=center", "test"),
            _record("consistency/share", "yes", "test"), _record("consistency/share", "no", "test"),
            _record("morphology/0:shape", "shape=ring", "test")]  # a template train never asked
    assert chance_floor(train, test, verdict_credit=0.8) == [1.0, 0.0, 0.8, 0.0, 0.0]


def test_the_best_mix_floor_takes_each_categorys_cheapest_templates_within_the_counts():
    floors = {"spatial/0": 0.1, "spatial/1": 0.3, "spatial/2": 0.9, "root_cause/0": 0.5}
    ranges = {"spatial": (1, 2), "root_cause": (1, 1), "consistency": (1, 1)}
    # three items: one spatial (the cheapest), the root cause, a balanced yes/no
    assert best_mix_floor(floors, ranges, (3, 3), 0.4) == pytest.approx((0.1 + 0.5 + 0.4) / 3)
    # a fourth item is worth adding when the next spatial template is cheaper than the mean so far
    assert best_mix_floor(floors, ranges, (3, 4), 0.4) == pytest.approx((0.1 + 0.3 + 0.5 + 0.4) / 4)
    # a category with no template to ask: no mix fits
    assert best_mix_floor({"spatial/0": 0.1}, ranges, (3, 4), 0.4) == 1.0
