"""The project's own map format: compressed ``.npz`` shards plus ``index.jsonl`` (one metadata line per map).

Each shard holds its maps' grids under keys ``m0``, ``m1``… (grids keep their own shape). A map's index line has
its metadata (see :meth:`WaferMap.metadata`) plus ``shard`` and ``key``.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .untrusted import safe_join
from .wafer import PatternTruth, WaferMap, WaferMapError

INDEX = "index.jsonl"


def write_store(maps: Iterable[WaferMap], out: str | Path, shard_size: int = 5000, *,
                compress_level: int = 6) -> int:
    """Write maps as shards; returns the count. Deterministic bytes for the same maps and ``compress_level``.

    ``compress_level`` is the shards' zlib level (1 fastest … 9 smallest); 6 gives the bytes of
    ``np.savez_compressed``. Any level reads back the same way.
    """
    _check_level(compress_level)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    count, shard, batch = 0, 0, []
    with open(out / INDEX, "w", encoding="utf-8") as index:
        for wafer in maps:
            batch.append(wafer)
            count += 1
            if len(batch) == shard_size:
                index.writelines(write_shard(batch, out, f"shard-{shard:05d}.npz", compress_level=compress_level))
                shard, batch = shard + 1, []
        if batch:
            index.writelines(write_shard(batch, out, f"shard-{shard:05d}.npz", compress_level=compress_level))
    return count


def write_shard(maps: Sequence[WaferMap], out: Path, name: str, *, compress_level: int = 6) -> list[str]:
    """Write one shard ``out/name`` of ``maps``; returns their ``index.jsonl`` lines (newline-terminated), for the
    caller to write in order. A store may be written shard by shard, by several processes."""
    _check_level(compress_level)
    _write_shard(out / name, {f"m{k}": wafer.grid for k, wafer in enumerate(maps)}, compress_level)
    return [json.dumps(wafer.metadata() | {"shard": name, "key": f"m{k}"}, sort_keys=True) + "\n"
            for k, wafer in enumerate(maps)]


def _check_level(compress_level: int) -> None:
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level must be 0..9 (zlib levels), got {compress_level}")


def _write_shard(path: Path, grids: dict[str, np.ndarray], compress_level: int) -> None:
    # What np.savez_compressed does, with the zlib level as a choice. Zip entries opened by name carry a fixed
    # timestamp (1980-01-01), so bytes are reproducible.
    with open(path, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED,
                                                 compresslevel=compress_level, allowZip64=True) as archive:
        for key, grid in grids.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(grid), allow_pickle=False)


def read_store(path: str | Path) -> Iterator[WaferMap]:
    """Stream the maps of a store folder, one shard in memory at a time. Shard paths must lie inside the folder
    (a line naming another file is refused with the line and the path); shards never unpickle."""
    path = Path(path)
    if not (path / INDEX).exists():
        raise WaferMapError(f"{path}: not a wafersage map store (no {INDEX}); create one with 'wafersage maps import'")
    index_path = safe_join(path, INDEX, where=str(path), error=WaferMapError)
    shard_name, shard = None, None
    with open(index_path, encoding="utf-8") as index:
        for lineno, line in enumerate(index, 1):
            try:
                meta = json.loads(line)
                if meta["shard"] != shard_name:
                    where = f"{index_path}:{lineno}: shard of map {meta.get('id')!r}"
                    shard = np.load(safe_join(path, meta["shard"], where=where, error=WaferMapError),
                                    allow_pickle=False)
                    shard_name = meta["shard"]
                grid = shard[meta["key"]]
            except (json.JSONDecodeError, KeyError, TypeError, OSError) as exc:
                raise WaferMapError(
                    f"{index_path}:{lineno}: broken index line or missing shard ({exc}); re-run the import"
                ) from exc
            yield WaferMap(
                grid=grid, id=meta["id"], source=meta["source"], labels=tuple(meta["labels"]), lot=meta["lot"],
                wafer_index=meta["wafer_index"], die_size=meta["die_size"], split=meta["split"],
                truth=tuple(PatternTruth(t["pattern"], t["params"]) for t in meta.get("truth", [])),
                extra=meta.get("extra", {}),
            )
