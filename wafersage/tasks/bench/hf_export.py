"""Export a benchmark folder in the Hugging Face ``datasets`` layout: one Parquet file per split plus a card.

Layout::

    README.md                          dataset card; its YAML header maps each split to its file
    data/<split>-00000-of-00001.parquet  one row per VQA item

Columns: ``id, wafer_id, image {bytes, path}, question, answer, category, dimension, difficulty, labels,
qa_index, expected_yes, rubric`` (the wafer's rubric as JSON). The schema carries the ``huggingface`` metadata
key, so ``datasets.load_dataset("parquet", ...)`` decodes ``image`` as an Image feature. Only pyarrow (a core
dependency) is used; ``datasets`` is not needed to write.
"""
from __future__ import annotations

import json
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq

from .folder import Benchmark, BenchmarkError
from .schema import SPLITS

SCHEMA = pa.schema([
    ("id", pa.string()), ("wafer_id", pa.string()),
    ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
    ("question", pa.string()), ("answer", pa.string()), ("category", pa.string()), ("dimension", pa.string()),
    ("difficulty", pa.string()), ("labels", pa.list_(pa.string())), ("qa_index", pa.int32()),
    ("expected_yes", pa.bool_()), ("rubric", pa.string()),
])
HF_FEATURES = {
    "id": {"dtype": "string", "_type": "Value"}, "wafer_id": {"dtype": "string", "_type": "Value"},
    "image": {"_type": "Image"},
    "question": {"dtype": "string", "_type": "Value"}, "answer": {"dtype": "string", "_type": "Value"},
    "category": {"dtype": "string", "_type": "Value"}, "dimension": {"dtype": "string", "_type": "Value"},
    "difficulty": {"dtype": "string", "_type": "Value"},
    "labels": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
    "qa_index": {"dtype": "int32", "_type": "Value"}, "expected_yes": {"dtype": "bool", "_type": "Value"},
    "rubric": {"dtype": "string", "_type": "Value"},
}


def split_file(split: str) -> str:
    return f"data/{split}-00000-of-00001.parquet"


def export_parquet(bench_dir: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Write the Parquet layout for the benchmark at ``bench_dir`` (hashes verified); returns rows per split."""
    bench = Benchmark.load(bench_dir)
    out = Path(out_dir)
    (out / "data").mkdir(parents=True, exist_ok=True)
    schema = SCHEMA.with_metadata({"huggingface": json.dumps({"info": {"features": HF_FEATURES}})})
    rubrics = {wid: json.dumps(r.model_dump(mode="json"), sort_keys=True) for wid, r in bench.rubrics.items()}
    images: dict[str, bytes] = {}
    counts = {}
    for split in SPLITS:
        items = bench.items(split)
        if not items:
            continue
        rows = []
        for item in items:
            if item.wafer_id not in rubrics:
                raise BenchmarkError(f"{bench.root}/rubrics.jsonl: no rubric for wafer {item.wafer_id!r} "
                                     f"(item {item.id}); rebuild the benchmark with 'wafersage synth'")
            if item.image not in images:
                images[item.image] = bench.image_path(item).read_bytes()
            rows.append({
                "id": item.id, "wafer_id": item.wafer_id,
                "image": {"bytes": images[item.image], "path": Path(item.image).name},
                "question": item.question, "answer": item.answer, "category": item.category,
                "dimension": item.dimension, "difficulty": item.difficulty, "labels": list(item.labels),
                "qa_index": item.qa_index, "expected_yes": item.expected_yes, "rubric": rubrics[item.wafer_id],
            })
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), out / split_file(split), compression="zstd")
        counts[split] = len(rows)
    (out / "README.md").write_text(_card(bench, counts), encoding="utf-8")
    return counts


def _card(bench: Benchmark, counts: dict[str, int]) -> str:
    configs = "\n".join(f"  - split: {s}\n    path: {split_file(s)}" for s in counts)
    rows = "\n".join(f"| {s} | {n} |" for s, n in counts.items())
    return (
        f"---\nconfigs:\n- config_name: default\n  data_files:\n{configs}\n---\n\n"
        f"# {bench.name} (version {bench.version})\n\n"
        "Wafer-defect visual question answering items built by WaferSAGE (`wafersage synth`).\n"
        f"Benchmark hash: `{bench.hash}`.\n\n| split | items |\n| --- | --- |\n{rows}\n"
    )


@click.command("hf")
@click.option("--bench", "bench_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Benchmark folder built by 'wafersage synth'.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the Parquet files and dataset card into.")
def export_hf(bench_dir: Path, out_dir: Path) -> None:
    """Export a benchmark as Hugging Face datasets Parquet files (one per split, images embedded)."""
    try:
        counts = export_parquet(bench_dir, out_dir)
    except BenchmarkError as exc:
        raise click.ClickException(str(exc)) from exc
    total = sum(counts.values())
    click.echo(f"wrote {total} items ({', '.join(f'{s}: {n}' for s, n in counts.items())}) to {out_dir}")
