"""Seeded procedural wafer maps with ground truth: the eight WM-811K patterns, normal wafers and MixedWM38 mixtures.

``generate_maps(n, seed)`` yields maps ``gen-{seed}-{i:06d}``; map ``i`` draws everything from its own generator
``np.random.default_rng([seed, i])``, so the same arguments give the same bytes and a longer run starts with the
maps of a shorter one. Labels are drawn uniformly over the classes: ``none``, the eight single patterns and (with
``mixtures``) the 29 mixtures of :data:`MIXTURES`. Grid sizes are drawn from :data:`COMMON_SHAPES` and a
log-normal around WM-811K's median unless ``size`` fixes one. Pattern parameters and their ranges live in
:mod:`wafersage.tasks.generate.patterns`.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterator, Sequence

import numpy as np

from .patterns import DRAWERS, Frame, background
from ..maps.wafer import LABELS, PATTERNS, PatternTruth, WaferMap, WaferMapError, canonical_label

#: MixedWM38's mixed classes (Wang et al. 2020): at most one of Center/Donut, at most one of Edge-Loc/Edge-Ring,
#: optionally Loc and Scratch. Near-full and Random occur only alone.
MIXTURES: tuple[tuple[str, ...], ...] = (
    # 13 two-type
    ("Center", "Edge-Loc"), ("Center", "Edge-Ring"), ("Center", "Loc"), ("Center", "Scratch"),
    ("Donut", "Edge-Loc"), ("Donut", "Edge-Ring"), ("Donut", "Loc"), ("Donut", "Scratch"),
    ("Edge-Loc", "Loc"), ("Edge-Loc", "Scratch"), ("Edge-Ring", "Loc"), ("Edge-Ring", "Scratch"),
    ("Loc", "Scratch"),
    # 12 three-type
    ("Center", "Edge-Loc", "Loc"), ("Center", "Edge-Loc", "Scratch"), ("Center", "Edge-Ring", "Loc"),
    ("Center", "Edge-Ring", "Scratch"), ("Center", "Loc", "Scratch"), ("Donut", "Edge-Loc", "Loc"),
    ("Donut", "Edge-Loc", "Scratch"), ("Donut", "Edge-Ring", "Loc"), ("Donut", "Edge-Ring", "Scratch"),
    ("Donut", "Loc", "Scratch"), ("Edge-Loc", "Loc", "Scratch"), ("Edge-Ring", "Loc", "Scratch"),
    # 4 four-type
    ("Center", "Edge-Loc", "Loc", "Scratch"), ("Center", "Edge-Ring", "Loc", "Scratch"),
    ("Donut", "Edge-Loc", "Loc", "Scratch"), ("Donut", "Edge-Ring", "Loc", "Scratch"),
)
SOLO_ONLY = ("Near-full", "Random")

#: WM-811K's most common grid sizes (rows, columns) and MixedWM38's 52×52, drawn with these weights ...
COMMON_SHAPES: tuple[tuple[tuple[int, int], float], ...] = (
    ((52, 52), 0.25), ((32, 29), 0.08), ((25, 27), 0.06), ((49, 39), 0.05), ((26, 26), 0.05),
)
#: ... and otherwise rows from a log-normal (median, sigma) clipped to SHAPE_ROWS, columns by a die aspect ratio.
ROWS_LOGNORMAL = (35.0, 0.22)
SHAPE_ROWS = (25, 60)
ASPECT_RANGE = (0.8, 1.25)
#: dies whose centre lies within this many die widths of the wafer outline are excluded (edge exclusion); the
#: outline's centre sits off the grid centre by one of OUTLINE_SHIFTS die widths per axis. Both are discrete,
#: as for real products whose wafers share one outline (geometry caches per outline).
EDGE_EXCLUSIONS = (0.0, 0.25, 0.5)
OUTLINE_SHIFTS = (-0.25, 0.0, 0.25)
MIN_SIDE = 8


def draw_shape(rng: np.random.Generator) -> tuple[int, int]:
    """A grid size (rows, columns) like WM-811K's between about 25×26 and 60×60, or MixedWM38's 52×52."""
    pick = rng.random()
    for shape, weight in COMMON_SHAPES:
        if pick < weight:
            return shape
        pick -= weight
    rows = int(np.clip(np.rint(ROWS_LOGNORMAL[0] * np.exp(rng.normal(0, ROWS_LOGNORMAL[1]))), *SHAPE_ROWS))
    cols = int(np.clip(np.rint(rows * rng.uniform(*ASPECT_RANGE)), SHAPE_ROWS[0] - 1, SHAPE_ROWS[1]))
    return rows, cols


def wafer_frame(shape: tuple[int, int], rng: np.random.Generator) -> Frame:
    """The wafer of one map: an ellipse filling the grid (dies are not square) with a random edge exclusion and
    centre shift, and the normalised frame the patterns are drawn in."""
    exclusion = EDGE_EXCLUSIONS[int(rng.integers(len(EDGE_EXCLUSIONS)))]
    # two scalar draws give the values of one ``integers(n, size=2)`` (same Lemire draws), 3x faster
    shift_y = OUTLINE_SHIFTS[int(rng.integers(len(OUTLINE_SHIFTS)))]
    shift_x = OUTLINE_SHIFTS[int(rng.integers(len(OUTLINE_SHIFTS)))]
    return _outline_frame(shape, exclusion, shift_y, shift_x)


@lru_cache(maxsize=512)
def _outline_frame(shape: tuple[int, int], exclusion: float, shift_y: float, shift_x: float) -> Frame:
    rows, cols = shape
    cy, cx = (rows - 1) / 2 + shift_y, (cols - 1) / 2 + shift_x
    ry, rx = rows / 2 - exclusion, cols / 2 - exclusion
    r_idx, c_idx = np.arange(rows)[:, None], np.arange(cols)  # np.ogrid's values, without its ~7 µs overhead
    return Frame.of(((r_idx - cy) / ry) ** 2 + ((c_idx - cx) / rx) ** 2 <= 1.0)


def label_classes(patterns: Sequence[str] | None = None, mixtures: bool = True) -> list[tuple[str, ...]]:
    """The label sets to draw from: ``("none",)``, single patterns and mixtures, all within ``patterns``."""
    allowed = set(LABELS) if patterns is None else {canonical_label(p, record="patterns") for p in patterns}
    classes = [(label,) for label in LABELS if label in allowed]
    if mixtures:
        classes += [combo for combo in MIXTURES if set(combo) <= allowed]
    if not classes:
        raise WaferMapError(f"no label can be drawn from patterns={list(patterns or [])}; name some of "
                            f"{', '.join(LABELS)}")
    return classes


def generate_map(labels: Sequence[str], *, rng: np.random.Generator, shape: tuple[int, int] = (52, 52),
                 wafer_id: str) -> WaferMap:
    """One map with the given defect labels (``[]`` or ``["none"]`` for a normal wafer) and its ground truth."""
    wanted = [canonical_label(label, record=wafer_id) for label in labels]
    components = [label for label in PATTERNS if label in wanted]  # canonical order, duplicates dropped
    solo = [label for label in components if label in SOLO_ONLY]
    if solo and len(components) > 1:
        raise WaferMapError(f"wafer {wafer_id}: {solo[0]} occurs only alone (as in MixedWM38); "
                            f"drop it or the other labels from {components}")
    rows, cols = int(shape[0]), int(shape[1])
    if min(rows, cols) < MIN_SIDE:
        raise WaferMapError(f"wafer {wafer_id}: grid {rows}x{cols} is too small; use at least {MIN_SIDE}x{MIN_SIDE}")
    frame = wafer_frame((rows, cols), rng)
    if solo:  # a whole-wafer fail rate stands in for the background
        fail, noise = np.zeros(frame.on.shape, dtype=bool), {}
    else:
        fail, noise = background(frame, rng)
    truth = []
    for label in components:
        mask, params = DRAWERS[label](frame, rng)
        fail |= mask
        truth.append(PatternTruth(label, _rounded(params) | noise))  # the noise is rounded already
    if not components:
        truth.append(PatternTruth("none", noise))
    grid = frame.on.view(np.uint8) + fail.view(np.uint8)  # OFF 0, PASS 1, FAIL 2 (failing dies are on the wafer)
    return WaferMap(grid=grid, id=wafer_id, source="generated", labels=tuple(components) or ("none",),
                    truth=tuple(truth))


_FLOATS = (float, np.floating)


def _rounded(params: dict) -> dict:
    """Parameters as plain JSON values, floats rounded to 4 places (what the store keeps)."""
    return {k: round(float(v), 4) if isinstance(v, _FLOATS) else v for k, v in params.items()}


def generate_maps(n: int, seed: int, *, patterns: Sequence[str] | None = None, size: tuple[int, int] | None = None,
                  mixtures: bool = True, balanced: bool = False, mixture_share: float | None = None,
                  start: int = 0) -> Iterator[WaferMap]:
    """Yield maps ``start`` .. ``n - 1`` (all ``n`` by default) as ``gen-{seed}-{i:06d}``; deterministic to the byte
    for the same arguments, and map ``i`` is the same whatever ``start`` is (a build's workers each make a range).

    ``balanced`` takes the label classes in turn instead of drawing each map's class (every class appears once
    ``n`` reaches their number, like MixedWM38's roughly even classes). ``mixture_share`` (with ``mixtures``) makes
    that share of the maps mixtures and the rest single patterns or normal, spread evenly over the indices; within
    each group the classes are taken in turn (``balanced``) or drawn. Without it every class is equally likely, so
    29 of MixedWM38's 38 classes make mixtures three maps in four. Arguments are checked before the first map is
    made, so a bad call fails at once, not mid-stream.
    """
    if n < 0 or seed < 0 or not 0 <= start <= max(n, 0):
        raise WaferMapError(f"cannot generate maps {start}..{n - 1} with seed={seed}; pass n >= 0, seed >= 0 and "
                            "0 <= start <= n")
    classes = label_classes(patterns, mixtures)
    if size is not None and min(size) < MIN_SIDE:
        raise WaferMapError(f"grid size {tuple(size)} is too small; use at least {MIN_SIDE}x{MIN_SIDE}")
    groups = [classes]
    if mixture_share is not None:
        singles, mixed = [c for c in classes if len(c) == 1], [c for c in classes if len(c) > 1]
        if not 0.0 <= mixture_share <= 1.0 or (mixture_share > 0 and not mixed) or (mixture_share < 1 and not singles):
            raise WaferMapError(f"mixture_share={mixture_share} needs a share in [0, 1] with classes on both sides: "
                                f"{len(mixed)} mixture and {len(singles)} single classes can be drawn here")
        groups = [singles, mixed]
    return _maps(range(start, n), seed, groups, None if size is None else (int(size[0]), int(size[1])), balanced,
                 mixture_share)


def _class_of(i: int, groups: list[list[tuple[str, ...]]], balanced: bool, share: float | None,
              rng: np.random.Generator) -> tuple[str, ...]:
    """Map ``i``'s label class: its group (mixtures on the indices where ``floor(i * share)`` steps up, so any run
    of indices holds its share of them), then the group's next class in turn or a drawn one."""
    if share is None:
        group, k = groups[0], i
    else:
        mixed = int((i + 1) * share) > int(i * share)
        group, k = (groups[1], int(i * share)) if mixed else (groups[0], i - int(i * share))
    return group[k % len(group)] if balanced else group[int(rng.integers(len(group)))]


def _maps(indices: range, seed: int, groups: list[list[tuple[str, ...]]], size: tuple[int, int] | None,
          balanced: bool, share: float | None) -> Iterator[WaferMap]:
    for i in indices:
        rng = np.random.default_rng([seed, i])
        labels = _class_of(i, groups, balanced, share, rng)
        shape = size if size is not None else draw_shape(rng)
        yield generate_map(labels, rng=rng, shape=shape, wafer_id=f"gen-{seed}-{i:06d}")
