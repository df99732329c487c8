"""Hostile benchmark folders, map stores and images: every file a folder names stays inside it, images are checked
PNG/JPEG files within the size limits, and each refusal names the file, the record and the path."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench_factory import make_bench
from wafersage.cli import main
from wafersage.harness.run.runner import run_eval
from wafersage.models.images import ImageReadError, encode_image
from wafersage.tasks.bench.folder import Benchmark, BenchmarkError, write_manifest
from wafersage.tasks.maps import untrusted
from wafersage.tasks.maps.readers import MapSourceError, read_maps
from wafersage.tasks.maps.store import read_store
from wafersage.tasks.maps.untrusted import UntrustedInputError, check_image, safe_join
from wafersage.tasks.maps.wafer import WaferMapError

SECRET = "TOP-SECRET-CONTENT"


@pytest.fixture
def bench(tmp_path) -> Path:
    (tmp_path / "secret.txt").write_text(SECRET)
    return make_bench(tmp_path / "bench")


def rewrite_items(root: Path, change) -> None:
    """Edit items.jsonl with ``change(item dict)`` and recompute the manifest's hashes, as anyone can."""
    lines = [json.loads(line) for line in (root / "items.jsonl").read_text().splitlines()]
    for item in lines:
        change(item)
    (root / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in lines))
    rehash(root)


def rehash(root: Path) -> None:
    manifest = json.loads((root / "manifest.json").read_text())
    write_manifest(root, **{k: v for k, v in manifest.items() if k not in ("files", "schema_version")})


