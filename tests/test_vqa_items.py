"""Stage 2: VQA items from rubrics — counts, leak check, answers agree with rubrics, difficulty rules, model writer."""
from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest

from wafersage.tasks.blindness.population import MARGIN, population_thresholds
from wafersage.tasks.synth.chunks import survey_rows
from wafersage.tasks.synth.facts import is_subtle
from wafersage.tasks.synth.rubric import build_rubric
from wafersage.tasks.synth.vqa import CATEGORY_RANGES, ITEMS_RANGE, TEMPLATES, check_question, difficulty_of, make_items
from wafersage.tasks.synth.vqa_model import ModelVQAWriter
from wafersage.tasks.synth.vocab import NUMBER_WORDS
from wafersage.tasks.maps.wafer import LABELS


@pytest.fixture(scope="module")
def thresholds(synth_stage_maps):
    """The premise thresholds a build of these maps draws from their population."""
    return population_thresholds(**survey_rows(*synth_stage_maps))


@pytest.fixture(scope="module")
def written(synth_stage_maps, thresholds):
    maps, geoms = synth_stage_maps
    rng = np.random.default_rng(11)
    out = []
    for wafer, geom in zip(maps, geoms):
        rubric = build_rubric(wafer, geom)
        out.append((wafer, geom, rubric, make_items(wafer, geom, rubric, rng=rng, image=f"images/{wafer.id}.png",
                                                    split="test", thresholds=thresholds)))
    return out


def test_every_pattern_and_mixtures_are_covered(written):
    label_sets = Counter(wafer.labels for wafer, *_ in written)
    assert {(label,) for label in LABELS} <= set(label_sets)
    assert sum(n for labels, n in label_sets.items() if len(labels) >= 2) >= 100


def test_no_question_names_or_hints_any_defect_type(written):
    for wafer, _, _, items in written:
        for item in items:
            check_question(item.question, LABELS)  # stricter than the wafer's own labels: no pattern word at all


def test_every_template_phrasing_is_free_of_pattern_words():
    for template in TEMPLATES:
        for question in template.phrasings:
            check_question(question, LABELS)


@pytest.mark.parametrize("question,label,word", [
    ("Is there a scratch on this wafer?", "Scratch", "scratch"),
    ("Where is the ring of failing dies?", "Edge-Ring", "ring"),
    ("Which dies near the edges fail?", "Edge-Loc", "edges"),
    ("Is the failure near the Center?", "Center", "Center"),
    ("Does the map look near full?", "Near-full", "near full"),
    ("Is this a normal wafer?", "none", "normal"),
])
def test_check_question_names_the_leaked_word(question, label, word):
    with pytest.raises(ValueError, match=f"{label!r} with the word {word!r}"):
        check_question(question, [label])
    check_question("At which clock position are most failing dies?", LABELS)


def test_counts_ids_and_fields(written):
    totals = Counter()
    for wafer, _, rubric, items in written:
        assert ITEMS_RANGE[0] <= len(items) <= ITEMS_RANGE[1]
        per = Counter(item.category for item in items)
        for category, (lo, hi) in CATEGORY_RANGES.items():
            assert lo <= per[category] <= hi, (wafer.id, category, per)
        assert [item.qa_index for item in items] == list(range(len(items)))
        assert all(item.id == f"{wafer.id}-q{item.qa_index}" for item in items)
        assert len({item.question for item in items}) == len(items)
        for item in items:
            assert item.image == f"images/{wafer.id}.png" and item.split == "test"
            assert item.labels == list(wafer.labels)
            expected_dim = {"defect_type": "defect_type", "consistency": item.dimension}.get(item.category,
                                                                                           item.category)
            assert item.dimension == expected_dim
            assert (item.expected_yes is not None) == (item.category == "consistency")
        totals[len(items)] += 1
    assert set(totals) == {8, 9, 10}  # the count varies with the rng


def test_answers_state_must_hit_terms_and_no_must_avoid(written):
    for wafer, _, rubric, items in written:
        for item in items:
            answer = item.answer.lower()
            assert 1 <= answer.count(". ") + 1 <= 4 and len(item.answer) < 600, item.answer
            if item.category == "defect_type":
                for label in rubric.defect_types:
                    assert label.lower() in answer, (label, item.answer)
                continue
            dim = rubric.dimension(item.dimension)
            for term in dim.must_hit:
                assert any(v.lower() in answer for v in term.variants), (wafer.id, term.term, item.answer)
            for avoid in dim.must_avoid:
                assert avoid.lower() not in answer, (wafer.id, avoid, item.answer)


