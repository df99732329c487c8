"""The eight defect patterns and the wafer's background, drawn on a normalised wafer frame.

Every drawer takes a :class:`Frame` (normalised coordinates of each cell, see :mod:`wafersage.tasks.geometry.measure`)
and a numpy ``Generator`` and returns a boolean mask of failing dies (on-wafer cells only) plus the ground-truth
parameters it drew.
Coordinates follow :class:`wafersage.tasks.maps.wafer.PatternTruth`: centre (0, 0), wafer radius 1, x right, y up,
angles in degrees counter-clockwise from +x, clock positions 1–12 clockwise from 12.

Each pattern's parameters are drawn uniformly from :data:`PARAMETER_RANGES` (the table documents every one).
Fuzzy boundaries use a logistic fall-off of width ``softness`` (normalised radius units), so blobs and rings
have ragged edges like real maps instead of perfect discs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..geometry.measure import clock_of, frame_of, zone_of


@dataclass(frozen=True)
class Range:
    """A parameter drawn uniformly from ``[low, high]``; ``help`` says what it controls."""

    low: float
    high: float
    help: str


#: pattern -> parameter -> range. ``background`` holds the noise every map carries.
PARAMETER_RANGES: dict[str, dict[str, Range]] = {
    "background": {
        "clean_rate": Range(0.002, 0.05, "fail rate of random isolated dies on a clean-fab wafer"),
        "noisy_rate": Range(0.05, 0.12, "fail rate on a noisy wafer (MixedWM38-like speckle)"),
        "noisy_share": Range(0.35, 0.35, "share of maps drawn with the noisy rate"),
        "rim_fail": Range(0.0, 0.15, "extra fail rate of the outermost die ring (edge dies fail more often)"),
    },
    "Center": {
        "offset": Range(0.0, 0.07, "distance of the blob's centre from the wafer centre"),
        "radius": Range(0.12, 0.34, "blob radius"),
        "density": Range(0.85, 1.0, "fail probability inside the blob"),
        "softness": Range(0.015, 0.05, "width of the blob's ragged boundary"),
    },
    "Donut": {
        "r_inner": Range(0.22, 0.42, "inner radius of the annulus (the hole)"),
        "width": Range(0.15, 0.35, "annulus width; r_outer = r_inner + width, at most 0.85"),
        "density": Range(0.75, 1.0, "fail probability inside the annulus"),
        "softness": Range(0.015, 0.05, "width of the ragged boundaries"),
        "unevenness": Range(0.0, 0.3, "how much density drops on one side (0 uniform ring)"),
    },
    "Edge-Ring": {
        "width": Range(0.05, 0.18, "ring width inward from the rim (at least about one die)"),
        "density": Range(0.7, 1.0, "fail probability inside the ring"),
        "softness": Range(0.01, 0.04, "width of the ring's ragged inner boundary"),
        "unevenness": Range(0.0, 0.4, "how much density drops on one side (0 uniform ring)"),
    },
    "Edge-Loc": {
        "angle_deg": Range(0.0, 360.0, "direction of the arc's middle, counter-clockwise from +x"),
        "arc_deg": Range(30.0, 120.0, "angular extent of the arc along the rim"),
        "depth": Range(0.12, 0.4, "how far the patch reaches inward from the rim at its middle"),
        "density": Range(0.7, 1.0, "fail probability inside the patch"),
        "softness": Range(0.02, 0.05, "width of the ragged inner boundary"),
    },
    "Loc": {
        "r": Range(0.28, 0.75, "distance of the cluster's centre from the wafer centre"),
        "angle_deg": Range(0.0, 360.0, "direction of the cluster's centre, counter-clockwise from +x"),
        "radius": Range(0.09, 0.22, "cluster radius (geometric mean of its two semi-axes)"),
        "aspect": Range(1.0, 1.8, "major/minor axis ratio of the elliptic cluster"),
        "tilt_deg": Range(0.0, 180.0, "major-axis direction of the ellipse"),
        "density": Range(0.75, 1.0, "fail probability inside the cluster"),
        "softness": Range(0.015, 0.04, "width of the ragged boundary"),
    },
    "Scratch": {
        "angle_deg": Range(0.0, 180.0, "line direction, counter-clockwise from +x"),
        "length": Range(0.6, 1.6, "drawn length before clipping to the wafer (diameter is 2), at least 8 dies"),
        "mid_r": Range(0.0, 0.6, "distance of the line's midpoint from the centre"),
        "bow": Range(-0.06, 0.06, "sideways bend of the line's middle, as a fraction of its length"),
        "density": Range(0.85, 1.0, "fail probability along the line (gaps below 1)"),
        "thick_share": Range(0.0, 0.15, "share of line dies with a failing side neighbour"),
    },
    "Random": {
        "density": Range(0.1, 0.45, "fail probability of every die, uniform over the wafer"),
    },
    "Near-full": {
        "density": Range(0.6, 0.97, "fail probability of every die"),
    },
}

#: (name, low, high − low) of every parameter per pattern, for drawing all parameters with one call
_BOUNDS = {pattern: [(name, r.low, r.high - r.low) for name, r in ranges.items()]
           for pattern, ranges in PARAMETER_RANGES.items()}
#: the outermost scratch point sits this far inside the rim
SCRATCH_MAX_R = 0.97
TWO_PI = 2 * math.pi


@dataclass(frozen=True)
class Frame:
    """Normalised coordinates of every cell of one wafer grid, and its on-wafer mask."""

    x: np.ndarray
    y: np.ndarray
    r: np.ndarray
    on: np.ndarray
    centre: tuple[float, float]  # (row, column) of the wafer centre
    scale: tuple[float, float]  # dies per unit of normalised radius along (y, x)
    theta: np.ndarray  # angle of every cell, radians counter-clockwise from +x
    rim: np.ndarray  # the outermost die ring (r >= 1 - 1.2 dies), where background failures are likelier

    @classmethod
    def of(cls, on: np.ndarray) -> "Frame":
        """The frame of an on-wafer mask, read-only (frames are shared by all maps with one outline). Every array
        is C-contiguous (drawers index them flat); numpy works on them about twice as fast as on ``frame_of``'s
        broadcast views."""
        x, y, r, on, centre, scale = frame_of(on)
        die = 1.0 / min(scale)  # as the ``die`` property
        frame = cls(x=np.ascontiguousarray(x), y=np.ascontiguousarray(y), r=r, on=np.ascontiguousarray(on),
                    centre=centre, scale=scale, theta=np.arctan2(y, x), rim=r >= 1.0 - 1.2 * die)
        for array in (frame.x, frame.y, frame.r, frame.on, frame.theta, frame.rim):
            array.setflags(write=False)
        return frame

    @property
    def die(self) -> float:
        """Size of one die in normalised units (the larger of the two axes)."""
        return 1.0 / min(self.scale)


def _twice_logistic(distance: np.ndarray, softness: float) -> np.ndarray:
    """2 · logistic(distance / softness) = 1 + tanh(distance / (2 · softness)), the fall-off of fuzzy boundaries.

    Callers fold the halving into their density: halving is exact in floating point, so ``density * 0.5 * this``
    has the values of ``density * (0.5 * (1 + tanh(0.5 * (distance / softness))))``, in two array operations fewer.
    """
    return 1.0 + np.tanh(distance / (2 * softness))


def _draw(pattern: str, rng: np.random.Generator) -> dict[str, float]:
    """All of ``pattern``'s parameters at once, each uniform in its range."""
    bounds = _BOUNDS[pattern]
    return {name: low + span * u for (name, low, span), u in zip(bounds, rng.random(len(bounds)).tolist())}


