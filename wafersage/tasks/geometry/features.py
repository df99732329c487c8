"""A map's measured geometry as a fixed-length feature vector, for clustering (Stage 0a) and classifiers."""
from __future__ import annotations

import numpy as np

from .measure import RADIAL_BINS, ZONES, Geometry

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
