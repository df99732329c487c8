"""Measured geometry of a wafer map: the facts that descriptions, rubrics, questions and the specialist use.

Coordinates: the wafer centre is the centroid of its dies, distances are normalised by the wafer radius (the
farthest die centre, so edge dies sit near r = 1), ``x`` grows to the right and ``y`` upwards. Clock positions
count clockwise from 12 o'clock; sector k covers k·30° ± 15°. Zones by normalised radius: centre < 0.35,
middle < 0.72, edge otherwise (a published convention, see ``notes/domain.md``).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import ndimage

from .wafer import FAIL, OFF, WaferMap

ZONES = ("center", "middle", "edge")
ZONE_EDGES = (0.35, 0.72)
QUADRANTS = ("upper-right", "upper-left", "lower-left", "lower-right")
RADIAL_BINS = 10
MIN_REGION_AREA = 3
_EIGHT = np.ones((3, 3), dtype=bool)


class Region(BaseModel):
    """A connected group of failing dies (8-connectivity)."""

    model_config = ConfigDict(frozen=True)
    area: int
    area_fraction: float  # of all dies on the wafer
    x: float
    y: float
    r: float
    clock: int
    elongation: float  # sqrt(major / minor variance), 1 for a round blob
    orientation_deg: float  # major axis, degrees counter-clockwise from +x, in [0, 180)
    extent_r: tuple[float, float]  # min and max normalised radius covered
    angular_span_deg: float  # clock arc covered, 0..360


class Geometry(BaseModel):
    """Everything measured on one map; all ratios are in [0, 1]."""

    model_config = ConfigDict(frozen=True)
    n_dies: int
    n_fail: int
    fail_ratio: float
    zone_fail_ratio: dict[str, float]  # failing share of each zone's dies
    zone_share: dict[str, float]  # share of all failing dies in each zone
    dominant_zone: str | None
    radial_profile: list[float]  # fail ratio in RADIAL_BINS equal bands of r
    clock_share: list[float]  # share of failing dies per clock sector, index 0 = 12 o'clock
    dominant_clocks: list[int]  # clock positions 1..12, strongest first; empty when not directional
    angular_concentration: float  # 0 uniform around the wafer .. 1 all in one direction
    quadrant_share: dict[str, float]
    regions: list[Region]  # largest first, area >= MIN_REGION_AREA
    clustered_fraction: float  # failing dies that sit in regions of >= 5 dies
    neighbour_excess: float  # how much more often fail dies neighbour fail dies than chance; 0 random
    line_likeness: float  # largest region: 1 for a thin straight line
    ring_likeness: float  # angular coverage of the strongest radial band's failures
    ring_radius: float  # centre of that band, normalised
    texture: str  # "clustered", "scattered", "mixed" or "clean"

    @property
    def largest(self) -> Region | None:
        return self.regions[0] if self.regions else None


@lru_cache(maxsize=256)
def _frame(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.indices(shape, dtype=np.float64)
    return rows, cols


def clock_of(x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray | int:
    """Clock position (1..12) of normalised coordinates; the centre reads 12."""
    theta = np.degrees(np.arctan2(x, y)) % 360.0
    sector = np.rint(theta / 30.0).astype(int) % 12
    out = np.where(sector == 0, 12, sector)
    return int(out) if np.ndim(out) == 0 else out


def zone_of(r: float) -> str:
    return ZONES[int(np.searchsorted(ZONE_EDGES, r, side="right"))]


def polar(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised (x, y, r) for every cell of ``grid``, centred on its dies."""
    on = grid != OFF
    rows, cols = _frame(grid.shape)
    n = on.sum()
    rc, cc = rows[on].sum() / n, cols[on].sum() / n
    x, y = cols - cc, rc - rows
    d2 = x * x + y * y
    radius = max(float(np.sqrt(d2[on].max())), 0.5)
    return x / radius, y / radius, np.sqrt(d2) / radius