def _angle(rng: np.random.Generator) -> float:
    """A uniform angle in [0, 2π): the value of ``rng.uniform(0, 2π)`` (which numpy computes as 0 + 2π·u) without
    its ~1 µs of argument handling."""
    return rng.random() * TWO_PI


def _bernoulli(probability: np.ndarray, frame: Frame, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(frame.r.shape) < probability) & frame.on


def _uneven_bernoulli(probability: np.ndarray, amount: float, frame: Frame, rng: np.random.Generator) -> np.ndarray:
    """``_bernoulli(probability · factor)`` with a density factor 1 − amount·(1 + cos(θ − side))/2 that dips by
    ``amount`` on one random side of the wafer.

    The factor is at most 1, so a die whose draw is not below ``probability`` cannot fail: the (slow) cosine is
    evaluated at the other dies only, with the same values, draws and result as over the whole grid.
    """
    side = _angle(rng)
    draw = rng.random(frame.r.shape)
    mask = (draw < probability) & frame.on
    cells = np.flatnonzero(mask)
    factor = 1.0 - amount * 0.5 * (1.0 + np.cos(frame.theta.ravel()[cells] - side))
    mask.ravel()[cells] = draw.ravel()[cells] < probability.ravel()[cells] * factor
    return mask


def _angular_distance(theta: np.ndarray, mid: float) -> np.ndarray:
    """``abs((theta − mid + π) % 2π − π)``, the angle between each cell and ``mid`` in [0, π], twice as fast:
    numpy's floor modulo is ``fmod`` plus 2π where that is negative (it differs only in the sign of a zero, which
    the subtraction of π then drops)."""
    shifted = np.fmod(theta - mid + np.pi, TWO_PI)
    np.add(shifted, TWO_PI, out=shifted, where=shifted < 0)
    shifted -= np.pi
    return np.abs(shifted, out=shifted)


