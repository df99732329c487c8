"""`synth --workers N`: the per-map work in N processes gives the bytes of one process (same manifest hash)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.generate.generator import generate_maps
from wafersage.tasks.maps.store import write_store
from wafersage.tasks.synth import chunks
from wafersage.tasks.synth.build import SynthConfig, SynthConfigError, build_benchmark

SMALL = {
    "name": "workers", "version": "1", "seed": 3,
    "source": {"kind": "generated", "n": 150, "size": None, "mixtures": True, "balanced": True},
    "cleaning": {"knn_k": 5, "min_class_size": 6, "per_class_cap": 3},
    "splits": {"train": 0.5, "val": 0.2, "test": 0.3},
    "image_size": 32,
}


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Chunks of 48 maps in parts of 16, so 150 maps make 4 chunks and 10 parts (workers inherit it: fork)."""
    monkeypatch.setattr(chunks, "CHUNK_MAPS", 48)
    monkeypatch.setattr(chunks, "PART_MAPS", 16)


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_and_three_workers_build_the_bytes_of_one(tmp_path):
    one = build_benchmark(SynthConfig.model_validate(SMALL), tmp_path / "one", progress=False)
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    result = CliRunner().invoke(main, ["synth", "--config", str(config), "--out", str(tmp_path / "two"),
                                       "--workers", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    three = build_benchmark(SynthConfig.model_validate(SMALL), tmp_path / "three", progress=False, workers=3)
    assert _digests(tmp_path / "two") == _digests(one) == _digests(three)
    assert Benchmark.load(tmp_path / "two").hash == Benchmark.load(one).hash
    manifest = Benchmark.load(one).manifest
    assert manifest["counts"]["maps_read"] == 150 and manifest["counts"]["maps_flagged"] >= 0
    assert 0 < manifest["counts"]["wafers"] < 150  # cleaning capped classes: a global step over every chunk
    assert len(list((one / "maps").glob("shard-*.npz"))) > 1 and not (tmp_path / "two" / chunks.WORK).exists()


def test_imported_maps_build_the_same_bytes_with_workers(tmp_path):
    write_store(generate_maps(100, 11, size=(30, 30)), tmp_path / "store")
    config = SynthConfig.model_validate(SMALL | {"source": {"kind": "import", "path": str(tmp_path / "store"),
                                                            "format": "store"}})
    one = build_benchmark(config, tmp_path / "one", progress=False)
    two = build_benchmark(config, tmp_path / "two", progress=False, workers=2)
    assert _digests(one) == _digests(two) and Benchmark.load(two).manifest["sources"][0]["maps_read"] == 100


def test_workers_refuse_a_model_backed_build_and_a_failed_build_leaves_nothing(tmp_path):
    config = SynthConfig.model_validate(SMALL | {"describer": "model"})
    with pytest.raises(SynthConfigError, match="--workers 2 runs the geometry path.*--workers 1"):
        build_benchmark(config, tmp_path / "m", progress=False, workers=2, describe_with=lambda p, png: "")
    broken = SynthConfig.model_validate(SMALL | {"source": {"kind": "import", "path": str(tmp_path / "nothing"),
                                                            "format": "store"}})
    with pytest.raises(ValueError, match="not a wafersage map store"):
        build_benchmark(broken, tmp_path / "b", progress=False, workers=2)
    assert not (tmp_path / "b.partial").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("balanced", [False, True])
def test_a_range_of_generated_maps_is_the_same_maps_as_in_the_whole_stream(balanced):
    def described(maps):
        return [(m.id, m.labels, m.grid.tobytes()) for m in maps]

    whole = list(generate_maps(30, 4, balanced=balanced))
    assert described(generate_maps(30, 4, balanced=balanced, start=17)) == described(whole[17:])
    assert [m.labels for m in whole[:3]] != [m.labels for m in generate_maps(3, 4, balanced=not balanced)]
