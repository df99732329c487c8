"""Stage 0a: clustering-based cleaning of labelled wafer maps.

Each map is embedded (by default the standardised geometry :func:`~wafersage.tasks.geometry.features.features`; pass
``embed`` for a learned embedding such as a ViT's), clustered inside its class with K-Means (k chosen per class by
silhouette), and flagged when

* ``neighbours`` — most of its k nearest neighbours over ALL maps carry other labels (its label is probably
  wrong; agreement of two label sets is their Jaccard overlap, so related mixtures do not contradict), or
* ``outlier`` — it sits far from every cluster centre of its own class (farther than ``outlier_factor`` times the
  class's ``outlier_quantile`` distance).

The class of a multi-label map is its label set string (``Center+Scratch``). Unflagged maps are then sampled per
class up to ``per_class_cap``: a ``hard_share`` of the places goes to the maps farthest from their cluster centre
(hard but plausible), the rest to typical maps taken round-robin over the class's clusters, nearest centre first.
Classes smaller than ``min_class_size`` are too small to judge and pass through unchecked (the report says so).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sklearn import config_context
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..geometry.features import features
from ..geometry.measure import Geometry, measure_many
from ..maps.wafer import WaferMap

#: An embedding: maps (and their measured geometry) -> one row per map.
Embedder = Callable[[Sequence[WaferMap], Sequence[Geometry]], np.ndarray]
#: Like ``map``: a module-level function over tasks, results in order (a build passes its worker pool's).
Mapper = Callable[[Callable, Iterable], Iterable]
Reason = Literal["neighbours", "outlier"]
UNLABELED = "unlabeled"
EXAMPLES = 5


class CleaningOptions(BaseModel):
    """How Stage 0a judges and samples maps."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, description="Run cleaning at all; false keeps every map (the report says so).")
    knn_k: int = Field(10, ge=1, description="Neighbours consulted per map for the label-disagreement check.")
    knn_disagree: float = Field(
        0.7, gt=0, lt=1,
        description="Flag a map when its neighbours' label disagreement (1 - mean Jaccard overlap of label sets) "
                    "exceeds this; 0.7 kept precision and recall >= 0.8 on generated single-pattern maps with "
                    "10% flipped labels and flagged < 1% of correct mixture maps (benchmarks/bench_cleaning.py).")
    max_clusters: int = Field(6, ge=1, description="Most K-Means clusters tried inside one class.")
    min_cluster_size: int = Field(15, ge=2, description="Fewest maps per cluster when choosing k (k <= n / this).")
    outlier_quantile: float = Field(
        0.9, gt=0, lt=1, description="Quantile of the class's distances to its nearest cluster centre ...")
    outlier_factor: float = Field(
        2.0, ge=1, description="... times this factor is the distance beyond which a map is an outlier.")
    min_class_size: int = Field(
        20, ge=2, description="Classes with fewer maps are not judged (too few to cluster or vote on).")
    per_class_cap: int | None = Field(
        None, ge=1, description="Keep at most this many maps per class (balanced sampling); null keeps all.")
    hard_share: float = Field(
        0.3, ge=0, le=1, description="Share of a capped class's places given to far-from-centre (hard) maps.")
    seed: int = Field(0, description="Seed of K-Means and silhouette sampling.")

    @model_validator(mode="after")
    def _consistent(self) -> "CleaningOptions":
        if self.min_class_size <= self.knn_k:
            raise ValueError(
                f"min_class_size ({self.min_class_size}) must exceed knn_k ({self.knn_k}): a smaller class cannot "
                "hold a majority of any map's neighbours; raise min_class_size or lower knn_k")
        return self


class FlaggedMap(BaseModel):
    """One map the cleaning removed, and why."""

    id: str
    label: str
    reason: Reason
    detail: str


class ClassSummary(BaseModel):
    """What cleaning did to one class."""

    label: str
    total: int
    checked: bool = Field(description="False when the class was too small to judge and passed through.")
    n_clusters: int
    flagged: int
    reasons: dict[str, int]
    kept: int
    kept_hard: int
    dropped_by_cap: int
    example_kept: list[str]
    example_flagged: list[str]


class CleaningReport(BaseModel):
    """The result of Stage 0a, written to ``cleaning_report.json``."""

    enabled: bool
    embedding: str
    options: CleaningOptions
    n_input: int
    n_kept: int
    n_flagged: int
    classes: dict[str, ClassSummary]
    flagged: list[FlaggedMap]
    kept_ids: list[str] = Field(description="Kept maps in input order.")
    hard_ids: list[str] = Field(description="Kept maps chosen as far-from-centre (hard) examples.")

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return path


def class_of(wafer: WaferMap) -> str:
    """The cleaning class: the label set string (``Center+Scratch``), ``none`` or ``unlabeled``."""
    return wafer.label_text


