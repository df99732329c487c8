"""The benchmark builder: identical bytes for the same config, a folder Benchmark.load accepts, tamper detection."""
from __future__ import annotations

import gc
import hashlib
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.tasks.bench.folder import Benchmark, BenchmarkError
from wafersage.tasks.bench.schema import SPLITS
from wafersage.tasks.synth.build import SynthConfig, SynthConfigError, build_benchmark

REPO = Path(__file__).resolve().parents[1]
SMALL = {
    "name": "small", "version": "2", "seed": 5,
    "source": {"kind": "generated", "n": 60, "size": [30, 30], "patterns": ["Center", "Scratch", "none"],
               "mixtures": True},
    "cleaning": {"knn_k": 5, "min_class_size": 10},
    "splits": {"train": 0.5, "val": 0.2, "test": 0.3},
    "image_size": 64,
}


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_benchmark(SynthConfig.model_validate(SMALL), tmp_path_factory.mktemp("b") / "bench", progress=False)


def test_same_config_gives_identical_bytes(built, tmp_path):
    again = build_benchmark(SynthConfig.model_validate(SMALL), tmp_path / "again", progress=False)
    assert _digests(again) == _digests(built)
    other = build_benchmark(SynthConfig.model_validate(SMALL | {"seed": 6}), tmp_path / "other", progress=False)
    assert _digests(other)["items.jsonl"] != _digests(built)["items.jsonl"]


def test_folder_is_a_complete_benchmark(built):
    bench = Benchmark.load(built)
    manifest = bench.manifest
    assert (bench.name, bench.version, manifest["seed"]) == ("small", "2", 5)
    assert manifest["config"]["source"]["n"] == 60 and manifest["wafersage_version"]
    wafers = list(bench.wafers())
    counts = manifest["counts"]
    assert counts["wafers"] == len(wafers) == len(bench.rubrics) and counts["items"] == len(bench.items())
    assert counts["maps_read"] == 60 == counts["maps_kept"] + counts["maps_flagged"]
    assert sum(counts["wafers_per_split"].values()) == len(wafers)
    assert set(counts["wafers_per_split"]) <= set(SPLITS) and counts["wafers_per_split"]["test"] > 0
    split_of = {w.id: w.split for w in wafers}
    for item in bench.items():
        assert item.split == split_of[item.wafer_id]
        assert bench.image_path(item).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    descriptions = [json.loads(line) for line in (built / "descriptions.jsonl").read_text().splitlines()]
    assert [d["wafer_id"] for d in descriptions] == [w.id for w in wafers]
    report = json.loads((built / "cleaning_report.json").read_text())
    assert report["n_input"] == 60 and set(report["kept_ids"]) == set(split_of)
    assert not (built.parent / "bench.partial").exists()
    on_disk = {name: digest for name, digest in _digests(built).items() if name != "manifest.json"}
    assert manifest["files"] == on_disk  # images hashed from their bytes in memory, the rest read back


def test_the_garbage_collector_is_back_on_after_a_build_even_a_failed_one(tmp_path):
    """The geometry path pauses automatic garbage collection while it runs (see synth._automatic_gc_paused)."""
    assert gc.isenabled()
    build_benchmark(SynthConfig.model_validate(SMALL | {"source": SMALL["source"] | {"n": 12}}), tmp_path / "a",
                    progress=False)
    assert gc.isenabled()
    (tmp_path / "broken.npz").write_bytes(b"not a zip archive")
    broken = SynthConfig.model_validate(SMALL | {"source": {"kind": "import", "path": str(tmp_path / "broken.npz"),
                                                            "format": "mixedwm38"}})
    with pytest.raises(ValueError, match="broken.npz: not a .npz archive"):
        build_benchmark(broken, tmp_path / "b", progress=False)
    assert gc.isenabled() and not (tmp_path / "b.partial").exists()


def test_changed_file_is_named_on_load(built, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for rel in _digests(built):
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_bytes((built / rel).read_bytes())
    Benchmark.load(copy)
    image = sorted((copy / "images").iterdir())[0]
    image.write_bytes(image.read_bytes() + b"x")
    with pytest.raises(BenchmarkError, match=f"images/{image.name} changed"):
        Benchmark.load(copy)


def test_yaml_config_errors_name_the_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(SMALL | {"splits": {"train": 0.9, "val": 0.2, "test": 0.1}}))
    with pytest.raises(SynthConfigError, match=r"bad\.yaml: invalid synthesis config: splits: .*sum to 1\.2"):
        SynthConfig.from_yaml(path)
    path.write_text(yaml.safe_dump(SMALL | {"sourse": {}}))
    with pytest.raises(SynthConfigError, match="sourse: Extra inputs are not permitted"):
        SynthConfig.from_yaml(path)
    with pytest.raises(SynthConfigError, match="cannot read"):
        SynthConfig.from_yaml(tmp_path / "missing.yaml")
    path.write_text(yaml.safe_dump(SMALL | {"source": SMALL["source"] | {"mixtures": False, "mixture_share": 0.3}}))
    with pytest.raises(SynthConfigError, match="mixture_share 0.3 needs mixtures: true"):
        SynthConfig.from_yaml(path)


@pytest.mark.parametrize("name", ["demo", "full"])
def test_shipped_configs_load(name):
    config = SynthConfig.from_yaml(REPO / "configs" / "synth" / f"{name}.yaml")
    assert config.source.kind == "generated" and config.source.mixtures and config.source.balanced
    assert (config.source.n <= 250) if name == "demo" else (config.source.n >= 2000)


