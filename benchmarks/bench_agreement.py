"""Rule score (and, with --judge, a judge) against graded panels: the whole panel, its wafers 1-6 (development)
and 7-12 (checking), with wafer-bootstrap CIs.

    python benchmarks/bench_agreement.py [--panel DIR ...] [--judge NAME]

Default panels: ../shared/panels/panel_a (skipped with a reason where absent), benchmarks/panels/panel_b,
benchmarks/panels/panel_v and benchmarks/panels/panel_w (made for measuring only: see their READMEs). Prints the
`wafersage agreement` table for each.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console

from wafersage.harness.agreement.cli import report_table
from wafersage.harness.agreement.measure import agreement
from wafersage.harness.agreement.panel import load_panel
from wafersage.harness.agreement.scoring import rule_rows

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PANELS = [ROOT.parent / "shared" / "panels" / "panel_a", ROOT / "benchmarks" / "panels" / "panel_b",
                  ROOT / "benchmarks" / "panels" / "panel_v", ROOT / "benchmarks" / "panels" / "panel_w"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panel", action="append", type=Path, help="panel folder (repeatable)")
    args = parser.parse_args()
    console = Console(width=120)
    start = time.perf_counter()
    for folder in args.panel or DEFAULT_PANELS:
        if not folder.is_dir():
            console.print(f"skip {folder}: not here (../shared is beside the project root on developer machines)")
            continue
        panel = load_panel(folder)
        halves = [("all wafers", panel)]
        if len(panel.wafers) >= 12:
            halves += [("wafers 1-6 (development)", panel.select_wafers(1, 6)),
                       ("wafers 7-12 (check)", panel.select_wafers(7, 12))]
        for name, part in halves:
            console.print(report_table(agreement(rule_rows(part)), f"{folder.name}, {name}"))
    console.print(f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
