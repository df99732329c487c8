"""`wafersage export hf`: one Parquet per split with image bytes and rubric JSON, loadable by `datasets`."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from wafersage.cli import main
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.synth.build import SynthConfig, build_benchmark

CONFIG = {
    "name": "export-me", "seed": 3,
    "source": {"kind": "generated", "n": 16, "size": [26, 26], "mixtures": True, "balanced": True},
    "splits": {"train": 0.5, "val": 0.0, "test": 0.5}, "image_size": 52,
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("exp")
    bench = build_benchmark(SynthConfig.model_validate(CONFIG), root / "bench", progress=False)
    result = CliRunner().invoke(main, ["export", "hf", "--bench", str(bench), "--out", str(root / "hf")])
    assert result.exit_code == 0, result.output
    return bench, root / "hf"


def test_one_parquet_per_split_with_every_item(exported):
    bench_dir, out = exported
    bench = Benchmark.load(bench_dir)
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet"]
    for split in ("train", "test"):
        table = pq.read_table(out / "data" / f"{split}-00000-of-00001.parquet")
        items = bench.items(split)
        assert table.num_rows == len(items) > 0
        rows = table.to_pylist()
        assert [r["id"] for r in rows] == [it.id for it in items]
        first, item = rows[0], items[0]
        assert first["image"]["bytes"] == bench.image_path(item).read_bytes()
        assert (first["question"], first["answer"], first["labels"]) == (item.question, item.answer, item.labels)
        assert json.loads(first["rubric"])["wafer_id"] == item.wafer_id
    card = (out / "README.md").read_text()
    assert "path: data/test-00000-of-00001.parquet" in card and bench.hash in card


def test_loads_with_datasets(exported, tmp_path):
    datasets = pytest.importorskip("datasets", reason="the 'train' extra (datasets) is not installed")
    _, out = exported
    files = {s: str(out / "data" / f"{s}-00000-of-00001.parquet") for s in ("train", "test")}
    loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "cache"))
    test = loaded["test"]
    assert isinstance(test.features["image"], datasets.Image)
    row = test[0]
    assert row["image"].size == Image.open(io.BytesIO(pq.read_table(files["test"]).to_pylist()[0]["image"]["bytes"])).size
    assert row["category"] in {"defect_type", "spatial", "morphology", "root_cause", "consistency"}
    assert len(loaded["train"]) + len(test) == len(Benchmark.load(exported[0]).items())


def test_tampered_benchmark_is_refused(exported, tmp_path):
    bench_dir, _ = exported
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in bench_dir.rglob("*"):
        if path.is_file():
            target = copy / path.relative_to(bench_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    with open(copy / "items.jsonl", "a") as fh:
        fh.write("\n")
    result = CliRunner().invoke(main, ["export", "hf", "--bench", str(copy), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "items.jsonl changed" in result.output