def geometry_embedding(wafers: Sequence[WaferMap], geoms: Sequence[Geometry]) -> np.ndarray:
    """The default embedding: geometry feature vectors (standardised later by :func:`clean`)."""
    return np.stack([features(g) for g in geoms]) if geoms else np.zeros((0, 0))


def clean(
    wafers: Sequence[WaferMap],
    options: CleaningOptions | None = None,
    *,
    geometries: Sequence[Geometry] | None = None,
    embed: Embedder | None = None,
) -> CleaningReport:
    """Judge and sample ``wafers``; returns the report (``report.kept_ids`` are the maps to keep)."""
    options = options or CleaningOptions()
    embedder = embed or geometry_embedding
    name = getattr(embedder, "__name__", type(embedder).__name__)
    classes = [class_of(w) for w in wafers]
    ids = [w.id for w in wafers]
    if not options.enabled or not wafers:
        return clean_embedded(ids, classes, np.zeros((len(ids), 0)), options, name)
    geoms = list(geometries) if geometries is not None else measure_many(wafers)
    if len(geoms) != len(wafers):
        raise ValueError(f"clean: got {len(wafers)} maps but {len(geoms)} geometries; pass one geometry per map")
    return clean_embedded(ids, classes, embedder(wafers, geoms), options, name)


def clean_embedded(ids: list[str], classes: list[str], vectors: np.ndarray, options: CleaningOptions,
                   name: str = geometry_embedding.__name__, map_tasks: Mapper = map) -> CleaningReport:
    """:func:`clean` on maps already embedded: their ids, classes (:func:`class_of`) and one row of ``vectors``
    each (``name``: the embedding's, for the report). A build's workers embed the maps; this judges them all, its
    classes' clusterings through ``map_tasks`` (in processes that limit their thread pools to 1 thread, as here)."""
    if not options.enabled or not ids:
        return _report(options, name, ids, classes, flags={}, summaries_extra={}, kept=ids, hard=[])
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise ValueError(f"clean: embedding {name} returned shape {vectors.shape}; expected ({len(ids)}, d)")
    not_finite = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if not_finite.size:
        raise ValueError(f"clean: embedding {name} gave NaN or infinite values for {not_finite.size} maps (first: "
                         f"{ids[not_finite[0]]}); fix the embedder or drop those maps")
    # many small fits: threads only contend (>10x slower on 2 busy cores), and 1 thread reproduces; the inputs are
    # checked above, so scikit-learn's per-call validation (a third of the time) is skipped
    with threadpool_limits(1), config_context(assume_finite=True, skip_parameter_validation=True):
        return _judge(ids, classes, vectors, options, name, map_tasks)


def _judge(ids: list[str], classes: list[str], vectors: np.ndarray, options: CleaningOptions, name: str,
           map_tasks: Mapper) -> CleaningReport:
    vectors = StandardScaler().fit_transform(vectors)
    label_arr = np.asarray(classes, dtype=object)
    members_of = {label: np.flatnonzero(label_arr == label) for label in dict.fromkeys(classes)}
    judged = [label for label, members in members_of.items()
              if label != UNLABELED and members.size >= options.min_class_size]
    clusterings = map_tasks(cluster_class, [(vectors[members_of[label]], options) for label in judged])
    flags = _neighbour_flags(vectors, label_arr, options)
    clustered = dict(zip(judged, clusterings))
    kept, hard, extra = [], [], {}
    for label, members in members_of.items():
        if label not in clustered:
            extra[label] = (False, 0)
            chosen, chosen_hard = members[:options.per_class_cap].tolist(), []  # no distances: first ones, none hard
        else:
            centre_dist, cluster = clustered[label]
            threshold = options.outlier_factor * np.quantile(centre_dist, options.outlier_quantile)
            for pos, idx in enumerate(members):
                if centre_dist[pos] > threshold and idx not in flags:
                    flags[int(idx)] = ("outlier", f"distance {centre_dist[pos]:.2f} to nearest {label} centre "
                                             f"> {threshold:.2f}")
            ok = np.array([idx not in flags for idx in members], dtype=bool)
            chosen, chosen_hard = _cap(members[ok], centre_dist[ok], cluster[ok], options)
            extra[label] = (True, int(cluster.max()) + 1)
        kept.extend(chosen)
        hard.extend(chosen_hard)
    keep_order = sorted(kept)
    return _report(options, name, ids, classes, flags=flags, summaries_extra=extra,
                   kept=[ids[i] for i in keep_order], hard=[ids[i] for i in sorted(hard)])


