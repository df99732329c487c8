"""The project's own map format: compressed ``.npz`` shards plus ``index.jsonl`` (one metadata line per map).

Each shard holds its maps' grids under keys ``m0``, ``m1``… (grids keep their own shape). A map's index line has
its metadata (see :meth:`WaferMap.metadata`) plus ``shard`` and ``key``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .wafer import PatternTruth, WaferMap, WaferMapError

INDEX = "index.jsonl"


def write_store(maps: Iterable[WaferMap], out: str | Path, shard_size: int = 5000) -> int:
    """Write maps as shards; returns the count. Deterministic bytes for the same maps."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    count, shard, batch = 0, 0, {}
    with open(out / INDEX, "w", encoding="utf-8") as index:
        for wafer in maps:
            key = f"m{len(batch)}"
            batch[key] = wafer.grid
            meta = wafer.metadata() | {"shard": f"shard-{shard:05d}.npz", "key": key}
            index.write(json.dumps(meta, sort_keys=True) + "\n")
            count += 1
            if len(batch) == shard_size:
                _write_shard(out / f"shard-{shard:05d}.npz", batch)
                shard, batch = shard + 1, {}
        if batch:
            _write_shard(out / f"shard-{shard:05d}.npz", batch)
    return count


def _write_shard(path: Path, grids: dict[str, np.ndarray]) -> None:
    # np.savez_compressed writes zip entries with a fixed timestamp, so bytes are reproducible.
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **grids)


def read_store(path: str | Path) -> Iterator[WaferMap]:
    """Stream the maps of a store folder, one shard in memory at a time."""
    path = Path(path)
    index_path = path / INDEX
    if not index_path.exists():
        raise WaferMapError(f"{path}: not a wafersage map store (no {INDEX}); create one with 'wafersage maps import'")
    shard_name, shard = None, None
    with open(index_path, encoding="utf-8") as index:
        for lineno, line in enumerate(index, 1):
            try:
                meta = json.loads(line)
                if meta["shard"] != shard_name:
                    shard_name, shard = meta["shard"], np.load(path / meta["shard"])
                grid = shard[meta["key"]]
            except (json.JSONDecodeError, KeyError, OSError) as exc:
                raise WaferMapError(
                    f"{index_path}:{lineno}: broken index line or missing shard ({exc}); re-run the import"
                ) from exc
            yield WaferMap(
                grid=grid, id=meta["id"], source=meta["source"], labels=tuple(meta["labels"]), lot=meta["lot"],
                wafer_index=meta["wafer_index"], die_size=meta["die_size"], split=meta["split"],
                truth=tuple(PatternTruth(t["pattern"], t["params"]) for t in meta.get("truth", [])),
                extra=meta.get("extra", {}),
            )