def _threshold(question: str) -> tuple[str, float]:
    match = re.search(r"(more|fewer) than ([0-9.]+)", question)
    return match.group(1), float(match.group(2))


def _kind(question: str) -> str:
    for word, kind in (("% of the dies", "share"), ("isolated", "texture"), ("separate groups", "regions"),
                       ("radial zone", "zone"), ("o'clock", "clock"), ("quadrant", "quadrant"), ("side", "symmetry")):
        if word in question:
            return kind
    raise AssertionError(f"unknown premise kind: {question}")


def test_consistency_premises_are_balanced_and_answers_agree(written, thresholds):
    truths = [item.expected_yes for *_, items in written for item in items if item.category == "consistency"]
    assert 0.4 <= sum(truths) / len(truths) <= 0.6
    by_kind: dict[str, list[bool]] = {}
    hugging = 0
    for wafer, geom, rubric, items in written:
        checks = [item for item in items if item.category == "consistency"]
        assert len({_kind(item.question) for item in checks}) == len(checks)  # one item per kind and wafer
        for item in checks:
            kind = _kind(item.question)
            by_kind.setdefault(kind, []).append(item.expected_yes)
            assert item.answer.startswith("Yes." if item.expected_yes else "No.")
            if kind == "share":
                word, threshold = _threshold(item.question)
                share = geom.fail_ratio * 100
                assert (share > threshold if word == "more" else share < threshold) == item.expected_yes
                assert threshold == thresholds.share  # the population's, the same for every wafer
                hugging += max(share, threshold) < MARGIN * min(share, threshold)
            if kind == "clock":
                found = re.search(r"(\d+|[a-z]+) o'clock", item.question).group(1)
                clock = int(found) if found.isdigit() else (NUMBER_WORDS.index(found) or 12)
                assert (clock in rubric.spatial.clock_positions) == item.expected_yes
    assert {"share", "texture", "regions", "zone", "clock", "symmetry"} <= set(by_kind)  # quadrants are rare
    total = sum(len(v) for v in by_kind.values())
    assert len(by_kind["share"]) <= total / 2
    # only a map that decides no premise kind clearly is asked its share within the margin (2 of these 300)
    assert hugging <= 0.01 * len(written)
    for kind, values in by_kind.items():
        if len(values) >= 20:
            assert 0.3 <= sum(values) / len(values) <= 0.7, (kind, sum(values), len(values))


