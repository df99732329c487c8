"""The demo runs end to end through the CLI in a temporary folder."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from wafersage.cli import main
from wafersage.demo import STEPS
from wafersage.tasks.store import read_store
from wafersage.tasks.wafer import LABELS


def test_demo_writes_maps_sheet_and_summary(tmp_path):
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path) as cwd:
        result = runner.invoke(main, ["demo", "--n", "24", "--seed", "2"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        for number, (title, _) in enumerate(STEPS, 1):
            assert f"[{number}/{len(STEPS)}] {title}" in result.output
        assert "mean fail ratio" in result.output
        out = Path(cwd) / "demo_out"  # the default --out
        assert len(list(read_store(out / "maps"))) == 24
        with Image.open(out / "maps.png") as sheet:
            assert sheet.width > 500
        summary = json.loads((out / "summary.json").read_text())
        assert summary and {row["pattern"] for row in summary} <= set(LABELS)
        assert all(0 <= row["mean_fail_ratio"] <= 1 and row["count"] > 0 for row in summary)
        maps = list(read_store(out / "maps"))
        center = [row for row in summary if row["pattern"] == "Center"]
        assert not center or center[0]["count"] == sum("Center" in m.labels for m in maps)