def test_demo_config_covers_every_pattern_and_mixtures(tmp_path):
    config = SynthConfig.from_yaml(REPO / "configs" / "synth" / "demo.yaml")
    root = build_benchmark(config, tmp_path / "demo", progress=False)
    classes = Benchmark.load(root).manifest["counts"]["wafers_per_class"]
    singles = {c for c in classes if "+" not in c}
    assert singles == {"Center", "Donut", "Edge-Loc", "Edge-Ring", "Loc", "Near-full", "Random", "Scratch", "none"}
    assert sum("+" in c for c in classes) >= 10


def test_import_source_relative_to_config(shared_data, tmp_path):
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    data = shared_data / "mixedwm38_30maps.npz"
    path = config_dir / "real.yaml"
    path.write_text(yaml.safe_dump({
        "name": "real", "source": {"kind": "import", "path": str(data), "format": "mixedwm38", "limit": 12},
        "splits": {"train": 0.0, "val": 0.0, "test": 1.0}, "image_size": 52}))
    root = build_benchmark(SynthConfig.from_yaml(path), tmp_path / "real", progress=False)
    bench = Benchmark.load(root)
    assert bench.manifest["counts"]["maps_read"] == 12
    assert bench.manifest["sources"][0]["format"] == "mixedwm38"
    assert all(w.source == "mixedwm38" and w.labels for w in bench.wafers())
    relative = config_dir / "rel.yaml"
    relative.write_text(path.read_text().replace(str(data), "../data.npz"))
    (tmp_path / "data.npz").write_bytes(data.read_bytes())
    again = build_benchmark(SynthConfig.from_yaml(relative), tmp_path / "real2", progress=False)
    assert Benchmark.load(again).manifest["counts"]["wafers"] == 12


def test_cli_builds_and_refuses_to_overwrite(tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(SMALL | {"source": SMALL["source"] | {"n": 20}}))
    out = tmp_path / "cli"
    args = ["synth", "--config", str(config), "--out", str(out), "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "maps read 20" in result.output
    assert Benchmark.load(out).manifest["counts"]["maps_read"] == 20
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "--force" in again.output
    forced = CliRunner().invoke(main, args + ["--force", "--seed", "9"])
    assert forced.exit_code == 0, forced.output
    assert Benchmark.load(out).manifest["seed"] == 9


def test_model_describer_path_keeps_failures(tmp_path):
    """describe_with: a plain callable stands in for a model; invalid rubrics end in failures.jsonl, not dropped."""
    from wafersage.tasks.generate.generator import generate_maps
    from wafersage.tasks.geometry.measure import measure
    from wafersage.tasks.synth.rubric import build_rubric, rubric_json

    reference = next(generate_maps(1, 0, patterns=["Center"], mixtures=False))
    reply = rubric_json(build_rubric(reference, measure(reference)))
    seen = {"images": 0, "rubric_prompts": 0}

    def generate(prompt: str, image: bytes | None) -> str:
        if image is not None:
            seen["images"] += 1
            return "BROKEN" if seen["images"] % 4 == 0 else "Failing dies cluster in one compact blob."
        seen["rubric_prompts"] += 1
        return "no json here" if "BROKEN" in prompt else reply

    config = SynthConfig.model_validate(SMALL | {
        "describer": "model", "source": SMALL["source"] | {"n": 12}, "cleaning": {"enabled": False}})
    with pytest.raises(SynthConfigError, match="callable was not passed"):
        build_benchmark(config, tmp_path / "none", progress=False)
    root = build_benchmark(config, tmp_path / "model", describe_with=generate, progress=False)
    bench = Benchmark.load(root)
    failures = [json.loads(line) for line in (root / "failures.jsonl").read_text().splitlines()]
    assert len(failures) == 3 and {f["stage"] for f in failures} == {"rubric"}
    assert all(f["attempts"] == 3 and f["description"] == "BROKEN" and f["reason"] for f in failures)
    counts = bench.manifest["counts"]
    assert (counts["wafers"], counts["failed_wafers"]) == (9, 3)
    assert seen == {"images": 12, "rubric_prompts": 9 + 3 * 3}
    descriptions = [json.loads(line) for line in (root / "descriptions.jsonl").read_text().splitlines()]
    assert {d["source"] for d in descriptions} == {"model"} and len(descriptions) == 9
    assert {f["wafer_id"] for f in failures}.isdisjoint(w.id for w in bench.wafers())


def test_force_never_replaces_a_folder_that_is_not_a_benchmark(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    config = SynthConfig.model_validate(SMALL | {"source": SMALL["source"] | {"n": 5}})
    with pytest.raises(FileExistsError, match="not a benchmark folder"):
        build_benchmark(config, precious, progress=False, overwrite=True)
    assert (precious / "notes.txt").read_text() == "keep me"
    with pytest.raises(SynthConfigError, match="describer 'geometry' but a generate callable was passed"):
        build_benchmark(config, tmp_path / "x", describe_with=lambda prompt, image: "", progress=False)


def test_identical_bytes_across_processes_and_hash_seeds(tmp_path):
    """Set/dict order must not leak into the files: two processes with different PYTHONHASHSEED agree."""
    import os
    import subprocess
    import sys

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(SMALL | {"source": SMALL["source"] | {"n": 24}}))
    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"p{hash_seed}"
        subprocess.run([sys.executable, "-c", "from wafersage.cli import main; main()", "synth", "--config", str(config), "--out", str(out),
                        "--quiet"], check=True, env=os.environ | {"PYTHONHASHSEED": hash_seed}, cwd=REPO,
                       capture_output=True)
        outs.append(_digests(out))
    assert outs[0] == outs[1]
