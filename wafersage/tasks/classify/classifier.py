"""A classical defect-type classifier: scikit-learn trees on rotation-invariant features of a map's geometry.

It is the eye of the ``specialist`` baseline (:mod:`wafersage.models.specialist`) and a predictor column of
``wafersage validate-real --specialist``. It lives in ``tasks`` because it needs nothing but maps and their
geometry (like :mod:`wafersage.tasks.geometry.infer`), so validate-real can use it without tasks importing models.

Features (:func:`map_features`): :func:`wafersage.tasks.geometry.features.features`, plus per radial band the magnitudes of
the first harmonics of the fail rate around the wafer (a ring is strong at harmonic 0 only, a local cluster at
every harmonic), the shape of the four largest regions, counts of long-thin / rim-touching / interior regions, the
geometry rules' own verdict (:func:`~wafersage.tasks.geometry.infer.infer_types`) and the texture. None depends on the
wafer's orientation.

Targets: one column per label in :data:`~wafersage.tasks.maps.wafer.LABELS` (``none`` included), so a map may carry
several patterns as in MixedWM38. Decision (:meth:`DefectClassifier.decide`): the labels with probability >= 0.5;
when the most probable label is one that occurs alone (``Near-full``, ``Random``, ``none``) or nothing reaches 0.5,
the most probable label alone.

:func:`classifier_for_benchmark` trains on a benchmark's *train* split only (``min_train`` > 0, off by default,
tops a small split up with freshly generated maps that never share a grid with the benchmark) and keeps the fitted
model in memory per benchmark hash and settings. Nothing is written to or loaded from disk: a pickled model beside a
shared benchmark could run code when loaded, and a saved forest's node arrays could crash the tree code when
predicting, while training takes about a second on the demo benchmark (~140 train maps; 2,000 maps ~7 s).
"""
from __future__ import annotations

import hashlib
import logging
import sys
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from ..bench.folder import Benchmark
from ..geometry.features import features
from ..geometry.measure import Geometry, frame_of, measure
from ..geometry.infer import infer_types
from ..bench.splits import grid_hash
from ..maps.wafer import FAIL, LABELS, OFF, WaferMap

log = logging.getLogger(__name__)

BAND_EDGES = (0.0, 0.35, 0.6, 0.8, 0.9, np.inf)
HARMONICS = 4
TOP_REGIONS = 4
SOLO_LABELS = frozenset({"Near-full", "Random", "none"})
TEXTURES = ("clean", "scattered", "mixed", "clustered")
DECISION_THRESHOLD = 0.5


class ClassifierError(ValueError):
    """The classifier cannot be trained or loaded; the message names the benchmark or file and the fix."""


def _angular_spectra(grid: np.ndarray) -> list[float]:
    """Per radial band, |FFT| of the fail rate over 12 clock sectors at harmonics 0..HARMONICS-1."""
    x, y, r, on, *_ = frame_of(grid != OFF)
    band = np.searchsorted(BAND_EDGES, r[on], side="right") - 1
    sector = np.rint(np.degrees(np.arctan2(x[on], y[on])) % 360.0 / 30.0).astype(int) % 12
    cell = band * 12 + sector
    n_cells = (len(BAND_EDGES) - 1) * 12
    dies = np.bincount(cell, minlength=n_cells)
    fails = np.bincount(cell[grid[on] == FAIL], minlength=n_cells)
    rate = (fails / np.maximum(dies, 1)).reshape(-1, 12)
    spectrum = np.abs(np.fft.rfft(rate, axis=1))[:, :HARMONICS] / 12.0
    return spectrum.ravel().tolist()


def _region_features(geom: Geometry) -> list[float]:
    out: list[float] = []
    for k in range(TOP_REGIONS):
        if k < len(geom.regions):
            g = geom.regions[k]
            out += [g.area_fraction, g.r, min(g.elongation, 20.0) / 20.0, g.angular_span_deg / 360.0, *g.extent_r]
        else:
            out += [0.0] * 6
    long_thin = sum(g.elongation >= 3.5 and g.area >= 6 for g in geom.regions)
    rim = sum(g.extent_r[1] >= 0.9 and g.angular_span_deg <= 200 for g in geom.regions if g.area_fraction >= 0.006)
    interior = sum(g.extent_r[1] < 0.9 and g.r > 0.22 for g in geom.regions if g.area_fraction >= 0.006)
    longest = max((min(g.elongation, 20.0) for g in geom.regions if g.area >= 6), default=0.0) / 20.0
    return out + [long_thin / 5.0, rim / 5.0, interior / 5.0, longest]


def map_features(grid: np.ndarray, geom: Geometry) -> np.ndarray:
    """The classifier's feature vector of one map (see the module docstring)."""
    rules = set(infer_types(geom))
    return np.concatenate([
        features(geom), _angular_spectra(np.asarray(grid)), _region_features(geom),
        [float(label in rules) for label in LABELS], [float(geom.texture == t) for t in TEXTURES],
    ])


def _targets(maps: Sequence[WaferMap]) -> np.ndarray:
    return np.array([[label in (w.labels or ("none",)) for label in LABELS] for w in maps], dtype=np.int8)