def _regions(fail: np.ndarray, x: np.ndarray, y: np.ndarray, r: np.ndarray, n_dies: int) -> list[Region]:
    labels, count = ndimage.label(fail, structure=_EIGHT)
    if count == 0:
        return []
    flat = labels.ravel()
    idx = flat > 0
    lab = flat[idx]
    xs, ys, rs = x.ravel()[idx], y.ravel()[idx], r.ravel()[idx]
    area = np.bincount(lab, minlength=count + 1)[1:].astype(float)
    keep = np.flatnonzero(area >= MIN_REGION_AREA)
    if keep.size == 0:
        return []
    sx = np.bincount(lab, xs, count + 1)[1:] / np.maximum(area, 1)
    sy = np.bincount(lab, ys, count + 1)[1:] / np.maximum(area, 1)
    dx, dy = xs - sx[lab - 1], ys - sy[lab - 1]
    cxx = np.bincount(lab, dx * dx, count + 1)[1:] / np.maximum(area, 1)
    cyy = np.bincount(lab, dy * dy, count + 1)[1:] / np.maximum(area, 1)
    cxy = np.bincount(lab, dx * dy, count + 1)[1:] / np.maximum(area, 1)
    rmin = ndimage.minimum(rs, lab, np.arange(1, count + 1)) if count else []
    rmax = ndimage.maximum(rs, lab, np.arange(1, count + 1)) if count else []
    angles = np.degrees(np.arctan2(xs, ys)) % 360.0
    out = []
    for k in keep[np.argsort(-area[keep], kind="stable")]:
        tr, det = cxx[k] + cyy[k], cxx[k] * cyy[k] - cxy[k] ** 2
        disc = np.sqrt(max(tr * tr / 4 - det, 0.0))
        major, minor = tr / 2 + disc, max(tr / 2 - disc, 0.0)
        die_var = 1.0 / 12.0 * (sx.size and 1)  # a single die row still has width
        elong = float(np.sqrt((major + 1e-9) / (minor + 1e-9 + die_var * 1e-4)))
        orient = float(np.degrees(0.5 * np.arctan2(2 * cxy[k], cxx[k] - cyy[k])) % 180.0)
        span = _angular_span(angles[lab == k + 1])
        out.append(Region(
            area=int(area[k]), area_fraction=float(area[k] / n_dies), x=float(sx[k]), y=float(sy[k]),
            r=float(np.hypot(sx[k], sy[k])), clock=int(clock_of(sx[k], sy[k])), elongation=min(elong, 50.0),
            orientation_deg=orient, extent_r=(float(rmin[k]), float(rmax[k])), angular_span_deg=span,
        ))
    return out


def _angular_span(angles: np.ndarray) -> float:
    """Smallest arc (degrees) that holds all the given angles."""
    if angles.size < 2:
        return 0.0
    a = np.sort(angles)
    gaps = np.diff(np.concatenate([a, a[:1] + 360.0]))
    return float(360.0 - gaps.max())


