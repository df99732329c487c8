"""The self-contained HTML leaderboard: Jinja2 with autoescape, CSS and JS inlined, charts as inline SVG.

Model output is data: every string from a run reaches the page either autoescaped by Jinja or inside the JSON
block (``|tojson`` escapes ``<``, ``>``, ``&`` and ``'``), which the page's script reads and inserts with
``textContent`` only. The only markup passed through unescaped is our own CSS/JS and matplotlib's SVG.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Sequence

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from ..harness.run.provenance import package_versions
from ..harness.agreement.measure import AgreementReport
from ..harness.scoring.calibrate import Calibration
from ..harness.scoring.stats import Estimate, format_estimate
from .browser import methodology, open_benchmark, sample_data
from .charts import heatmap_svg, score_cost_svg
from .judges import judges_context
from .leaderboard import Leaderboard
from .results import RunResult

TEMPLATES = Path(__file__).parent / "templates"
#: packages whose versions the methodology section lists (those installed)
REPORT_PACKAGES = ("wafersage", "numpy", "scipy", "pydantic", "rapidfuzz", "bayesian-optimization", "jinja2",
                   "matplotlib", "openai")


def sort_value(value: Any) -> str:
    """The ``data-sort`` attribute of a cell: the number behind it (empty when there is none)."""
    if value is None:
        return ""
    if isinstance(value, Estimate):
        return repr(value.value)
    return str(value)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(estimate=format_estimate, percent=partial(format_estimate, digits=0, scale=100, unit="%"),
                       sortval=sort_value)
    return env


def _panel_context(name: str, report: AgreementReport) -> dict:
    rows = [("pooled", report.pooled.model_dump() | {"rule_mean": None, "judge_mean": None})]
    rows += [(source, row.model_dump()) for source, row in report.by_source.items()]
    return {"name": name, "report": report, "rows": rows}


def render_html(board: Leaderboard, results: Sequence[RunResult], *, calibration: Calibration | None = None,
                max_samples: int = 500, panel: tuple[str, AgreementReport] | None = None) -> str:
    """The leaderboard page as one HTML string (no external resources)."""
    by_name = {r.name: r for r in results}
    ordered = [by_name[row.model] for row in board.rows]
    bench, bench_note = open_benchmark(results)
    charted = [row for row in board.rows if row.overall is not None]
    context = {
        "board": board,
        "heatmaps": [(r.name, Markup(heatmap_svg(r, board.score_kind))) for r in ordered],
        # the oracle's map is uniformly perfect: show the best real model's first
        "heatmap_shown": next((i for i, r in enumerate(ordered) if r.info.model.get("backend") != "oracle"), 0),
        "score_cost": Markup(score_cost_svg([row.model for row in charted],
                                            [row.cost_per_1000_questions for row in charted],
                                            [row.overall.value for row in charted], board.score_label))
        if charted else None,
        "samples": sample_data(ordered, bench, max_samples),
        "bench_note": bench_note,
        "method": methodology(ordered, bench, calibration),
        "judging": judges_context(ordered, board.judge_checks),
        "panel": _panel_context(*panel) if panel else None,
        "packages": package_versions(REPORT_PACKAGES),
        "css": Markup((TEMPLATES / "leaderboard.css").read_text(encoding="utf-8")),
        "js": Markup((TEMPLATES / "leaderboard.js").read_text(encoding="utf-8")),
    }
    return _environment().get_template("leaderboard.html.j2").render(**context)

