"""The wafer map record: an immutable die grid in the WM-811K encoding plus its metadata."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OFF, PASS, FAIL = 0, 1, 2

#: Canonical defect-pattern names (WM-811K spelling). ``none`` means a normal wafer.
PATTERNS: tuple[str, ...] = (
    "Center", "Donut", "Edge-Loc", "Edge-Ring", "Loc", "Near-full", "Random", "Scratch",
)
LABELS: tuple[str, ...] = PATTERNS + ("none",)

_ALIASES = {name.lower().replace("-", "").replace("_", "").replace(" ", ""): name for name in LABELS}
_ALIASES.update({"normal": "none", "nearfull": "Near-full", "": "none"})
_CANONICAL = frozenset(LABELS)


class WaferMapError(ValueError):
    """A wafer map or its metadata is invalid; the message names the record and the fix."""


def canonical_label(name: str, *, record: str = "?") -> str:
    """Map spellings such as ``Edge_Loc``, ``edge-loc`` or ``Near_Full`` to the canonical label."""
    if type(name) is str and name in _CANONICAL:  # the common case, without normalising
        return name
    key = str(name).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    try:
        return _ALIASES[key]
    except KeyError:
        close = dict.fromkeys(_ALIASES[k] for k in difflib.get_close_matches(key, _ALIASES, n=3, cutoff=0.6))
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise WaferMapError(
            f"record {record}: unknown defect label {name!r}.{hint} Use one of {', '.join(LABELS)}"
        ) from None


@dataclass(frozen=True)
class PatternTruth:
    """Ground truth of one generated pattern component.

    Coordinates are normalised: the wafer centre is (0, 0), the wafer radius is 1, ``x`` grows to the right and
    ``y`` grows upwards. Angles are degrees counter-clockwise from the +x axis; clock positions run 1–12
    clockwise from 12 o'clock.
    """

    pattern: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class WaferMap:
    """One wafer: a read-only ``uint8`` grid with values 0 (off-wafer), 1 (pass die), 2 (fail die)."""

    grid: np.ndarray
    id: str
    source: str = "generated"
    labels: tuple[str, ...] = ()
    lot: str | None = None
    wafer_index: int | None = None
    die_size: float | None = None
    split: str | None = None
    truth: tuple[PatternTruth, ...] = ()
    #: source-specific metadata kept as given (e.g. ``{"lswmd_row": "19"}`` from an image folder's labels.csv)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        grid = self.grid
        where = f"wafer map {self.id!r} (source {self.source})"
        if not isinstance(grid, np.ndarray):
            raise WaferMapError(f"{where}: grid must be a numpy array, got {type(grid).__name__}")
        if grid.ndim != 2:
            raise WaferMapError(f"{where}: grid must be 2-D (rows x columns), got shape {grid.shape}")
        if grid.dtype != np.uint8:
            if not np.issubdtype(grid.dtype, np.integer):
                raise WaferMapError(
                    f"{where}: grid dtype {grid.dtype} is not an integer type; pass die codes 0/1/2 as uint8"
                )
            if grid.size and (grid.min() < 0 or grid.max() > 255):
                raise WaferMapError(f"{where}: values outside 0/1/2; WM-811K encoding is 0 off, 1 pass, 2 fail")
            grid = grid.astype(np.uint8)
        if grid.size == 0:
            raise WaferMapError(f"{where}: grid is empty (shape {grid.shape})")
        if grid.max() > FAIL:
            values = sorted(set(np.unique(grid[grid > FAIL]).tolist()))[:5]
            raise WaferMapError(
                f"{where}: values {values} outside {{0,1,2}}; WM-811K encoding is 0 off-wafer, 1 pass, 2 fail"
            )
        if not np.count_nonzero(grid):  # all cells OFF
            raise WaferMapError(f"{where}: empty wafer — no die on it (all cells are 0)")
        labels = tuple(canonical_label(lbl, record=self.id) for lbl in self.labels)
        if "none" in labels and len(labels) > 1:
            labels = tuple(lbl for lbl in labels if lbl != "none")
        if grid is self.grid:
            grid = grid.copy()
        grid.setflags(write=False)
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "labels", labels)

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape  # type: ignore[return-value]

    @property
    def label_text(self) -> str:
        """Labels joined with '+', e.g. ``Center+Scratch``; ``none`` for a normal wafer, ``unlabeled`` if unknown."""
        return "+".join(self.labels) if self.labels else "unlabeled"

    def metadata(self) -> dict[str, Any]:
        """Everything but the grid, JSON-serialisable."""
        return {
            "id": self.id, "source": self.source, "labels": list(self.labels), "lot": self.lot,
            "wafer_index": self.wafer_index, "die_size": self.die_size, "split": self.split,
            "shape": list(self.shape),
            "truth": [{"pattern": t.pattern, "params": t.params} for t in self.truth],
            "extra": dict(self.extra),
        }