def measure(wafer: WaferMap | np.ndarray) -> Geometry:
    """Measure one map. Accepts a :class:`WaferMap` or a raw grid."""
    grid = wafer.grid if isinstance(wafer, WaferMap) else np.asarray(wafer)
    on = grid != OFF
    fail = grid == FAIL
    n_dies, n_fail = int(on.sum()), int(fail.sum())
    x, y, r = polar(grid)
    r_on, r_fail = r[on], r[fail]
    zone_on = np.searchsorted(ZONE_EDGES, r_on, side="right")
    zone_fail = np.searchsorted(ZONE_EDGES, r_fail, side="right")
    dies_per_zone = np.bincount(zone_on, minlength=3).astype(float)
    fails_per_zone = np.bincount(zone_fail, minlength=3).astype(float)
    zone_fail_ratio = fails_per_zone / np.maximum(dies_per_zone, 1)
    zone_share = fails_per_zone / max(n_fail, 1)
    bins_on = np.minimum((r_on * RADIAL_BINS).astype(int), RADIAL_BINS - 1)
    bins_fail = np.minimum((r_fail * RADIAL_BINS).astype(int), RADIAL_BINS - 1)
    radial = np.bincount(bins_fail, minlength=RADIAL_BINS) / np.maximum(np.bincount(bins_on, minlength=RADIAL_BINS), 1)

    xf, yf = x[fail], y[fail]
    sector = np.rint((np.degrees(np.arctan2(xf, yf)) % 360.0) / 30.0).astype(int) % 12
    sector_share = np.bincount(sector, minlength=12) / max(n_fail, 1)
    # Directionality: resultant length of the failing dies' direction vectors, away from the centre only.
    off_centre = r[fail] > 0.2
    if off_centre.sum() >= 1:
        ang = np.arctan2(xf[off_centre], yf[off_centre])
        concentration = float(np.hypot(np.cos(ang).mean(), np.sin(ang).mean()))
    else:
        concentration = 0.0
    dominant = []
    if n_fail and concentration > 0.35:
        order = np.argsort(-sector_share, kind="stable")
        top = sector_share[order[0]]
        dominant = [int(12 if s == 0 else s) for s in order[:3] if sector_share[s] >= max(0.5 * top, 1.5 / 12)]
    quad_idx = np.where(yf >= 0, np.where(xf >= 0, 0, 1), np.where(xf < 0, 2, 3))
    quadrant = np.bincount(quad_idx, minlength=4) / max(n_fail, 1)

    regions = _regions(fail, x, y, r, n_dies)
    clustered = sum(rg.area for rg in regions if rg.area >= 5) / max(n_fail, 1)
    neighbours = ndimage.convolve(fail.astype(np.uint8), _EIGHT.astype(np.uint8), mode="constant") - fail
    on_neigh = ndimage.convolve(on.astype(np.uint8), _EIGHT.astype(np.uint8), mode="constant") - on
    if n_fail:
        observed = float(neighbours[fail].sum() / max(on_neigh[fail].sum(), 1))
        p = n_fail / n_dies
        excess = float(np.clip((observed - p) / max(1 - p, 1e-9), -1, 1))
    else:
        excess = 0.0

    line = 0.0
    if regions:
        big = regions[0]
        # thin and long relative to the wafer: elongation carries most, length (sqrt area) the rest
        line = float(np.clip((big.elongation - 2.0) / 6.0, 0, 1) * np.clip(big.area / 8.0, 0, 1))
    band = int(np.argmax(radial)) if n_fail else 0
    ring, ring_r = 0.0, (band + 0.5) / RADIAL_BINS
    if n_fail:
        lo, hi = max(band - 1, 0) / RADIAL_BINS, min(band + 2, RADIAL_BINS) / RADIAL_BINS
        in_band = (r_fail >= lo) & (r_fail < hi)
        if in_band.sum() >= 6:
            s = sector[in_band]
            band_on = (r_on >= lo) & (r_on < hi)
            sec_on = np.rint((np.degrees(np.arctan2(x[on][band_on], y[on][band_on])) % 360) / 30).astype(int) % 12
            rate = np.bincount(s, minlength=12) / np.maximum(np.bincount(sec_on, minlength=12), 1)
            ring = float((rate > max(0.3, 2 * fail_bg(radial, band))).mean())
    if n_fail == 0:
        texture = "clean"
    elif clustered >= 0.6 and excess > 0.25:
        texture = "clustered"
    elif clustered <= 0.25 or excess < 0.1:
        texture = "scattered"
    else:
        texture = "mixed"
    return Geometry(
        n_dies=n_dies, n_fail=n_fail, fail_ratio=n_fail / n_dies,
        zone_fail_ratio=dict(zip(ZONES, zone_fail_ratio.tolist())),
        zone_share=dict(zip(ZONES, zone_share.tolist())),
        dominant_zone=ZONES[int(np.argmax(zone_share))] if n_fail else None,
        radial_profile=radial.tolist(), clock_share=sector_share.tolist(), dominant_clocks=dominant,
        angular_concentration=concentration, quadrant_share=dict(zip(QUADRANTS, quadrant.tolist())),
        regions=regions, clustered_fraction=float(clustered), neighbour_excess=excess,
        line_likeness=line, ring_likeness=ring, ring_radius=ring_r, texture=texture,
    )


def fail_bg(radial: np.ndarray, band: int) -> float:
    """Background fail rate: the median of the radial bands away from ``band``."""
    others = np.delete(radial, range(max(band - 1, 0), min(band + 2, len(radial))))
    return float(np.median(others)) if others.size else 0.0


FEATURE_NAMES: tuple[str, ...] = (
    ("fail_ratio",) + tuple(f"zone_fail_{z}" for z in ZONES) + tuple(f"zone_share_{z}" for z in ZONES)
    + tuple(f"radial_{i}" for i in range(RADIAL_BINS)) + ("angular_concentration",)
    + ("n_regions", "largest_area_fraction", "largest_r", "largest_elongation", "largest_angular_span",
       "clustered_fraction", "neighbour_excess", "line_likeness", "ring_likeness", "ring_radius")
)


def features(geom: Geometry) -> np.ndarray:
    """Fixed-length, rotation-invariant feature vector (see :data:`FEATURE_NAMES`) for clustering and classifiers."""
    big = geom.largest
    vals = [geom.fail_ratio, *geom.zone_fail_ratio.values(), *geom.zone_share.values(), *geom.radial_profile,
            geom.angular_concentration, min(len(geom.regions), 20) / 20.0,
            big.area_fraction if big else 0.0, big.r if big else 0.0,
            min(big.elongation, 20.0) / 20.0 if big else 0.0, big.angular_span_deg / 360.0 if big else 0.0,
            geom.clustered_fraction, geom.neighbour_excess, geom.line_likeness, geom.ring_likeness, geom.ring_radius]
    return np.asarray(vals, dtype=np.float64)