def png_header(width: int, height: int) -> bytes:
    """A valid tiny PNG file that declares ``width`` x ``height`` pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def eval_cli(bench: Path, out: Path):
    return CliRunner().invoke(main, ["eval", "--bench", str(bench), "--model", "oracle", "--out", str(out),
                                     "--no-progress"])


def test_safe_join_refuses_absolute_parent_and_symlinked_paths(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ok.txt").write_text("ok")
    (root / "out").symlink_to(tmp_path)
    assert safe_join(root, "sub/../sub/ok.txt", where="w") == (root / "sub" / "ok.txt").resolve()
    for name, reason in (("/etc/passwd", "not a relative path"), ("../secret.txt", "leads out of"),
                         ("sub/../../x", "leads out of"), ("out/secret.txt", "leads out of"), ("", "not a relative"),
                         (None, "not a relative"), ("a\x00b", "not a relative")):
        with pytest.raises(UntrustedInputError) as caught:
            safe_join(root, name, where="index.jsonl:3")
        assert str(caught.value).startswith(f"index.jsonl:3: refused path {name!r}: ") and reason in str(caught.value)


@pytest.mark.parametrize("image", ["../secret.txt", "ABSOLUTE"])
def test_eval_score_and_export_refuse_an_item_image_outside_the_folder(bench, tmp_path, image):
    image = str(tmp_path / "secret.txt") if image == "ABSOLUTE" else image
    rewrite_items(bench, lambda item: item.update(image=image) if item["id"] == "w001-q1" else None)
    result = eval_cli(bench, tmp_path / "run")
    assert result.exit_code == 2
    assert "items.jsonl: item w001-q1 image: refused path" in result.output and repr(image) in result.output
    assert not (tmp_path / "run").exists()
    export = CliRunner().invoke(main, ["export", "lm-eval", "--bench", str(bench), "--out", str(tmp_path / "lm")])
    assert export.exit_code == 1 and "item w001-q1 image: refused path" in export.output


def test_a_symlinked_image_that_leaves_the_folder_is_refused(bench, tmp_path):
    (bench / "images" / "w002.png").unlink()
    (bench / "images" / "w002.png").symlink_to(tmp_path / "secret.txt")
    rehash(bench)
    with pytest.raises(BenchmarkError, match=r"files entry: refused path 'images/w002\.png': it leads out of"):
        Benchmark.load(bench)
    with pytest.raises(BenchmarkError, match=r"item w002-q0 image: refused path 'images/w002\.png': it leads out of"):
        Benchmark.load(bench, verify=False).items()


def test_a_manifest_entry_outside_the_folder_is_refused(bench, tmp_path):
    manifest = json.loads((bench / "manifest.json").read_text())
    manifest["files"]["../secret.txt"] = "0" * 64
    (bench / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BenchmarkError, match=r"manifest\.json: files entry: refused path '\.\./secret\.txt'"):
        Benchmark.load(bench)


def test_a_shard_path_outside_the_store_is_refused(bench, tmp_path):
    index = bench / "maps" / "index.jsonl"
    lines = index.read_text().splitlines()
    first = json.loads(lines[0]) | {"shard": str(tmp_path / "elsewhere.npz")}
    index.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(WaferMapError, match=r"index\.jsonl:1: shard of map 'w000': refused path '/"):
        list(read_store(bench / "maps"))
    first["shard"] = "../../secret.txt"
    index.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(WaferMapError, match=r"index\.jsonl:1: shard of map 'w000': refused path '\.\./\.\./secret"):
        list(Benchmark.load(bench, verify=False).wafers())


@pytest.mark.parametrize("content, reason", [
    (SECRET.encode(), "not a readable PNG or JPEG image"),
    (png_header(6_000, 6_000), "6000x6000 pixels, over the limit"),
    (png_header(20_000, 20_000), "decompression bomb"),
    (b"GIF89a" + bytes(64), "not a readable PNG or JPEG image"),
], ids=["text", "bomb", "huge-bomb", "gif"])
def test_eval_refuses_a_file_that_is_not_a_safe_image(bench, tmp_path, content, reason):
    (bench / "images" / "w001.png").write_bytes(content)
    rehash(bench)
    result = eval_cli(bench, tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert "item w001-q0 image: refused image" in result.output and "w001.png" in result.output
    assert reason in result.output


def test_images_over_the_byte_limit_are_refused_before_sending(bench, monkeypatch):
    image = bench / "images" / "w000.png"
    monkeypatch.setattr(untrusted, "MAX_IMAGE_BYTES", image.stat().st_size - 1)
    untrusted._check.cache_clear()
    with pytest.raises(ImageReadError, match=r"image to send: refused image .*w000\.png: [\d,]+ bytes, over the limit"):
        encode_image(image)
    untrusted._check.cache_clear()
    monkeypatch.undo()
    assert check_image(image, where="w") == (160, 160)


def test_a_sound_benchmark_still_evaluates(bench, tmp_path):
    info = run_eval(bench, "oracle", out_dir=tmp_path / "run", progress=False)
    assert info.n_ok == info.n_items > 0


def test_report_refuses_a_run_whose_benchmark_names_files_outside_it(bench, tmp_path):
    run = tmp_path / "run"
    assert eval_cli(bench, run).exit_code == 0
    assert CliRunner().invoke(main, ["score", str(run)]).exit_code == 0
    rewrite_items(bench, lambda item: item.update(image="../secret.txt"))
    new_hash = Benchmark.load(bench).hash  # the answers are re-labelled to match, as a vendor could
    for name in ("run.json", "summary.json"):
        data = json.loads((run / name).read_text()) | {"bench_hash": new_hash}
        (run / name).write_text(json.dumps(data))
    score = CliRunner().invoke(main, ["score", str(run)])
    assert score.exit_code != 0 and "refused path '../secret.txt'" in score.output
    page = tmp_path / "board.html"
    result = CliRunner().invoke(main, ["report", str(run), "--out", str(page)])
    assert result.exit_code == 1 and "item w000-q0 image: refused path '../secret.txt'" in result.output
    assert not page.exists()


def test_an_image_folder_row_naming_a_file_outside_the_folder_is_refused(tmp_path):
    folder = tmp_path / "vendor"
    folder.mkdir()
    (folder / "labels.csv").write_text("file,label\n../secret.png,Center\n")
    with pytest.raises(MapSourceError, match=r"labels\.csv:2: file: refused path '\.\./secret\.png': it leads out of"):
        list(read_maps(folder, "images"))