def background(frame: Frame, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Isolated random failures everywhere plus extra failures on the outermost die ring."""
    p = _draw("background", rng)
    rate = p["noisy_rate"] if rng.random() < p["noisy_share"] else p["clean_rate"]
    probability = np.where(frame.rim, rate + p["rim_fail"], rate)
    return _bernoulli(probability, frame, rng), {"background": round(rate, 4), "rim_fail": round(p["rim_fail"], 4)}


def center(frame: Frame, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    p = _draw("Center", rng)
    direction = _angle(rng)
    cx, cy = p["offset"] * math.cos(direction), p["offset"] * math.sin(direction)
    radius = max(p["radius"], 1.5 * frame.die)
    d = np.hypot(frame.x - cx, frame.y - cy)
    mask = _bernoulli(p["density"] * 0.5 * _twice_logistic(radius - d, p["softness"]), frame, rng)
    return mask, {"x": cx, "y": cy, "radius": radius, "density": p["density"]}


def donut(frame: Frame, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    p = _draw("Donut", rng)
    r_in = max(p["r_inner"], 2.5 * frame.die)
    r_out = min(r_in + max(p["width"], 2 * frame.die), 0.85)
    inside = _twice_logistic(frame.r - r_in, p["softness"]) * _twice_logistic(r_out - frame.r, p["softness"])
    mask = _uneven_bernoulli(p["density"] * 0.25 * inside, p["unevenness"], frame, rng)
    return mask, {"r_inner": r_in, "r_outer": r_out, "density": p["density"]}


def edge_ring(frame: Frame, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    p = _draw("Edge-Ring", rng)
    width = max(p["width"], 1.2 * frame.die)
    inner = _twice_logistic(frame.r - (1.0 - width), p["softness"])
    mask = _uneven_bernoulli(p["density"] * 0.5 * inner, p["unevenness"], frame, rng)
    return mask, {"width": width, "density": p["density"]}


def edge_loc(frame: Frame, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    p = _draw("Edge-Loc", rng)
    mid = math.radians(p["angle_deg"])
    half = math.radians(p["arc_deg"]) / 2
    off = _angular_distance(frame.theta, mid)
    depth = max(p["depth"], 2.5 * frame.die)
    arc = np.flatnonzero((off < half) & frame.on)  # only dies within the arc can fail
    # a lens hugging the rim; within the arc off / half < 1, so the root's argument lies in (0, 1]
    reach = depth * np.sqrt(1.0 - (off.ravel()[arc] / half) ** 2)
    inner = _twice_logistic(frame.r.ravel()[arc] - (1.0 - reach), p["softness"])
    mask = np.zeros(frame.on.shape, dtype=bool)
    mask.ravel()[arc] = rng.random(frame.r.shape).ravel()[arc] < p["density"] * 0.5 * inner
    ux, uy = math.cos(mid), math.sin(mid)
    return mask, {"clock": int(clock_of(ux, uy)), "angle_deg": p["angle_deg"], "arc_deg": p["arc_deg"],
                  "depth": depth, "density": p["density"]}


def loc(frame: Frame, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    p = _draw("Loc", rng)
    theta = math.radians(p["angle_deg"])
    cx, cy = p["r"] * math.cos(theta), p["r"] * math.sin(theta)
    radius = max(p["radius"], 1.5 * frame.die)
    tilt = math.radians(p["tilt_deg"])
    dx, dy = frame.x - cx, frame.y - cy
    cos_t, sin_t = math.cos(tilt), math.sin(tilt)
    along, across = dx * cos_t + dy * sin_t, dy * cos_t - dx * sin_t
    a, b = radius * math.sqrt(p["aspect"]), radius / math.sqrt(p["aspect"])
    d = np.sqrt((along / a) ** 2 + (across / b) ** 2)  # 1 on the ellipse
    mask = _bernoulli(p["density"] * 0.5 * _twice_logistic((1.0 - d) * radius, p["softness"]), frame, rng)
    return mask, {"x": cx, "y": cy, "radius": radius, "clock": int(clock_of(cx, cy)), "zone": zone_of(p["r"]),
                  "density": p["density"]}


def scratch(frame: Frame, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """A thin, slightly bent line of failing dies, clipped to stay inside the rim. (Scalars in plain floats:
    numpy's per-call cost would dominate the few dozen points of a line.)"""
    p = _draw("Scratch", rng)
    phi = math.radians(p["angle_deg"])
    ux, uy = math.cos(phi), math.sin(phi)  # direction; the normal is (-uy, ux)
    beta = _angle(rng)
    mx, my = p["mid_r"] * math.cos(beta), p["mid_r"] * math.sin(beta)
    half = p["length"] / 2
    t0, t1 = _clip_to_disc(mx, my, ux, uy, -half, half, SCRATCH_MAX_R)
    length = max(t1 - t0, 8 * frame.die)
    t0, t1 = (t0 + t1 - length) / 2, (t0 + t1 + length) / 2
    n_points = max(int(length / frame.die * 4), 8)
    steps = np.arange(n_points) / (n_points - 1)
    along = t0 + steps * (t1 - t0)
    bend = p["bow"] * length * 4 * steps * (1 - steps)  # a parabola through both ends
    xs, ys = mx + along * ux - bend * uy, my + along * uy + bend * ux
    cells = _to_cells(xs, ys, frame)
    keep = frame.on.ravel()[cells] & (rng.random(cells.size) < p["density"])
    mask = np.zeros(frame.on.shape, dtype=bool)
    mask.ravel()[cells[keep]] = True
    thick = rng.random(cells.size) < p["thick_share"]
    rows, cols = np.divmod(cells[thick], frame.on.shape[1])
    step_row, step_col = round(-ux), round(-uy)  # (row, col) step of the normal direction (rows grow downwards)
    last_row, last_col = frame.on.shape[0] - 1, frame.on.shape[1] - 1
    mask[np.minimum(np.maximum(rows + step_row, 0), last_row),
         np.minimum(np.maximum(cols + step_col, 0), last_col)] = True
    mask &= frame.on
    x0, y0, x1, y1 = float(xs[0]), float(ys[0]), float(xs[-1]), float(ys[-1])
    return mask, {"angle_deg": p["angle_deg"], "length": math.hypot(x1 - x0, y1 - y0),
                  "x0": x0, "y0": y0, "x1": x1, "y1": y1, "density": p["density"]}


def _clip_to_disc(mx: float, my: float, ux: float, uy: float, t0: float, t1: float,
                  radius: float) -> tuple[float, float]:
    """Clip the segment ``(mx, my) + t·(ux, uy)`` (t in [t0, t1]) to the disc of ``radius``; the midpoint lies
    inside it."""
    b = mx * ux + my * uy
    c = mx * mx + my * my - radius**2
    root = math.sqrt(max(b * b - c, 0.0))
    return max(t0, -b - root), min(t1, -b + root)


def _to_cells(xs: np.ndarray, ys: np.ndarray, frame: Frame) -> np.ndarray:
    """Flat (row-major) grid indices of normalised points, clipped to the grid, each cell once in drawing order."""
    last_row, last_col = frame.on.shape[0] - 1, frame.on.shape[1] - 1
    rows = np.minimum(np.maximum(np.rint(frame.centre[0] - ys * frame.scale[0]), 0), last_row).astype(np.intp)
    cols = np.minimum(np.maximum(np.rint(frame.centre[1] + xs * frame.scale[1]), 0), last_col).astype(np.intp)
    # a dict keeps each cell's first visit, in order: cheaper than np.unique(return_index) and a sort here
    return np.fromiter(dict.fromkeys((rows * frame.on.shape[1] + cols).tolist()), np.intp)


def random_(frame: Frame, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    p = _draw("Random", rng)
    return _bernoulli(p["density"], frame, rng), {"density": p["density"]}


def near_full(frame: Frame, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    p = _draw("Near-full", rng)
    return _bernoulli(p["density"], frame, rng), {"density": p["density"]}


Drawer = Callable[[Frame, np.random.Generator], "tuple[np.ndarray, dict[str, Any]]"]

#: canonical pattern name -> its drawer
DRAWERS: dict[str, Drawer] = {
    "Center": center, "Donut": donut, "Edge-Loc": edge_loc, "Edge-Ring": edge_ring, "Loc": loc,
    "Near-full": near_full, "Random": random_, "Scratch": scratch,
}