def test_question_words_alone_do_not_give_the_verdict_away(synth_stage_maps, thresholds):
    """A bag-of-words logistic regression on the question, trained on 200 wafers, tested on 100 others."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    maps, geoms = synth_stage_maps
    rng = np.random.default_rng(3)
    checks = [[it for it in make_items(w, g, build_rubric(w, g), rng=rng, image="i", split="test", thresholds=thresholds)
               if it.category == "consistency"] for w, g in zip(maps, geoms)]
    train = [it for items in checks[:200] for it in items]
    test = [it for items in checks[200:] for it in items]
    words = CountVectorizer(token_pattern=r"[A-Za-z0-9'.]+", ngram_range=(1, 2))
    model = LogisticRegression(max_iter=1000).fit(words.fit_transform([it.question for it in train]),
                                                  [it.expected_yes for it in train])
    accuracy = model.score(words.transform([it.question for it in test]), [it.expected_yes for it in test])
    assert accuracy <= 0.62, accuracy


CLOCK_QUESTIONS = {q for t in TEMPLATES if t.targets == ("clock",) for q in t.phrasings}


def test_targets_are_must_hit_terms_the_answer_names(written):
    asked = Counter()
    for wafer, _, rubric, items in written:
        for item in items:
            if item.category == "defect_type":
                assert item.targets == []
                continue
            dim = rubric.dimension(item.dimension)
            names = {t.term: t for t in dim.must_hit}
            assert item.targets and set(item.targets) <= set(names), (item.question, item.targets)
            for target in item.targets:
                assert any(v.lower() in item.answer.lower() for v in names[target].variants), (target, item.answer)
            if item.question in CLOCK_QUESTIONS:
                assert all("o'clock" in t for t in item.targets)
                asked["clock"] += 1
            if item.question == "Is the failure dense or sparse?":
                assert item.targets == [rubric.morphology.density]
                asked["density"] += 1
    assert asked["clock"] >= 20 and asked["density"] >= 20, asked


def test_difficulty_rule_table():
    assert difficulty_of(1, False, False) == "easy"
    assert difficulty_of(0, False, False) == "easy"  # a normal wafer
    assert difficulty_of(1, False, True) == "medium"
    assert difficulty_of(2, False, False) == "medium"
    assert difficulty_of(1, True, False) == "medium"
    assert difficulty_of(2, False, True) == "hard"
    assert difficulty_of(1, True, True) == "hard"
    assert difficulty_of(3, False, False) == "hard"


def test_items_follow_the_difficulty_rules(written):
    multi = {q: t.multi_fact for t in TEMPLATES for q in t.phrasings}
    seen = Counter()
    for wafer, geom, rubric, items in written:
        n_patterns = len([t for t in rubric.defect_types if t != "none"])
        subtle = is_subtle(geom, tuple(rubric.defect_types))
        for item in items:
            expected = difficulty_of(n_patterns, subtle, multi.get(item.question, False))
            assert item.difficulty == expected, (item.id, item.question)
            seen[item.difficulty] += 1
            if len(wafer.labels) >= 3:
                assert item.difficulty == "hard"
            if n_patterns <= 1 and not subtle and not multi.get(item.question, False):
                assert item.difficulty == "easy"
    assert min(seen.values()) >= 100, seen


def test_phrasing_varies_and_is_reproducible(synth_stage_maps):
    maps, geoms = synth_stage_maps
    wafer, geom = maps[3], geoms[3]
    rubric = build_rubric(wafer, geom)
    runs = [[it.question for it in make_items(wafer, geom, rubric, rng=np.random.default_rng(s), image="i.png",
                                              split="train")] for s in (1, 1, 2, 3, 4)]
    assert runs[0] == runs[1]
    assert len({tuple(r) for r in runs}) >= 3
    rng = np.random.default_rng(0)
    questions = {it.question for w, g in zip(maps[:60], geoms[:60])
                 for it in make_items(w, g, build_rubric(w, g), rng=rng, image="i", split="val")
                 if it.category == "spatial"}
    assert len(questions) >= 10


# --- the model-backed writer, driven by a plain Python callable ------------------------------------------------

def _pairs(items) -> list[dict]:
    return [{"question": it.question, "answer": it.answer, "category": it.category, "difficulty": it.difficulty,
             "expected_yes": it.expected_yes, "dimension": it.dimension} for it in items]


def test_model_writer_accepts_valid_pairs(written):
    wafer, _, rubric, items = written[0]
    prompts = []
    writer = ModelVQAWriter(lambda p: prompts.append(p) or json.dumps(_pairs(items)))
    result = writer.write(rubric, image="images/x.png", split="val", labels=list(wafer.labels))
    assert result.status == "ok" and result.attempts == 1
    assert [it.question for it in result.items] == [it.question for it in items]
    assert result.items[0].id == f"{wafer.id}-q0" and result.items[0].split == "val"
    assert "must_avoid" in prompts[0] and wafer.id in prompts[0]


def test_model_writer_retries_a_leaking_question_then_records_failure(written):
    wafer, _, rubric, items = written[0]
    leaky = _pairs(items)
    leaky[0]["question"] = f"Is this a {rubric.defect_types[0]} pattern?"
    prompts = []
    result = ModelVQAWriter(lambda p: prompts.append(p) or json.dumps(leaky), max_retries=1).write(
        rubric, image="i.png", split="test")
    assert result.status == "failed" and result.items == [] and result.attempts == 2
    assert "hints the defect type" in result.reason and "hints the defect type" in prompts[1]


@pytest.mark.parametrize("mutate,reason", [
    (lambda pairs: pairs[:5], "5 pairs"),
    (lambda pairs: [dict(p, category="trivia") if i == 0 else p for i, p in enumerate(pairs)], "trivia"),
    (lambda pairs: [dict(p, expected_yes=None) if p["category"] == "consistency" else p for p in pairs],
     "expected_yes"),
    (lambda pairs: [dict(p, difficulty="extreme") for p in pairs], "difficulty"),
])
def test_model_writer_validation_errors(written, mutate, reason):
    _, _, rubric, items = written[0]
    bad = mutate(_pairs(items))
    result = ModelVQAWriter(lambda p: json.dumps(bad), max_retries=0).write(rubric, image="i.png", split="test")
    assert result.status == "failed" and reason in result.reason
