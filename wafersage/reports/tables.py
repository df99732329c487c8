"""Leaderboard exports: CSV (one flat row per model), JSON (the whole :class:`Leaderboard`) and a Markdown table."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

from ..harness.scoring.stats import Estimate, format_estimate
from .leaderboard import Leaderboard, Row


def _estimate_columns(prefix: str, estimate: Estimate | None) -> dict[str, Any]:
    if estimate is None:
        return {prefix: None, f"{prefix}_low": None, f"{prefix}_high": None}
    return {prefix: estimate.value, f"{prefix}_low": estimate.low, f"{prefix}_high": estimate.high}


def flat_row(row: Row, board: Leaderboard) -> dict[str, Any]:
    """One model as flat columns (estimates as value/low/high)."""
    out: dict[str, Any] = {"rank": row.rank, "tied_with_above": row.tied_with_above, "p_vs_above": row.p_vs_above,
                           "model": row.model, "deployment": row.deployment, "score_kind": board.score_kind}
    out |= _estimate_columns("overall", row.overall)
    for d in board.dimensions:
        out |= _estimate_columns(d, row.dimensions.get(d))
    out |= _estimate_columns("rule", row.rule) | _estimate_columns("judge", row.judge)
    out |= _estimate_columns("type_accuracy", row.type_accuracy)
    out |= _estimate_columns("consistency_accuracy", row.consistency_accuracy)
    out |= {"latency_p50_s": row.latency_p50_s, "latency_p95_s": row.latency_p95_s, "input_tokens": row.input_tokens,
            "output_tokens": row.output_tokens, "cost_per_1000_questions": row.cost_per_1000_questions,
            "n_items": row.n_items, "n_failed": row.n_failed, "n_missing": row.n_missing,
            "n_unscored": row.n_unscored, "judge_coverage": row.judge_coverage, "n_common": board.n_common,
            "judge": row.judge_name,
            "bench_name": board.bench_name, "bench_version": row.bench_version, "bench_hash": board.bench_hash,
            "split": board.split, "calibration_id": board.calibration_id, "date": row.date, "folder": row.folder,
            "flags": "; ".join(row.flags)}
    return out


def to_csv(board: Leaderboard) -> str:
    rows = [flat_row(row, board) for row in board.rows]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["rank"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_json(board: Leaderboard) -> str:
    return board.model_dump_json(indent=2) + "\n"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A GitHub-flavoured Markdown table; ``|`` and line breaks in cells are escaped. ``align``: one of l/r per
    column (default: first column left, the rest right)."""
    align = align or "l" + "r" * (len(header) - 1)

    def cell(value: Any) -> str:
        return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "| " + " | ".join("---:" if a == "r" else ":---" for a in align) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_markdown(board: Leaderboard) -> str:
    judged = board.score_kind == "judge"
    header = ["#", "model", "deployment", f"{board.score_kind} score [95% CI]",
              *(("judge coverage", "unscored") if judged else ()), *board.dimensions,
              "type acc. %", "consistency acc. %", "p50 s", "USD/1k Q", "items", "failed"]

    def coverage(row: Row) -> tuple:
        if not judged:
            return ()
        return (f"{100 * row.judge_coverage:.0f}%" if row.judge_coverage is not None else "–",
                row.n_unscored if row.n_unscored is not None else "–")

    rows = [[f"{row.rank}{' ≈' if row.tied_with_above else ''}", row.model + (" ⚠" if row.flags else ""),
             row.deployment, format_estimate(row.overall), *coverage(row),
             *(format_estimate(row.dimensions.get(d), 1) for d in board.dimensions),
             format_estimate(row.type_accuracy, 0, scale=100), format_estimate(row.consistency_accuracy, 0, scale=100),
             f"{row.latency_p50_s:.3f}" if row.latency_p50_s is not None else "–",
             f"{row.cost_per_1000_questions:.3f}", row.n_items, row.n_failed] for row in board.rows]
    paired = (f" on the {board.n_common} answers every model has a judge score for" if judged else "")
    title = (f"**{board.bench_name} v{board.bench_version}** ({board.split} split, hash `{board.bench_hash[:12]}`), "
             f"ranked by {board.score_label}{paired}; ≈ = not significantly different from the row above "
             f"(paired test, α = {board.alpha}).\n\n")
    notes = "".join(f"\n⚠ {warning}" for warning in board.warnings)
    return title + markdown_table(header, rows, "lll" + "r" * (len(header) - 3)) + (notes + "\n" if notes else "")


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
