"""What :mod:`wafersage.tasks.geometry.measure` measures on a map: :class:`Geometry` and its :class:`Region` list."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Region(BaseModel):
    """A connected group of failing dies (8-connectivity)."""

    model_config = ConfigDict(frozen=True)
    area: int
    area_fraction: float  # of all dies on the wafer
    x: float
    y: float
    r: float
    clock: int
    elongation: float  # sqrt(major / minor variance), dies counted as unit squares: ~length / width; 1 for a blob
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
    dominant_zone: str | None  # the zone whose dies fail most often (highest zone_fail_ratio); None when clean
    radial_profile: list[float]  # fail ratio in RADIAL_BINS equal bands of r
    clock_share: list[float]  # share of failing dies per clock sector, index 0 = 12 o'clock
    dominant_clocks: list[int]  # clock positions 1..12, strongest first; empty when not directional
    angular_concentration: float  # 0 uniform around the wafer .. 1 all failures (beyond r 0.2) in one direction
    quadrant_share: dict[str, float]
    regions: list[Region]  # largest first, area >= MIN_REGION_AREA, at most MAX_REGIONS
    clustered_fraction: float  # failing dies that sit in regions of >= 5 dies
    neighbour_excess: float  # how much more often fail dies neighbour fail dies than chance; 0 random
    line_likeness: float  # largest region: 1 for a thin straight line
    ring_likeness: float  # angular coverage of the strongest off-centre radial band, times how hollow it is inside
    ring_radius: float  # centre of that band, normalised
    texture: str  # "clustered", "scattered", "mixed" or "clean"

    @property
    def largest(self) -> Region | None:
        return self.regions[0] if self.regions else None
