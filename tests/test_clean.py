"""Stage 0a cleaning on generated maps: flipped labels are found, caps and hard shares hold, the report is complete."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from pydantic import ValidationError

from wafersage.tasks.synth.clean import CleaningOptions, CleaningReport, clean
from wafersage.tasks.generate.generator import generate_maps
from wafersage.tasks.geometry.measure import measure

PATTERNS = ["Center", "Edge-Ring", "Scratch", "Near-full"]


@pytest.fixture(scope="module")
def maps():
    return list(generate_maps(320, 11, patterns=PATTERNS, size=(40, 40), mixtures=False))


@pytest.fixture(scope="module")
def geoms(maps):
    return [measure(w) for w in maps]


def _flip(maps, share: float, seed: int):
    """Relabel ``share`` of the maps with another of the patterns; returns the maps and the flipped ids."""
    rng = np.random.default_rng(seed)
    flipped = set(rng.choice(len(maps), size=int(share * len(maps)), replace=False).tolist())
    out = []
    for i, wafer in enumerate(maps):
        if i in flipped:
            other = [p for p in PATTERNS if p != wafer.labels[0]]
            wafer = dataclasses.replace(wafer, labels=(other[rng.integers(len(other))],))
        out.append(wafer)
    return out, {maps[i].id for i in flipped}


def test_flipped_labels_are_flagged(maps, geoms):
    noisy, flipped = _flip(maps, 0.1, seed=1)
    report = clean(noisy, geometries=geoms)
    flagged = {f.id for f in report.flagged}
    true_pos = len(flagged & flipped)
    assert true_pos / len(flipped) >= 0.7, f"recall {true_pos}/{len(flipped)}"
    assert true_pos / max(len(flagged), 1) >= 0.7, f"precision {true_pos}/{len(flagged)}"
    assert set(report.kept_ids).isdisjoint(flagged)
    assert report.n_kept + report.n_flagged == report.n_input == len(maps)
    by_reason = {f.reason for f in report.flagged}
    assert "neighbours" in by_reason


def test_a_label_aware_embedding_finds_every_flip(maps, geoms):
    """The ``embed`` hook is used: an embedding from the generator's truth separates classes perfectly."""
    noisy, flipped = _flip(maps, 0.1, seed=2)

    def truth_embedding(wafers, _geoms):
        return np.array([[PATTERNS.index(w.truth[0].pattern), 0.0] for w in wafers]) + np.random.default_rng(
            0).normal(0, 0.01, (len(wafers), 2))

    report = clean(noisy, geometries=geoms, embed=truth_embedding)
    assert {f.id for f in report.flagged if f.reason == "neighbours"} == flipped
    assert report.embedding == "truth_embedding"


def test_cap_and_hard_share(maps, geoms):
    options = CleaningOptions(per_class_cap=30, hard_share=0.2)
    report = clean(maps, options, geometries=geoms)
    hard = set(report.hard_ids)
    assert hard <= set(report.kept_ids)
    for label, summary in report.classes.items():
        assert summary.kept == min(30, summary.total - summary.flagged)
        assert summary.kept_hard == 6
        assert summary.total == summary.kept + summary.flagged + summary.dropped_by_cap
    assert report.kept_ids == [w.id for w in maps if w.id in set(report.kept_ids)]  # input order


def test_small_classes_pass_unchecked_and_disabled_keeps_all(maps, geoms):
    few = maps[:12]
    report = clean(few, geometries=geoms[:12])
    assert report.n_flagged == 0 and report.kept_ids == [w.id for w in few]
    assert not any(s.checked for s in report.classes.values())
    capped = clean(few, CleaningOptions(per_class_cap=1), geometries=geoms[:12])
    assert capped.n_kept == len({w.label_text for w in few}) and capped.hard_ids == []
    off = clean(maps, CleaningOptions(enabled=False))
    assert off.n_kept == len(maps) and not off.enabled


def test_report_round_trips_through_json(maps, geoms, tmp_path):
    noisy, _ = _flip(maps, 0.1, seed=3)
    report = clean(noisy, geometries=geoms)
    path = report.write(tmp_path / "cleaning_report.json")
    again = CleaningReport.model_validate_json(path.read_text())
    assert again == report
    assert all(f.detail for f in again.flagged)
    assert sum(s.flagged for s in again.classes.values()) == again.n_flagged


def test_bad_inputs_are_clear_errors(maps, geoms):
    with pytest.raises(ValueError, match="returned shape"):
        clean(maps, geometries=geoms, embed=lambda w, g: np.zeros(len(w)))
    with pytest.raises(ValueError, match="one geometry per map"):
        clean(maps, geometries=geoms[:5])

    def embed_with_a_hole(wafers, geometries):
        vectors = np.ones((len(wafers), 3))
        vectors[7, 1] = np.nan
        return vectors

    with pytest.raises(ValueError, match=f"NaN or infinite values for 1 maps \\(first: {maps[7].id}\\)"):
        clean(maps, geometries=geoms, embed=embed_with_a_hole)
    with pytest.raises(ValidationError, match="must exceed knn_k"):
        CleaningOptions(knn_k=20, min_class_size=20)
