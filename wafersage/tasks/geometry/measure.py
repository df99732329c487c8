"""Measured geometry of a wafer map: the facts that descriptions, rubrics, questions and the specialist use.

Coordinates: the wafer centre is the centroid of its dies; each axis is normalised by the wafer's half-extent
along it (the farthest die centre in that direction), so the wafer becomes the unit disc even on grids whose
dies are not square (32×29 …) and edge dies sit near r = 1. ``x`` grows to the right and ``y`` upwards; angles
and orientations are measured in this normalised frame. Clock positions count clockwise from 12 o'clock;
sector k covers k·30° ± 15°. Zones by normalised radius: centre < 0.35, middle < 0.72, edge otherwise (a
published convention, see ``notes/domain.md``).

Everything is vectorised over the dies and, in :func:`measure_many`, over the maps of one grid shape: one pass
over their cells, one connected-component labelling and one sort of their failing dies, so a 52×52 map measures
in a fraction of a millisecond; every map's result is bit-identical to measuring it alone. The result types
(:class:`Geometry`, :class:`Region`) live in :mod:`wafersage.tasks.geometry.types`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy import ndimage

from .types import Geometry
from ..maps.wafer import FAIL, OFF, WaferMap

ZONES = ("center", "middle", "edge")
ZONE_EDGES = (0.35, 0.72)
QUADRANTS = ("upper-right", "upper-left", "lower-left", "lower-right")
RADIAL_BINS = 10
MIN_REGION_AREA = 3
#: only the largest regions are kept as :class:`Region` objects (counts and fractions use all of them)
MAX_REGIONS = 20
CLUSTER_MIN_AREA = 5
#: dies nearer the centre than this carry no direction (clock sectors, angular concentration)
DIRECTION_MIN_R = 0.2
#: a map is directional when its excess failures point one way at least this strongly (0..1)
DIRECTION_MIN_FOCUS = 0.5
#: ring measure: widest band (in radial bins) that still counts as a ring, and the pseudo-dies of its prior
RING_MAX_BINS = 7
RING_PRIOR_DIES = 4
_EIGHT = np.ones((3, 3), dtype=bool)
_EIGHT_STACK = np.stack([np.zeros((3, 3), dtype=bool), _EIGHT, np.zeros((3, 3), dtype=bool)])  # never across maps
#: maps measured in one vectorised pass (bounds the memory of :func:`measure_many`)
MEASURE_BATCH = 256
_SECTOR_ANGLES = np.radians(np.arange(12) * 30.0)
_SECTOR_UNIT = np.stack([np.sin(_SECTOR_ANGLES), np.cos(_SECTOR_ANGLES)], axis=1)  # (x, y) of each clock sector


def clock_of(x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray | int:
    """Clock position (1..12) of normalised coordinates; the centre reads 12."""
    if isinstance(x, (float, int)) and isinstance(y, (float, int)):  # one point: plain math, ~20x faster
        sector = round((math.degrees(math.atan2(x, y)) % 360.0) / 30.0) % 12
        return 12 if sector == 0 else sector
    theta = np.degrees(np.arctan2(x, y)) % 360.0
    sector = np.rint(theta / 30.0).astype(int) % 12
    out = np.where(sector == 0, 12, sector)
    return int(out) if np.ndim(out) == 0 else out


def zone_of(r: float) -> str:
    return ZONES[int(np.searchsorted(ZONE_EDGES, r, side="right"))]


def _centre_and_scale(rows: np.ndarray, cols: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Centroid (row, column) of the given die positions and the half-extents (along rows, along columns)."""
    rc, cc = float(rows.mean()), float(cols.mean())
    ry = max(float(np.abs(rows - rc).max()), 0.5)
    rx = max(float(np.abs(cols - cc).max()), 0.5)
    return (rc, cc), (ry, rx)


def frame_of(on: np.ndarray):
    """``(x, y, r, on, centre, scale)`` of an on-wafer mask: normalised coordinates of every cell, the centroid
    ``(row, column)`` and the dies per unit radius ``(along y, along x)``; the generator draws in this frame."""
    on = np.asarray(on, dtype=bool)
    ri, ci = np.nonzero(on)
    if ri.size == 0:
        raise ValueError("no die on the wafer: cannot place a frame on an all-zero grid")
    (rc, cc), (ry, rx) = _centre_and_scale(ri, ci)
    rows, cols = np.ogrid[: on.shape[0], : on.shape[1]]
    x, y = np.broadcast_arrays((cols - cc) / rx, (rc - rows) / ry)
    return x, y, np.hypot(x, y), on, (rc, cc), (ry, rx)


