"""The specialist's classifier: trained per process (never unpickled), top-up maps disjoint from the benchmark,
validate-real column."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.tasks.classify import classifier as sc
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.bench.splits import grid_hash
from wafersage.tasks.synth.build import SynthConfig, build_benchmark

TRAIN_TEST = {
    "name": "classifier-test", "seed": 4,
    "source": {"kind": "generated", "n": 114, "size": [30, 30], "mixtures": True, "balanced": True},
    "cleaning": {"enabled": False}, "splits": {"train": 0.6, "val": 0.0, "test": 0.4}, "image_size": 32,
}
#: every wafer in the test split (a user benchmark made for evaluation only), so nothing to train on inside it
TEST_ONLY = TRAIN_TEST | {"name": "test-only", "splits": {"train": 0.0, "val": 0.0, "test": 1.0},
                          "source": TRAIN_TEST["source"] | {"n": 38}}


@pytest.fixture(scope="module")
def benches(tmp_path_factory) -> dict[str, Benchmark]:
    root = tmp_path_factory.mktemp("clf")
    return {name: Benchmark.load(build_benchmark(SynthConfig.model_validate(cfg), root / name, progress=False))
            for name, cfg in (("train_test", TRAIN_TEST), ("test_only", TEST_ONLY))}


def test_trained_once_per_process_and_never_loaded_from_a_pickle_beside_the_benchmark(benches, tmp_path,
                                                                                     monkeypatch):
    bench = benches["train_test"]
    marker = tmp_path / "pwned"
    # where the old versions cached the fitted classifier (joblib pickles), a shared tarball can plant code
    for folder in (bench.root.parent / ".wafersage-cache", tmp_path / "cache"):
        folder.mkdir(exist_ok=True)
        for name in ("specialist-x.joblib", f"specialist-{bench.hash[:20]}-{sc.code_fingerprint()}-m0-s0-n20.joblib"):
            (folder / name).write_bytes(pickle.dumps(_Planted(marker)))
    monkeypatch.setenv("WAFERSAGE_CACHE_DIR", str(tmp_path / "cache"))
    sc._trained.cache_clear()
    first = sc.classifier_for_benchmark(bench.root, min_train=0, n_estimators=20)
    assert first.trained_on == {"benchmark_train": sum(1 for _ in bench.wafers("train")), "generated": 0}
    assert not marker.exists()

    def no_training(*args, **kwargs):
        raise AssertionError("retrained in the same process")

    monkeypatch.setattr(sc.DefectClassifier, "fit", no_training)
    assert sc.classifier_for_benchmark(bench.root, min_train=0, n_estimators=20) is first
    assert not marker.exists()
    assert len(list((bench.root.parent / ".wafersage-cache").iterdir())) == 2  # and nothing was written there
    pickle.loads((tmp_path / "cache" / "specialist-x.joblib").read_bytes())  # the planted file does run code
    assert marker.exists()


class _Planted:
    """A pickle that creates ``marker`` when loaded: what a malicious cache file would do (with worse code)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_benchmark_without_train_wafers_trains_on_disjoint_generated_maps(benches, tmp_path):
    bench = benches["test_only"]
    with pytest.raises(sc.ClassifierError, match="no labelled train wafers"):
        sc.classifier_for_benchmark(bench.root, min_train=0)
    classifier = sc.classifier_for_benchmark(bench.root, min_train=80, n_estimators=20)
    assert classifier.trained_on == {"benchmark_train": 0, "generated": 80}
    own = {grid_hash(w.grid) for w in bench.wafers()}
    extra = sc.top_up_maps(bench, 20, own)
    assert len(extra) == 20 and not own & {grid_hash(w.grid) for w in extra}
    assert all(w.shape == (30, 30) for w in extra)  # the benchmark's grid size
    skipped = {grid_hash(extra[0].grid), grid_hash(extra[3].grid)}
    again = sc.top_up_maps(bench, 20, own | skipped)
    assert len(again) == 20 and not skipped & {grid_hash(w.grid) for w in again}


def test_decision_keeps_solo_labels_alone_and_mixtures_together():
    probabilities = dict.fromkeys(sc.LABELS, 0.0)
    assert sc.DefectClassifier.decide(probabilities | {"Center": 0.7, "Scratch": 0.6, "Random": 0.55}) == \
        ["Center", "Scratch"]
    assert sc.DefectClassifier.decide(probabilities | {"Random": 0.8, "Scratch": 0.6}) == ["Random"]
    assert sc.DefectClassifier.decide(probabilities | {"Loc": 0.3, "none": 0.2}) == ["Loc"]


def test_validate_real_gets_a_specialist_column(benches, shared_data, tmp_path):
    out = tmp_path / "table.json"
    result = CliRunner().invoke(main, ["validate-real", str(shared_data / "mixedwm38_30maps.npz"), "--format",
                                       "mixedwm38", "--specialist", str(benches["train_test"].root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "specialist" in result.output
    table = json.loads(out.read_text())
    assert table["predictors"] == ["geometry", "specialist"]
    overall = table["rows"][-1]["scores"]["specialist"]
    assert table["rows"][-1]["n"] == 30 and overall["exact"] <= overall["contained"] <= 30


def test_validate_real_names_a_folder_that_is_not_a_benchmark(shared_data, tmp_path):
    result = CliRunner().invoke(main, ["validate-real", str(shared_data / "mixedwm38_30maps.npz"), "--format",
                                       "mixedwm38", "--specialist", str(tmp_path)])
    assert result.exit_code != 0 and "no manifest.json" in result.output and str(tmp_path) in result.output