class DefectClassifier:
    """A fitted multi-label forest over :data:`LABELS`; build with :meth:`fit` or :func:`classifier_for_benchmark`."""

    def __init__(self, forest: RandomForestClassifier, trained_on: dict[str, int]):
        self.forest = forest
        self.trained_on = trained_on  # e.g. {"benchmark_train": 228, "generated": 772}
        self.code = code_fingerprint()

    @classmethod
    def fit(cls, maps: Iterable[WaferMap], *, seed: int = 0, n_estimators: int = 200,
            trained_on: dict[str, int] | None = None) -> "DefectClassifier":
        """Train on labelled maps (their ``labels``; an unlabeled map is an error naming it)."""
        maps = list(maps)
        unlabeled = [w.id for w in maps if not w.labels]
        if unlabeled:
            raise ClassifierError(f"maps {unlabeled[:5]} have no labels; the classifier trains on labelled maps only")
        if len(maps) < 2:
            raise ClassifierError(f"{len(maps)} labelled map(s) are too few to train the classifier; give at least 2")
        x = np.stack([map_features(w.grid, measure(w)) for w in maps])
        forest = RandomForestClassifier(n_estimators=n_estimators, min_samples_leaf=1, max_features="sqrt",
                                        class_weight="balanced_subsample", random_state=seed, n_jobs=1)
        forest.fit(x, _targets(maps))
        return cls(forest, trained_on or {"maps": len(maps)})

    def probabilities(self, grids: Sequence[np.ndarray], geoms: Sequence[Geometry]) -> list[dict[str, float]]:
        """Probability of each label, per map (one forest call for the batch)."""
        if not grids:
            return []
        x = np.stack([map_features(grid, geom) for grid, geom in zip(grids, geoms)])
        per_label = [_positive(proba, classes) for proba, classes
                     in zip(self.forest.predict_proba(x), self.forest.classes_)]
        return [{label: float(p[i]) for label, p in zip(LABELS, per_label)} for i in range(len(grids))]

    @staticmethod
    def decide(probabilities: dict[str, float]) -> list[str]:
        """Label set from probabilities (see the module docstring), in canonical order."""
        best = max(probabilities, key=probabilities.__getitem__)
        if best in SOLO_LABELS or probabilities[best] < DECISION_THRESHOLD:
            return [best]
        return [label for label in LABELS
                if probabilities[label] >= DECISION_THRESHOLD and label not in SOLO_LABELS]

    def predict(self, wafer: WaferMap, geom: Geometry | None = None) -> list[str]:
        """Defect types of one map from its grid alone (a validate-real predictor: it never reads labels)."""
        return self.decide(self.probabilities([wafer.grid], [geom if geom is not None else measure(wafer)])[0])


def _positive(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Probability of class 1 of one output, per map (a label absent from training has only class 0)."""
    hit = np.flatnonzero(classes == 1)
    return proba[:, hit[0]] if hit.size else np.zeros(len(proba))


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 (12 hex digits) of the code features come from (recorded with each fitted classifier)."""
    from ..geometry import features, infer, measure

    digest = hashlib.sha256()
    for module in (measure, features, infer, sys.modules[__name__]):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:12]


def top_up_maps(bench: Benchmark, count: int, seen: set[str]) -> list[WaferMap]:
    """``count`` generated maps like the benchmark's (grid size, mixtures), none sharing a grid with it."""
    from ..generate.generator import generate_maps

    source = bench.manifest.get("config", {}).get("source", {})
    size = source.get("size") if source.get("kind") == "generated" else None
    mixtures = bool(source.get("mixtures", True))
    seed = int.from_bytes(hashlib.sha256(f"specialist-top-up|{bench.hash}".encode()).digest()[:4], "big")
    maps = generate_maps(count + 64, seed, size=tuple(size) if size else None, mixtures=mixtures)
    fresh = [w for w in maps if grid_hash(w.grid) not in seen]
    return fresh[:count]


def classifier_for_benchmark(bench_dir: str | Path, *, min_train: int = 0, seed: int = 0,
                             n_estimators: int = 200) -> DefectClassifier:
    """The classifier trained on ``bench_dir``'s train split (memoised in this process per benchmark hash and
    settings). ``min_train`` > 0 (off by default) tops a smaller train split up to that many maps with freshly
    generated ones (never sharing a grid with the benchmark)."""
    bench = Benchmark.load(bench_dir, verify=False)
    return _trained(str(bench.root.resolve()), bench.hash, min_train, seed, n_estimators)


@lru_cache(maxsize=8)
def _trained(root: str, bench_hash: str, min_train: int, seed: int, n_estimators: int) -> DefectClassifier:
    bench = Benchmark.load(root, verify=False)
    wafers = list(bench.wafers())
    train = [w for w in wafers if w.split == "train" and w.labels]
    extra = []
    if len(train) < min_train:
        extra = top_up_maps(bench, min_train - len(train), {grid_hash(w.grid) for w in wafers})
    if not train and not extra:
        raise ClassifierError(f"{bench.root}: no labelled train wafers and min_train={min_train}; build the "
                              "benchmark with splits.train > 0 or allow generated maps (min_train > 0)")
    log.info("training the specialist classifier on %d train wafers of %s and %d generated maps",
             len(train), bench.root, len(extra))
    return DefectClassifier.fit(train + extra, seed=seed, n_estimators=n_estimators,
                                trained_on={"benchmark_train": len(train), "generated": len(extra)})