def _neighbour_flags(vectors: np.ndarray, labels: np.ndarray, options: CleaningOptions) -> dict[int, tuple[str, str]]:
    """Maps whose k nearest neighbours mostly carry other labels (only classes big enough to hold a majority).

    A neighbour's agreement is the Jaccard overlap of the two label sets: 1 for the same class, 0 for a
    different single label, 0.5 for ``Center`` next to ``Center+Scratch`` — mixtures that share most of their
    types are not counted as contradicting each other.
    """
    sizes = Counter(labels.tolist())
    judged = np.array([lbl != UNLABELED and sizes[lbl] >= options.min_class_size for lbl in labels])
    k = min(options.knn_k, len(labels) - 1)
    if k < 1 or not judged.any():
        return {}
    _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(vectors).kneighbors(vectors)
    sets = {lbl: frozenset(lbl.split("+")) for lbl in sizes}
    flags = {}
    for idx in np.flatnonzero(judged):
        own = sets[labels[idx]]
        others = [labels[n] for n in neighbours[idx] if n != idx][:k]
        agreement = float(np.mean([len(own & sets[o]) / len(own | sets[o]) for o in others]))
        if 1.0 - agreement > options.knn_disagree:
            top, count = Counter(others).most_common(1)[0]
            flags[int(idx)] = ("neighbours", f"label agreement with its {k} nearest maps {agreement:.2f} "
                                             f"(most common neighbour class: {top}, {count}/{k})")
    return flags


def cluster_class(task: tuple[np.ndarray, CleaningOptions]) -> tuple[np.ndarray, np.ndarray]:
    """K-Means inside one class (its standardised vectors, the options) with k by silhouette; returns each map's
    distance to its centre and its cluster."""
    vectors, options = task
    n = vectors.shape[0]
    best_model, best_score = None, -np.inf
    for k in range(2, min(options.max_clusters, n // options.min_cluster_size) + 1):
        model = KMeans(n_clusters=k, n_init=3, random_state=options.seed).fit(vectors)
        score = silhouette_score(vectors, model.labels_, sample_size=min(n, 1000), random_state=options.seed)
        if score > best_score:
            best_model, best_score = model, score
    if best_model is None:
        centre = vectors.mean(axis=0, keepdims=True)
        return np.linalg.norm(vectors - centre, axis=1), np.zeros(n, dtype=int)
    dist = best_model.transform(vectors)
    return dist.min(axis=1), best_model.labels_.astype(int)


def _cap(members: np.ndarray, centre_dist: np.ndarray, cluster: np.ndarray,
         options: CleaningOptions) -> tuple[list[int], list[int]]:
    """Balanced sampling of one class: hard maps (farthest from centre) plus typical maps round-robin by cluster."""
    cap = options.per_class_cap
    if cap is None or members.size <= cap:
        return members.tolist(), []
    n_hard = int(round(cap * options.hard_share))
    by_distance = np.argsort(-centre_dist, kind="stable")
    hard = by_distance[:n_hard]
    hard_set = set(hard.tolist())
    rest = [p for p in np.argsort(centre_dist, kind="stable") if p not in hard_set]
    queues = {c: [p for p in rest if cluster[p] == c] for c in sorted(set(cluster[rest].tolist()))}
    typical: list[int] = []
    while len(typical) < cap - n_hard:
        for queue in queues.values():
            if queue and len(typical) < cap - n_hard:
                typical.append(queue.pop(0))
    return members[np.concatenate([hard, typical]).astype(int)].tolist(), members[hard].tolist()


def _report(options: CleaningOptions, embedding: str, ids: list[str], classes: list[str], *,
            flags: dict[int, tuple[str, str]], summaries_extra: dict[str, tuple[bool, int]],
            kept: list[str], hard: list[str]) -> CleaningReport:
    kept_set, hard_set = set(kept), set(hard)
    flagged = [FlaggedMap(id=ids[i], label=classes[i], reason=flags[i][0], detail=flags[i][1]) for i in sorted(flags)]
    summaries = {}
    for label in sorted(set(classes)):
        member_ids = [ids[i] for i, c in enumerate(classes) if c == label]
        class_flags = [f for f in flagged if f.label == label]
        kept_ids = [i for i in member_ids if i in kept_set]
        checked, n_clusters = summaries_extra.get(label, (False, 0))
        summaries[label] = ClassSummary(
            label=label, total=len(member_ids), checked=checked, n_clusters=n_clusters, flagged=len(class_flags),
            reasons=dict(Counter(f.reason for f in class_flags)), kept=len(kept_ids),
            kept_hard=sum(i in hard_set for i in kept_ids),
            dropped_by_cap=len(member_ids) - len(class_flags) - len(kept_ids),
            example_kept=kept_ids[:EXAMPLES], example_flagged=[f.id for f in class_flags[:EXAMPLES]],
        )
    return CleaningReport(
        enabled=options.enabled, embedding=embedding, options=options, n_input=len(ids), n_kept=len(kept),
        n_flagged=len(flagged), classes=summaries, flagged=flagged, kept_ids=kept, hard_ids=hard,
    )