def polar(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised (x, y, r) for every cell of ``grid``, centred on its dies."""
    x, y, r, *_ = frame_of(np.asarray(grid) != OFF)
    return x, y, r


@dataclass(frozen=True)
class _Outline:
    """Everything that depends only on which cells hold a die (per die, in row-major order); cached because the
    maps of one product share their outline."""

    on: np.ndarray  # the on-wafer mask (shape of the grid)
    x: np.ndarray
    y: np.ndarray
    r: np.ndarray
    angle: np.ndarray  # degrees clockwise from 12 o'clock, [0, 360)
    zone: np.ndarray
    quadrant: np.ndarray  # index into QUADRANTS
    bin_sector: np.ndarray  # radial bin * 12 + clock sector of each die
    dies_per_zone: np.ndarray
    dies_bin_sector: np.ndarray  # (RADIAL_BINS, 12) die counts
    dies_per_bin: np.ndarray
    dies_off_centre: np.ndarray  # per clock sector, beyond DIRECTION_MIN_R
    die_neighbours: np.ndarray  # on-wafer neighbours of each die (8-connectivity)
    die_var: tuple[float, float]  # variance of one die's square along (y, x), normalised units
    die_of_cell: np.ndarray  # die index of every cell in row-major order, -1 off the wafer


@lru_cache(maxsize=64)
def _outline(shape: tuple[int, int], packed: bytes) -> _Outline:
    on = np.frombuffer(packed, dtype=bool).reshape(shape)
    ri, ci = np.nonzero(on)
    (rc, cc), (ry, rx) = _centre_and_scale(ri, ci)
    x, y = (ci - cc) / rx, (rc - ri) / ry
    r = np.hypot(x, y)
    bins = np.minimum((r * RADIAL_BINS).astype(np.intp), RADIAL_BINS - 1)
    sector = np.rint(np.degrees(np.arctan2(x, y)) % 360.0 / 30.0).astype(np.intp) % 12
    zone = np.searchsorted(ZONE_EDGES, r, side="right")
    quadrant = np.where(y >= 0, np.where(x >= 0, 0, 1), np.where(x < 0, 2, 3))
    bin_sector = bins * 12 + sector
    dies_bin_sector = np.bincount(bin_sector, minlength=RADIAL_BINS * 12).reshape(RADIAL_BINS, 12)
    neighbours = ndimage.correlate(on.view(np.uint8), _EIGHT.view(np.uint8), mode="constant")[on] - 1
    angle = np.degrees(np.arctan2(x, y)) % 360.0
    die_of_cell = np.full(on.size, -1, dtype=np.intp)
    die_of_cell[on.ravel()] = np.arange(ri.size)
    for array in (on, x, y, r, angle, zone, quadrant, bin_sector, neighbours, die_of_cell):
        array.setflags(write=False)
    return _Outline(
        on=on, x=x, y=y, r=r, angle=angle, zone=zone, quadrant=quadrant, bin_sector=bin_sector,
        dies_per_zone=np.bincount(zone, minlength=3),
        dies_bin_sector=dies_bin_sector, dies_per_bin=dies_bin_sector.sum(1),
        dies_off_centre=dies_bin_sector[int(round(DIRECTION_MIN_R * RADIAL_BINS)):].sum(0),
        die_neighbours=neighbours, die_var=(1.0 / (12 * ry * ry), 1.0 / (12 * rx * rx)), die_of_cell=die_of_cell,
    )


class _Batch:
    """The outlines of a stack of maps of one grid shape, each map with its own: the dies of the distinct outlines
    laid end to end (a die's id is its place in that list), and every per-outline count looked up per map."""

    def __init__(self, outlines: Sequence[_Outline]):
        index: dict[int, int] = {}
        of_map = np.array([index.setdefault(id(o), len(index)) for o in outlines], dtype=np.intp)
        distinct = list({id(o): o for o in outlines}.values())
        first = np.cumsum([0] + [o.r.size for o in distinct[:-1]]).tolist()

        def per_map(values: list) -> np.ndarray:  # one row per map (a read-only view when all share one outline)
            if len(values) > 1:
                return np.stack(values)[of_map]
            value = np.asarray(values[0])
            return value[None] if of_map.size == 1 else np.broadcast_to(value, (of_map.size, *value.shape))

        def joined(name: str) -> np.ndarray:
            parts = [getattr(o, name) for o in distinct]
            return parts[0] if len(parts) == 1 else np.concatenate(parts)

        self.die_of_cell = per_map([np.where(o.die_of_cell < 0, -1, o.die_of_cell + start) if start else o.die_of_cell
                                    for o, start in zip(distinct, first)])
        self.x, self.y, self.r, self.angle = (joined(n) for n in ("x", "y", "r", "angle"))
        self.zone, self.quadrant, self.bin_sector = (joined(n) for n in ("zone", "quadrant", "bin_sector"))
        self.die_neighbours = joined("die_neighbours")
        self.n_dies = per_map([o.r.size for o in distinct])
        self.dies_per_zone = per_map([o.dies_per_zone for o in distinct])
        self.dies_per_bin = per_map([o.dies_per_bin for o in distinct])
        self.dies_bin_sector = per_map([o.dies_bin_sector for o in distinct])
        self.dies_off_centre = per_map([o.dies_off_centre for o in distinct])
        self.die_var = per_map([np.array(o.die_var) for o in distinct])  # (maps, 2): along y, along x


def _regions(fail: np.ndarray, fail_map: np.ndarray, fail_die: np.ndarray, n_fail: np.ndarray,
             out: _Batch) -> tuple[list[list[dict]], np.ndarray]:
    """Per map of the stack ``fail`` (maps × rows × columns): its connected regions of failing dies as
    :class:`Region` fields (largest first), and the share of its failing dies in clusters of >= ``CLUSTER_MIN_AREA``.
    ``fail_map, fail_die`` name every failing die (map index, die id in ``out``), map by map in row-major order."""
    n_maps = fail.shape[0]
    labels, count = ndimage.label(fail, structure=_EIGHT_STACK)  # numbered map by map, in row-major order
    if count == 0:
        return [[] for _ in range(n_maps)], np.zeros(n_maps)
    lab = labels[fail]
    last_label = np.maximum.accumulate(labels.reshape(n_maps, -1).max(1))
    first_label = np.concatenate([[0], last_label[:-1]])  # labels before each map's own (which count from 1)
    xs, ys, rs, angles = out.x[fail_die], out.y[fail_die], out.r[fail_die], out.angle[fail_die]
    key = (lab - first_label[fail_map]) * 1000.0 + angles  # by region, then clockwise from 12 (angle < 1000)
    order = _stable_order(fail_map, key)
    lab_s, ang_s, r_s = lab[order], angles[order], rs[order]
    starts = np.flatnonzero(np.diff(lab_s, prepend=0))  # every label 1..count occurs once as a group
    ends = np.append(starts[1:], lab_s.size)
    area = (ends - starts).astype(float)
    group_map = fail_map[order][starts]
    clustered = np.bincount(group_map, weights=np.where(area >= CLUSTER_MIN_AREA, area, 0.0), minlength=n_maps)
    clustered = clustered / np.maximum(n_fail, 1)
    keep = np.flatnonzero(area >= MIN_REGION_AREA)
    keep = keep[np.lexsort((-area[keep], group_map[keep]))]  # map by map, largest first (ties: label order)
    kept_map = group_map[keep]
    rank = np.arange(keep.size) - np.searchsorted(kept_map, kept_map)
    keep, kept_map = keep[rank < MAX_REGIONS], kept_map[rank < MAX_REGIONS]
    n = area[keep]
    xo, yo = xs[order], ys[order]
    sums = np.add.reduceat(np.stack([xo, yo, xo * xo, yo * yo, xo * yo], axis=1), starts)[keep] / n[:, None]
    sx, sy = sums[:, 0], sums[:, 1]
    # second moments about each centroid; each die adds the variance of its own unit square
    cxx = np.maximum(sums[:, 2] - sx * sx, 0.0) + out.die_var[kept_map, 1]
    cyy = np.maximum(sums[:, 3] - sy * sy, 0.0) + out.die_var[kept_map, 0]
    cxy = sums[:, 4] - sx * sy
    half_trace = (cxx + cyy) / 2
    disc = np.sqrt(np.maximum(half_trace**2 - (cxx * cyy - cxy**2), 0.0))
    elongation = np.minimum(np.sqrt((half_trace + disc) / np.maximum(half_trace - disc, 1e-12)), 50.0)
    orientation = np.degrees(0.5 * np.arctan2(2 * cxy, cxx - cyy)) % 180.0
    gaps = np.append(np.diff(ang_s), -np.inf)
    gaps[ends - 1] = -np.inf  # no gap across two regions
    inner_gap = np.maximum.reduceat(gaps, starts)[keep]
    wrap_gap = ang_s[starts[keep]] + 360.0 - ang_s[ends[keep] - 1]
    columns = {
        "area": n.astype(int).tolist(), "area_fraction": (n / out.n_dies[kept_map]).tolist(), "x": sx.tolist(),
        "y": sy.tolist(), "r": np.hypot(sx, sy).tolist(), "clock": np.atleast_1d(clock_of(sx, sy)).tolist(),
        "elongation": elongation.tolist(), "orientation_deg": orientation.tolist(),
        "extent_r": list(zip(np.minimum.reduceat(r_s, starts)[keep].tolist(),
                             np.maximum.reduceat(r_s, starts)[keep].tolist())),
        "angular_span_deg": (360.0 - np.maximum(inner_gap, wrap_gap)).tolist(),
    }
    rows = [dict(zip(columns, row)) for row in zip(*columns.values())]
    bounds = np.searchsorted(kept_map, np.arange(n_maps + 1)).tolist()
    return [rows[bounds[k]:bounds[k + 1]] for k in range(n_maps)], clustered


def _stable_order(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``np.lexsort((key, group))`` for ascending ``group`` and positive ``key``, 3–4x faster: positive floats sort
    like their bit patterns, so (group, key) packs into one int64 that a stable sort orders exactly."""
    bits = key.view(np.int64)
    bits = bits - bits.min()
    width = int(bits.max()).bit_length()
    if width + int(group[-1]).bit_length() > 63:
        return np.lexsort((key, group))
    return np.argsort((group.astype(np.int64) << width) | bits, kind="stable")


def _median(values: Sequence[float]) -> float:
    """Median of a short list (much faster than ``np.median`` for a dozen values)."""
    s = sorted(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else 0.5 * (s[mid - 1] + s[mid])


def _directions(fails: np.ndarray, dies: np.ndarray) -> tuple[list[float], list[list[int]]]:
    """Per map of ``fails`` (maps × clock sectors, failures beyond ``DIRECTION_MIN_R``; ``dies``: its dies there):
    the angular concentration and the dominant clocks.

    Excess = failures − median sector fail rate × dies, i.e. what a uniform background does not explain. The
    concentration is the length of the excess-weighted direction sum over all those failures; clocks are
    reported when the excess points one way (focus >= ``DIRECTION_MIN_FOCUS``) and the top sector's excess is
    well above the background's Poisson noise.
    """
    n_fail = fails.sum(1)
    rates = np.sort(fails / np.maximum(dies, 1), axis=1)
    mid = rates.shape[1] // 2
    background = 0.5 * (rates[:, mid - 1] + rates[:, mid])  # the median of the 12 sectors
    excess = np.maximum(fails - background[:, None] * dies, 0.0)
    vector = (excess[:, :, None] * _SECTOR_UNIT).sum(1)  # row by row, the same sums for any number of maps
    resultant = np.hypot(vector[:, 0], vector[:, 1])
    concentration = np.where(n_fail > 0, resultant / np.maximum(n_fail, 1), 0.0)
    top = np.argmax(excess, axis=1)
    top_excess = np.take_along_axis(excess, top[:, None], axis=1)[:, 0]
    noise = 3.0 * np.sqrt(background * np.take_along_axis(dies, top[:, None], axis=1)[:, 0]) + 2.0
    directional = (n_fail > 0) & (top_excess >= noise) & (resultant >= DIRECTION_MIN_FOCUS * excess.sum(1))
    clocks: list[list[int]] = [[] for _ in range(fails.shape[0])]
    for k in np.flatnonzero(directional).tolist():
        order = np.argsort(-excess[k], kind="stable")[:3]
        clocks[k] = [int(12 if s == 0 else s) for s in order if excess[k, s] >= 0.5 * top_excess[k]]
    return concentration.tolist(), clocks


def _ring(radial: list[float], fails: np.ndarray, dies: np.ndarray) -> tuple[float, float]:
    """Ring likeness and radius from the radial profile and (radial bin × sector) failure and die counts.

    The ring band is the strongest radial bin away from the centre (r >= 0.2), widened over the neighbouring
    bins that fail at least half as often; a band over more than ``RING_MAX_BINS`` bins is no ring. Likeness
    is the share of clock sectors in which the band fails clearly (above 0.15, half the band's rate and twice
    the other bins' median), times how hollow the ring is: 1 − fail rate inside the band / fail rate in it, the
    inside rate shrunk towards the band's by ``RING_PRIOR_DIES`` pseudo-dies so that a few lucky dies at the
    very centre of a small map make no hollow. A centre blob or a uniform texture has no hollow: it reads ~0.
    """
    peak = max(range(2, RADIAL_BINS), key=radial.__getitem__)  # the first strongest bin
    lo, hi = peak, peak
    while lo > 1 and radial[lo - 1] >= 0.5 * radial[peak]:
        lo -= 1
    while hi < RADIAL_BINS - 1 and radial[hi + 1] >= 0.5 * radial[peak]:
        hi += 1
    ring_r = (lo + hi + 1) / 2 / RADIAL_BINS
    band_fails, band_dies = fails[lo: hi + 1].sum(0), dies[lo: hi + 1].sum(0)
    if band_fails.sum() < 6 or hi - lo + 1 > RING_MAX_BINS:
        return 0.0, ring_r
    band_rate = band_fails.sum() / band_dies.sum()
    others = radial[:lo] + radial[hi + 1:]
    threshold = max(0.15, 0.5 * band_rate, 2 * (_median(others) if others else 0.0))
    coverage = float((band_fails / np.maximum(band_dies, 1) > threshold).mean())
    inside_rate = (fails[:lo].sum() + RING_PRIOR_DIES * band_rate) / (dies[:lo].sum() + RING_PRIOR_DIES)
    return coverage * float(np.clip(1.0 - inside_rate / band_rate, 0.0, 1.0)), ring_r


def _neighbour_excess(fail: np.ndarray, fail_neighbours: np.ndarray, n_fail: np.ndarray,
                      n_dies: np.ndarray) -> np.ndarray:
    """Per map of the stack ``fail``: (observed − chance) / (1 − chance) for the share of a failing die's on-wafer
    neighbours that fail (``fail_neighbours``: on-wafer neighbours summed over each map's failing dies)."""
    pairs = ((fail[:, :, 1:] & fail[:, :, :-1]).sum((1, 2)) + (fail[:, 1:] & fail[:, :-1]).sum((1, 2))
             + (fail[:, 1:, 1:] & fail[:, :-1, :-1]).sum((1, 2)) + (fail[:, 1:, :-1] & fail[:, :-1, 1:]).sum((1, 2)))
    chance = n_fail / n_dies
    observed = 2 * pairs / np.maximum(fail_neighbours, 1)
    excess = np.clip((observed - chance) / np.maximum(1 - chance, 1e-9), -1, 1)
    return np.where(n_fail == 0, 0.0, excess)


SOLID_SHARE = 0.5  # a map failing at least this share with almost no isolated die is one solid mass


def _texture(n_fail: int, clustered: float, excess: float, fail_ratio: float) -> str:
    """Clustered beyond chance, scattered, or mixed. A map failing over :data:`SOLID_SHARE` of its dies with over
    90% of them in groups is "clustered" (one contiguous mass, as anyone sees it) although its neighbour excess over
    chance is ~0: at that rate chance itself is high."""
    if n_fail == 0:
        return "clean"
    if (clustered >= 0.6 and excess > 0.25) or (fail_ratio >= SOLID_SHARE and clustered >= 0.9):
        return "clustered"
    if clustered <= 0.25 or excess < 0.1:
        return "scattered"
    return "mixed"


def measure(wafer: WaferMap | np.ndarray) -> Geometry:
    """Measure one map. Accepts a :class:`WaferMap` or a raw grid."""
    return measure_many([wafer])[0]


def measure_many(wafers: Sequence[WaferMap | np.ndarray]) -> list[Geometry]:
    """Measure many maps: the same results as :func:`measure` on each, several times faster per map, because maps
    of one grid shape are measured together in one vectorised pass (each with its own outline of on-wafer cells,
    whose geometry is computed once per outline: the maps of one product share it)."""
    grids = [w.grid if isinstance(w, WaferMap) else np.asarray(w) for w in wafers]
    groups: dict[tuple[int, int], list[int]] = {}
    packed: list[bytes] = []  # each map's on-wafer cells, the key of its outline
    for index, grid in enumerate(grids):
        on = grid != OFF
        if not on.any():
            raise ValueError("cannot measure a map with no die on it (all cells are 0)"
                             + (f" (map {index} of {len(grids)})" if len(grids) > 1 else ""))
        packed.append(on.tobytes())
        groups.setdefault(grid.shape, []).append(index)
    geoms: list[Geometry] = [None] * len(grids)  # type: ignore[list-item]
    for shape, members in groups.items():
        outlines: dict[bytes, _Outline] = {}  # this shape's, kept while its maps are measured
        for index in members:
            if packed[index] not in outlines:
                outlines[packed[index]] = _outline(shape, packed[index])
        for start in range(0, len(members), MEASURE_BATCH):
            chunk = members[start:start + MEASURE_BATCH]
            batch = _Batch([outlines[packed[i]] for i in chunk])
            for index, geom in zip(chunk, _measure_stack(np.stack([grids[i] for i in chunk]), batch)):
                geoms[index] = geom
    return geoms


def _measure_stack(grids: np.ndarray, out: _Batch) -> list[Geometry]:
    """Measure a stack of maps (maps × rows × columns) whose outlines are ``out``."""
    n_maps = grids.shape[0]
    fail = grids == FAIL
    fail_map, fail_cell = np.nonzero(fail.reshape(n_maps, -1))  # map by map, in row-major order
    fail_die = out.die_of_cell[fail_map, fail_cell]
    n_fail = np.bincount(fail_map, minlength=n_maps)
    fails_per_zone = np.bincount(fail_map * 3 + out.zone[fail_die], minlength=n_maps * 3).reshape(n_maps, 3)
    fails_bin_sector = np.bincount(fail_map * (RADIAL_BINS * 12) + out.bin_sector[fail_die],
                                   minlength=n_maps * RADIAL_BINS * 12).reshape(n_maps, RADIAL_BINS, 12)
    quadrants = np.bincount(fail_map * 4 + out.quadrant[fail_die], minlength=n_maps * 4).reshape(n_maps, 4)
    fail_neighbours = np.bincount(fail_map, weights=out.die_neighbours[fail_die], minlength=n_maps)
    regions, clustered = _regions(fail, fail_map, fail_die, n_fail, out)
    excess = _neighbour_excess(fail, fail_neighbours, n_fail, out.n_dies)
    off_centre = int(round(DIRECTION_MIN_R * RADIAL_BINS))
    per_fail = np.maximum(n_fail, 1)[:, None]
    zone_fail = fails_per_zone / np.maximum(out.dies_per_zone, 1)
    radial = fails_bin_sector.sum(2) / np.maximum(out.dies_per_bin, 1)
    concentration, dominant = _directions(fails_bin_sector[:, off_centre:].sum(1), out.dies_off_centre)
    rows = zip(n_fail.tolist(), (fails_per_zone / per_fail).tolist(), zone_fail.tolist(),
               np.argmax(zone_fail, axis=1).tolist(), radial.tolist(), (fails_bin_sector.sum(1) / per_fail).tolist(),
               (quadrants / per_fail).tolist(), concentration, dominant, regions, clustered.tolist(), excess.tolist(),
               out.n_dies.tolist())
    geoms = []
    for k, (nf, zone_share, zone_rate, top_zone, profile, clock_share, quadrant_share, concentration_k, clocks,
            map_regions, map_clustered, map_excess, n_dies) in enumerate(rows):
        line = 0.0
        if map_regions:  # thin and long: elongation carries most, length (area in dies) the rest
            big = map_regions[0]
            line = min(max((big["elongation"] - 2.0) / 6.0, 0.0), 1.0) * min(big["area"] / 8.0, 1.0)
        ring, ring_r = _ring(profile, fails_bin_sector[k], out.dies_bin_sector[k]) if nf else (0.0, 0.25)
        geoms.append(Geometry(
            n_dies=n_dies, n_fail=nf, fail_ratio=nf / n_dies,
            zone_fail_ratio=dict(zip(ZONES, zone_rate)), zone_share=dict(zip(ZONES, zone_share)),
            dominant_zone=ZONES[top_zone] if nf else None,
            radial_profile=profile, clock_share=clock_share, dominant_clocks=clocks,
            angular_concentration=concentration_k, quadrant_share=dict(zip(QUADRANTS, quadrant_share)),
            regions=map_regions, clustered_fraction=map_clustered, neighbour_excess=map_excess,
            line_likeness=line, ring_likeness=ring, ring_radius=ring_r,
            texture=_texture(nf, map_clustered, map_excess, nf / n_dies),
        ))
    return geoms
