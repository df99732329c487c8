"""Charts as inline SVG strings, drawn by matplotlib's SVG backend (no pyplot, no global state, no network).

Text stays text (``svg.fonttype: none``) and ids are salted with a fixed string, so the same inputs give the same
bytes. matplotlib escapes every label it writes, so model names are safe inside the page.
"""
from __future__ import annotations

import io
from typing import Sequence

import matplotlib
from matplotlib.figure import Figure

from ..harness.scoring.stats import breakdown
from ..tasks.bench.schema import CATEGORIES
from .results import RunResult, ScoreKind, item_scores

_RC = {"svg.fonttype": "none", "svg.hashsalt": "wafersage", "font.size": 9, "axes.spines.top": False,
       "axes.spines.right": False}
_CATEGORY_LABELS = {"defect_type": "defect type", "spatial": "spatial", "morphology": "morphology",
                    "root_cause": "root cause", "consistency": "consistency"}


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def heatmap_values(result: RunResult, kind: ScoreKind) -> tuple[list[str], list[str], dict[tuple[str, str], float]]:
    """Mean headline item score per (defect type of the wafer, question category); a mixture counts for each type."""
    values, wafers, groups = [], [], []
    for _, score, value in item_scores(result, kind):
        for label in score.labels or ["none"]:
            values.append(value)
            wafers.append(score.wafer_id)
            groups.append(f"{label}\x1f{score.category}")
    estimates = breakdown(values, wafers, groups, n_resamples=200) if values else {}
    cells = {tuple(group.split("\x1f")): estimate.value for group, estimate in estimates.items()}
    labels = sorted({label for label, _ in cells})
    categories = [c for c in CATEGORIES if any(c == cat for _, cat in cells)]
    return labels, categories, cells


@matplotlib.rc_context(_RC)
def heatmap_svg(result: RunResult, kind: ScoreKind) -> str:
    """Defect type × question category heatmap of one run's mean scores (0-10)."""
    labels, categories, cells = heatmap_values(result, kind)
    fig = Figure(figsize=(1.2 + 1.1 * max(len(categories), 1), 0.8 + 0.32 * max(len(labels), 1)))
    ax = fig.add_subplot()
    grid = [[cells.get((label, c), float("nan")) for c in categories] for label in labels] or [[float("nan")]]
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=10, aspect="auto")
    ax.set_xticks(range(len(categories)), [_CATEGORY_LABELS.get(c, c) for c in categories], rotation=20, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i, label in enumerate(labels):
        for j, c in enumerate(categories):
            if (label, c) in cells:
                ax.text(j, i, f"{cells[(label, c)]:.1f}", ha="center", va="center", fontsize=8)
    ax.set_title(f"{result.name}: mean {kind} score by defect type", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    return _svg(fig)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and score (higher), by increasing cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


@matplotlib.rc_context(_RC)
def score_cost_svg(names: Sequence[str], costs: Sequence[float], scores: Sequence[float], score_label: str) -> str:
    """Score against cost per 1,000 questions, the Pareto front drawn as a step line."""
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    ax.scatter(costs, scores, color="#2563eb", zorder=3)
    front = pareto_front(list(zip(costs, scores)))
    if front:
        ax.step([costs[i] for i in front], [scores[i] for i in front], where="post", color="#16a34a",
                label="Pareto front", zorder=2)
        ax.legend(loc="lower right", frameon=False)
    for name, x, y in zip(names, costs, scores):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(left=-0.002)
    ax.set_ylim(0, 10.5)
    ax.set_xlabel("cost per 1,000 questions (USD, symlog scale)")
    ax.set_ylabel(score_label)
    ax.grid(alpha=0.3)
    return _svg(fig)
