"""Defect types from measured geometry alone: used when a map has no labels, and by ``wafersage validate-real``.

Transparent rules on :class:`~wafersage.tasks.geometry.measure.Geometry`, in this order:

1. no failing dies -> ``none``; most dies failing (fail ratio >= ``NEAR_FULL_MIN_FAIL``) -> ``Near-full`` (it
   occurs alone); failing dies that neighbour each other no more than chance (``neighbour_excess`` below
   ``UNSTRUCTURED_MAX_EXCESS``) make ``Random`` above the background fail level ``RANDOM_MIN_FAIL`` and ``none``
   below it when no sizeable region stands out;
2. whole-wafer patterns from the radial fail profile: a hollow band at mid-radius failing well above the centre
   and the band outside it -> ``Donut``; the outermost band failing far above the middle of the wafer, or a
   rim band covering most clock sectors (``ring_likeness``) -> ``Edge-Ring``; the innermost band failing far
   above the middle -> ``Center``;
3. each sizeable connected region (>= ``REGION_MIN_AREA`` dies) is then read on its own: hugging the rim within a
   limited arc -> ``Edge-Loc`` (unless an edge ring explains it); long and thin -> ``Scratch``; a compact patch off
   the centre and off the rim -> ``Loc`` (unless it lies in a donut's band);
4. nothing found: ``Random`` above the background level, else ``none``.

The thresholds are module constants tuned on generated maps only (``benchmarks/bench_infer.py`` prints the
per-class agreement); they are never tuned on held-out real maps.
"""
from __future__ import annotations

from .measure import Geometry
from .types import Region
from ..maps.wafer import LABELS

NEAR_FULL_MIN_FAIL = 0.5
RANDOM_MIN_FAIL = 0.145
RING_MIN_COVERAGE = 0.45
EDGE_RING_MIN_RADIUS = 0.8
DONUT_RADIUS = (0.2, 0.6)
UNSTRUCTURED_MAX_EXCESS = 0.04
NONE_MAX_REGION = 0.01
BAND_MIN_FAIL = 0.25  # a donut band's fail ratio
RIM_MIN_FAIL = 0.45  # the outermost band's fail ratio for an edge ring
CENTER_MIN_FAIL = 0.5  # the innermost band's fail ratio for a center pattern
PROFILE_CONTRAST = 2.0
REGION_MIN_AREA = 6
RIM_REGION_MIN_R = 0.55  # innermost die of a rim-hugging region
RIM_TOUCH_R = 0.9
EDGE_LOC_MAX_SPAN = 130.0
SCRATCH_MIN_ELONGATION = 3.0
LOC_MIN_FRACTION = 0.008
CENTER_REGION_MAX_R = 0.2


def _radial(geom: Geometry) -> set[str]:
    """Whole-wafer patterns read from the radial fail profile (10 bands, centre to rim) and the ring measure."""
    p = geom.radial_profile
    middle = sorted(p[3:7])[1:3]
    baseline = max(sum(middle) / 2, 0.01)  # median of the mid-wafer bands
    found = set()
    band = max(p[2:6])
    if band >= BAND_MIN_FAIL and band >= PROFILE_CONTRAST * max(p[0], min(p[6], p[7]), 0.01):
        found.add("Donut")
    rim_ring = geom.ring_likeness >= RING_MIN_COVERAGE and geom.ring_radius >= EDGE_RING_MIN_RADIUS
    if rim_ring or (p[9] >= RIM_MIN_FAIL and p[9] >= 1.5 * PROFILE_CONTRAST * baseline):
        found.add("Edge-Ring")
    if "Donut" not in found and p[0] >= CENTER_MIN_FAIL and p[0] >= 1.5 * PROFILE_CONTRAST * baseline:
        found.add("Center")
    return found


def _region_type(region: Region, whole: set[str]) -> str | None:
    """Type of one connected region, or None when it is noise or part of a whole-wafer pattern."""
    if region.area < REGION_MIN_AREA:
        return None
    inner, outer = region.extent_r
    if inner >= RIM_REGION_MIN_R and outer >= RIM_TOUCH_R:
        return None if "Edge-Ring" in whole or region.angular_span_deg > EDGE_LOC_MAX_SPAN else "Edge-Loc"
    if region.elongation >= SCRATCH_MIN_ELONGATION:
        return "Scratch"
    if region.r <= CENTER_REGION_MAX_R and inner <= 0.1:
        return None if "Donut" in whole else "Center"
    if region.area_fraction < LOC_MIN_FRACTION or outer >= RIM_TOUCH_R + 0.05:
        return None
    if "Donut" in whole and (DONUT_RADIUS[0] <= region.r <= DONUT_RADIUS[1] or (inner >= 0.1 and outer <= 0.75)):
        return None
    return "Loc"


def infer_types(geom: Geometry) -> list[str]:
    """Defect types read from geometry, in canonical label order; ``["none"]`` for a normal wafer."""
    if geom.n_fail == 0:
        return ["none"]
    if geom.fail_ratio >= NEAR_FULL_MIN_FAIL:
        return ["Near-full"]
    if geom.neighbour_excess < UNSTRUCTURED_MAX_EXCESS:
        if geom.fail_ratio >= RANDOM_MIN_FAIL:
            return ["Random"]
        if geom.largest is None or geom.largest.area_fraction < NONE_MAX_REGION:
            return ["none"]
    whole = _radial(geom)
    found = set(whole)
    for region in geom.regions[:8]:
        kind = _region_type(region, whole)
        if kind:
            found.add(kind)
    if not found:
        found.add("Random" if geom.fail_ratio >= RANDOM_MIN_FAIL else "none")
    return [label for label in LABELS if label in found]
